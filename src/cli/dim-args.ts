// `--dim k=v` arguments -> a dims record; malformed ones are VDM070 diagnostics.
import { diag, type Diagnostic } from '../compiler/ir/diagnostics.ts';
import { printDiagnostics } from './report.ts';

export function parseDimArgs(raw: readonly (string | number)[] | undefined): { dims: Record<string, number>; errors: Diagnostic[] } {
  // a Map, then own properties only: `__proto__` and `toString` are names like any other
  const dims = new Map<string, number>();
  const errors: Diagnostic[] = [];
  const bad = (message: string, hint?: string) => errors.push({ ...diag('VDM070', null, message, hint), file: 'vdm' });
  for (const item of raw ?? []) {
    const text = String(item);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(text);
    if (!m) {
      bad(`--dim ${text}: expected NAME=SIZE`, 'e.g. --dim h=32');
      continue;
    }
    const [, name, value] = m;
    if (!/^\d+$/.test(value.trim()) || Number(value) <= 0) {
      bad(`--dim ${text}: the size must be a positive integer`);
      continue;
    }
    if (dims.has(name)) {
      bad(`--dim ${name} is given twice`);
      continue;
    }
    dims.set(name, Number(value));
  }
  return { dims: Object.fromEntries(dims), errors };
}

/** The dims of a command's `--dim` arguments; undefined once their errors are printed (the command exits 1). */
export function dimsOrReport(raw: readonly (string | number)[] | undefined): Record<string, number> | undefined {
  const { dims, errors } = parseDimArgs(raw);
  if (!errors.length) return dims;
  printDiagnostics('vdm', errors);
  return undefined;
}
