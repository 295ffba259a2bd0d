// `vdm init FILE -o params.safetensors`: the seeded initial parameters of a model, F32 by dotted
// path, as `vdm run --params` reads them and `vdm train` checkpoints hold them; `--perturb` the
// parameters `vdm run --check` compares with (no zero-initialised layer switched off).
import { initialParams, PipelineError, writeParamsFile } from '../pipeline.ts';
import { checkWritable, FileError } from '../runtime/files.ts';
import { SafetensorsError } from '../runtime/safetensors.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport } from './report.ts';

export interface InitArgs {
  readonly file: string;
  readonly out?: string;
  readonly seed?: number;
  readonly perturb?: boolean;
  readonly dim?: readonly (string | number)[];
  readonly root?: string;
}

export function initCommand(args: InitArgs): number {
  if (!args.out) {
    process.stderr.write('vdm init: name the file to write with -o FILE.safetensors\n');
    return 2;
  }
  const out = args.out;
  const seed = args.seed ?? 0;
  if (!Number.isSafeInteger(seed)) {
    process.stderr.write(`vdm init: --seed must be an integer, got ${args.seed}\n`);
    return 2;
  }
  const dims = dimsOrReport(args.dim);
  if (!dims) return 1;
  const model = checkedOrReport(args.file, { dims, root: args.root, purpose: 'vdm init' });
  if (!model) return 1;
  const { graph } = model;
  try {
    checkWritable(out, '-o');
    const params = initialParams(graph, { seed, perturb: args.perturb });
    const how = args.perturb ? 'perturbed' : 'initial';
    writeParamsFile(out, graph, params, { 'vdm.seed': String(seed), 'vdm.init': how });
    const values = [...params.values()].reduce((n, v) => n + v.length, 0);
    process.stdout.write(`wrote ${out}: ${params.size} tensors, ${values.toLocaleString('en-US')} parameters of model ${graph.model} (${how}, seed ${seed})\n`);
    return 0;
  } catch (err) {
    if (err instanceof FileError || err instanceof SafetensorsError || err instanceof PipelineError) {
      process.stderr.write(`vdm init: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
