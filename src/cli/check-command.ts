// `vdm check FILE...`: exit 0 when every file is valid, 1 when any has errors. A file with a model
// is elaborated under its dims; a file with only blocks gets syntax, name and arity checks.
import { costsOf } from '../compiler/ir/cost.ts';
import { checkFile } from '../spec-check.ts';
import { dimsOrReport } from './dim-args.ts';
import { printDiagnostics } from './report.ts';
import { humanCount } from './units.ts';

export interface CheckArgs {
  readonly files: readonly string[];
  readonly dim?: readonly (string | number)[];
  readonly root?: string;
}

export function checkCommand(args: CheckArgs): number {
  const dims = dimsOrReport(args.dim);
  if (!dims) return 1;
  let failed = 0;
  for (const file of args.files) {
    const result = checkFile(file, { dims, root: args.root });
    if (result.diagnostics.length) {
      failed++;
      printDiagnostics(file, result.diagnostics);
      continue;
    }
    if (result.graph) {
      const c = costsOf(result.graph);
      process.stdout.write(`ok  ${file}  (model ${result.graph.model}: ${humanCount(c.params)} params, ${humanCount(c.macs)} MACs)\n`);
    } else {
      process.stdout.write(`ok  ${file}  (no model: syntax, names and arguments checked)\n`);
    }
  }
  return failed ? 1 : 0;
}
