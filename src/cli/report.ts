// Writes diagnostics to stderr, one blank line between them, then a count per file.
import { formatDiagnostic, type Diagnostic } from '../compiler/ir/diagnostics.ts';

export function printDiagnostics(file: string, diagnostics: readonly Diagnostic[]): void {
  if (diagnostics.length === 0) return;
  const text = diagnostics.map(formatDiagnostic).join('\n\n');
  const n = diagnostics.length;
  process.stderr.write(`${text}\n\n${file}: ${n} error${n === 1 ? '' : 's'}\n`);
}
