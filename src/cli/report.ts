// Writes diagnostics to stderr, one blank line between them, then a count per file; the tuning line.
import { formatDiagnostic, type Diagnostic } from '../compiler/ir/diagnostics.ts';
import type { TuningStats } from '../pipeline.ts';
import { checkSpec, type CheckedModel, type SpecOptions } from '../spec-check.ts';

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

/** One line on what kernel tuning did (VDM_TUNE): shapes looked up, timed or cached, and how many changed tiling. */
export function tuningLine(t: TuningStats): string {
  const shapes = `${t.problems} GEMM shape${t.problems === 1 ? '' : 's'}`;
  const timed = t.problems - t.fromCache;
  const parts = [timed ? `${timed} timed (${t.timed} variants, ${(t.ms / 1000).toFixed(2)} s)` : '', t.fromCache ? `${t.fromCache} from the cache` : ''].filter(Boolean);
  return `tuned ${shapes}: ${parts.join(', ')}; ${t.changed} run${t.changed === 1 ? 's' : ''} a faster tiling than the default (VDM_TUNE=off turns tuning off)`;
}
