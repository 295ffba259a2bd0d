// `vdm compile FILE -o DIR`: lowers a checked model to WGSL kernels a person can read and ship:
// DIR/kernels/NNN-<family>.wgsl and DIR/program.json (codegen/program-files.ts says what is in them).
// The same spec and target give byte-identical files.
import fs from 'node:fs';
import path from 'node:path';
import { isTarget, LoweringError, lowerModel, planModel, programFiles, TARGETS, type CompiledFiles } from '../pipeline.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport } from './report.ts';

export interface CompileArgs {
  readonly file: string;
  readonly out?: string;
  readonly target?: string;
  readonly dim?: readonly (string | number)[];
  readonly root?: string;
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
  const dir = args.out ?? path.join(path.dirname(args.file), `${path.basename(args.file, '.vdm')}.${target}`);
  const kernelsDir = path.join(dir, 'kernels');
  fs.mkdirSync(kernelsDir, { recursive: true });
  // Kernels of an earlier compile into the same folder would otherwise linger under old numbers.
  for (const f of fs.readdirSync(kernelsDir)) if (f.endsWith('.wgsl')) fs.rmSync(path.join(kernelsDir, f));
  for (const [rel, text] of compiled.files) fs.writeFileSync(path.join(dir, rel), text);
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(`${args.file}: model ${planned.graph.model} -> ${compiled.kernels} kernels, ${compiled.dispatches} dispatches (${target}) in ${dir}\n`
    + `  activations: ${mb(planned.plan.plannedBytes)} in ${planned.plan.slots.length} shared slots (${mb(planned.plan.unplannedBytes)} unshared)\n`);
  return 0;
}
