// Writes diagnostics to stderr, one blank line between them, then a count per file.
import { formatDiagnostic, type Diagnostic } from '../compiler/ir/diagnostics.ts';
import { checkSpec, type CheckedModel, type SpecOptions } from '../pipeline.ts';

export function printDiagnostics(file: string, diagnostics: readonly Diagnostic[]): void {
  if (diagnostics.length === 0) return;
  const text = diagnostics.map(formatDiagnostic).join('\n\n');
  const n = diagnostics.length;
  process.stderr.write(`${text}\n\n${file}: ${n} error${n === 1 ? '' : 's'}\n`);
}

/** The checked model of a command's spec; undefined once its diagnostics are printed (the command exits 1). */
export function checkedOrReport(file: string, options: SpecOptions): CheckedModel | undefined {
  const checked = checkSpec(file, options);
  if (checked.ok) return checked.model;
  printDiagnostics(file, checked.diagnostics);
  return undefined;
}
