// `vdm compile FILE -o DIR`: lowers a checked model to WGSL kernels a person can read and ship:
// DIR/kernels/NNN-<family>.wgsl and DIR/program.json (codegen/program-files.ts says what is in them).
// The same spec and target give byte-identical files. The folder (default build/FILE.TARGET) is
// written whole and then swapped in; a non-empty folder vdm did not write is refused without --force.
import path from 'node:path';
import { isTarget, LoweringError, lowerModel, planModel, programFiles, TARGETS, writeProgramFolder, type CompiledFiles } from '../pipeline.ts';
import { FileError } from '../runtime/files.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport } from './report.ts';

export interface CompileArgs {
  readonly file: string;
  readonly out?: string;
  readonly target?: string;
  readonly dim?: readonly (string | number)[];
  readonly root?: string;
  readonly force?: boolean;
}

export function compileCommand(args: CompileArgs): number {
  const dims = dimsOrReport(args.dim);
  if (!dims) return 1;
  const target = args.target ?? 'gpu';
  if (!isTarget(target)) {
    process.stderr.write(`vdm compile: unknown target '${args.target}' (choose ${TARGETS.join(' or ')})\n`);
    return 2;
  }
  const model = checkedOrReport(args.file, { dims, root: args.root, purpose: 'vdm compile' });
  if (!model) return 1;
  let planned;
  let compiled: CompiledFiles;
  try {
    planned = planModel(lowerModel(model, { target }));
    compiled = programFiles(planned);
  } catch (err) {
    if (!(err instanceof LoweringError)) throw err;
    // Limits of the kernel library (not of the spec): say which node, and that the spec itself is fine.
    process.stderr.write(`${args.file}: cannot compile model ${err.model} yet: ${err.reason}\n`);
    return 1;
  }
  const dir = args.out ?? path.join('build', `${path.basename(args.file, '.vdm')}.${target}`);
  try {
    writeProgramFolder(dir, compiled, { force: args.force });
  } catch (err) {
    if (!(err instanceof FileError)) throw err;
    process.stderr.write(`vdm compile: ${err.message}\n`);
    return 1;
  }
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(`${args.file}: model ${planned.graph.model} -> ${compiled.kernels} kernels, ${compiled.dispatches} dispatches (${target}) in ${dir}\n`
    + `  activations: ${mb(planned.plan.plannedBytes)} in ${planned.plan.slots.length} shared slots (${mb(planned.plan.unplannedBytes)} unshared)\n`);
  return 0;
}
