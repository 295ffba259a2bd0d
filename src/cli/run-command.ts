// `vdm run FILE`: one forward pass of a model on the WebGPU adapter, with parameters from a
// safetensors file (by dotted path) or seeded initialisation, and example inputs. Reports the time
// per forward pass, the activation memory, each output's statistics; `--profile` the GPU time per
// kernel family, `--check` the agreement with the float64 evaluation, `--out` writes the outputs.
import { kernelFamily } from '../codegen/kernels/kernel.ts';
import { relayout, type NamedTensor } from '../compiler/ir/named-tensor.ts';
import { evaluate, exampleInputs, initParams } from '../compiler/reference/evaluate.ts';
import { kernelCount, load, lowerModel, PipelineError, planModel, readParamsFile, type LoadedModel } from '../pipeline.ts';
import { NoAdapterError } from '../runtime/adapter.ts';
import { openGpu } from '../runtime/gpu.ts';
import { summarizeByKernel } from '../runtime/profile.ts';
import { SafetensorsError, writeSafetensors } from '../runtime/safetensors.ts';
import { checkWritable, FileError } from '../runtime/files.ts';
import { TensorTooLargeError } from '../runtime/limits.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport } from './report.ts';
import { renderTable } from './table.ts';

export interface RunArgs {
  readonly file: string;
  readonly dim?: readonly (string | number)[];
  readonly root?: string;
  readonly seed?: number;
  readonly params?: string;
  readonly repeat?: number;
  readonly profile?: boolean;
  readonly check?: boolean;
  readonly out?: string;
  readonly allowNonfinite?: boolean;
}

/** A request this adapter cannot serve (e.g. --profile without timestamp queries). */
class RunError extends Error {}

function stats(t: NamedTensor): string {
  let sum = 0, sq = 0, min = Infinity, max = -Infinity, bad = 0;
  for (const v of t.data) {
    if (!Number.isFinite(v)) { bad++; continue; }
    sum += v; sq += v * v; min = Math.min(min, v); max = Math.max(max, v);
  }
  const n = t.data.length - bad;
  const mean = sum / Math.max(1, n);
  const std = Math.sqrt(Math.max(0, sq / Math.max(1, n) - mean * mean));
  const f = (v: number) => v.toPrecision(4);
  return `mean ${f(mean)}, std ${f(std)}, min ${f(min)}, max ${f(max)}${bad ? `, ${bad} not finite` : ''}`;
}

export async function runCommand(args: RunArgs): Promise<number> {
  const dims = dimsOrReport(args.dim);
  if (!dims) return 1;
  const repeat = args.repeat ?? 5;
  if (!Number.isInteger(repeat) || repeat < 1) {
    process.stderr.write(`vdm run: --repeat must be a positive integer, got ${args.repeat}\n`);
    return 2;
  }
  const model = checkedOrReport(args.file, { dims, root: args.root, purpose: 'vdm run' });
  if (!model) return 1;
  const { graph } = model;
  try {
    if (args.out) checkWritable(args.out); // before the forward pass, not after it
    const seed = args.seed ?? 0;
    let params: Map<string, Float64Array>;
    if (args.params) {
      const file = readParamsFile(graph, args.params, { allowNonfinite: args.allowNonfinite });
      params = file.params;
      const n = file.unused.length;
      if (n) {
        process.stderr.write(`vdm run: note: ${n} tensor${n === 1 ? '' : 's'} of ${args.params} ${n === 1 ? 'is no parameter' : 'are no parameters'} of model ${graph.model} and ${n === 1 ? 'is' : 'are'} ignored: `
          + `${file.unused.slice(0, 8).join(', ')}${n > 8 ? `, ... and ${n - 8} more` : ''}\n`);
      }
    } else params = initParams(graph, seed);
    const inputs = exampleInputs(graph, seed + 1);
    const gpu = await openGpu();
    const planned = planModel(lowerModel(model, { adapter: gpu }));
    const kernels = kernelCount(planned);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    const paramCount = [...params.values()].reduce((n, p) => n + p.length, 0);
    process.stdout.write(`${graph.model} on ${gpu.info.description || gpu.info.vendor || 'the adapter'}: ${planned.lowered.steps.length} dispatches of ${kernels} kernels, `
      + `${paramCount.toLocaleString('en-US')} parameters (${args.params ? args.params : `initialised, seed ${seed}`}), activations ${mib(planned.plan.plannedBytes)}\n`);
    process.stdout.write(`compiling ${kernels} kernels and running once ...\n`);
    const loaded = load(gpu, planned, { params, inputs });
    try {
      return await report(args, loaded, repeat, gpu.features.has('timestamp-query'), inputs, params);
    } finally {
      loaded.release();
    }
  } catch (err) {
    if (err instanceof RunError || err instanceof PipelineError || err instanceof SafetensorsError || err instanceof NoAdapterError
      || err instanceof FileError) {
      process.stderr.write(`vdm run: ${err.message}\n`);
      return 1;
    }
    if (err instanceof TensorTooLargeError) {
      process.stderr.write(`vdm run: ${err.message} (\`--dim NAME=SIZE\` sets a size)\n`);
      return 1;
    }
    throw err;
  }
}

/** Runs the loaded model: first (compiling), timed, profiled; then the outputs, the check, the file. */
async function report(args: RunArgs, loaded: LoadedModel, repeat: number, canProfile: boolean,
  inputs: ReadonlyMap<string, NamedTensor>, params: ReadonlyMap<string, Float64Array>): Promise<number> {
  const { graph } = loaded.model;
  const first = await loaded.run();
  const timed = await loaded.run({ repeat });
  process.stdout.write(`first run (with compilation): ${(first.wallMs / 1000).toFixed(2)} s; forward pass: ${(timed.wallMs / repeat).toFixed(1)} ms (mean of ${repeat})\n`);
  if (args.profile) {
    if (!canProfile) throw new RunError('--profile needs the timestamp-query feature, which this adapter lacks');
    const profiled = await loaded.run({ profile: true });
    const byFamily = new Map<string, { calls: number; ms: number }>();
    for (const k of summarizeByKernel([...profiled.timings!])) {
      const fam = kernelFamily(k.key);
      const f = byFamily.get(fam) ?? { calls: 0, ms: 0 };
      f.calls += k.calls; f.ms += k.totalMs;
      byFamily.set(fam, f);
    }
    const total = [...byFamily.values()].reduce((n, f) => n + f.ms, 0);
    const rows = [...byFamily].sort((a, b) => b[1].ms - a[1].ms)
      .map(([fam, f]) => [fam, String(f.calls), f.ms.toFixed(2), `${((100 * f.ms) / total).toFixed(0)}%`]);
    process.stdout.write(`${renderTable(['kernel family', 'dispatches', 'GPU ms', 'share'], rows, new Set([1, 2, 3]))}\n`);
  }
  const outputs = timed.outputs; // in the axis order the model declares (pipeline.ts)
  for (const [name, v] of outputs) {
    process.stdout.write(`output ${name} [${v.axes.map(([n, s]) => `${n}=${s}`).join(', ')}]: ${stats(v)}\n`);
  }
  if (args.check) {
    const ref = evaluate(graph, inputs, params).outputs;
    for (const [name, v] of outputs) {
      const want = relayout(ref.get(name)!, v.axes).data;
      let err = 0, scale = 0;
      want.forEach((w, i) => { err = Math.max(err, Math.abs(v.data[i] - w)); scale = Math.max(scale, Math.abs(w)); });
      process.stdout.write(`check ${name}: max |GPU - float64| = ${err.toExponential(2)} (largest |value| ${scale.toPrecision(3)})\n`);
    }
  }
  if (args.out) {
    writeSafetensors(args.out, Object.fromEntries([...outputs].map(([name, v]) =>
      [name, { dtype: 'F32' as const, shape: v.axes.map(([, s]) => s), data: Float32Array.from(v.data) }])),
    { model: graph.model, axes: JSON.stringify(Object.fromEntries([...outputs].map(([name, v]) => [name, v.axes.map(([n]) => n)]))) });
    process.stdout.write(`wrote ${args.out}\n`);
  }
  return 0;
}
