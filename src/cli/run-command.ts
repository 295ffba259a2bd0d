// `vdm run FILE`: one forward pass of a model on the WebGPU adapter, with parameters from a
// safetensors file (by dotted path) or seeded initialisation, and inputs from a safetensors file
// (by name) or seeded examples. Reports the time per forward pass, the activation memory, each
// output's statistics; `--profile` the GPU time per kernel family, `--check` the agreement with
// the float64 evaluation (with perturbed parameters unless --params or --no-perturb), `--out`
// writes the outputs, `--dump` every node's value, `--compare` the errors against a reference file.
import path from 'node:path';
import { kernelFamily } from '../codegen/kernels/kernel.ts';
import type { NamedTensor } from '../compiler/ir/named-tensor.ts';
import { evaluate, exampleInputs } from '../compiler/reference/evaluate.ts';
import {
  initialParams, initialParams32, inspectModel, kernelCount, load, lowerModel, PipelineError, planModel, readInputsFile, readParamsFile, tuningStats,
  type LoadedModel, type PlannedModel,
} from '../pipeline.ts';
import { NoAdapterError } from '../runtime/adapter.ts';
import { checkOutputs, compareWithReference, type Comparison, type CompareRow } from '../runtime/compare.ts';
import { prepareDumpFolder, writeDump } from '../runtime/dump.ts';
import { openGpu, type Gpu } from '../runtime/gpu.ts';
import { summarizeByKernel } from '../runtime/profile.ts';
import { readSafetensors, SafetensorsError, writeSafetensors, type SafeTensor } from '../runtime/safetensors.ts';
import { checkWritable, FileError } from '../runtime/files.ts';
import { TensorTooLargeError } from '../runtime/limits.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport, tuningLine } from './report.ts';
import { renderTable } from './table.ts';
import { DEFAULT_TOL } from './defaults.ts';

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
  /** inputs by name from a safetensors file (default: seeded example inputs) */
  readonly inputs?: string;
  /** a folder for every node's value, the outputs, inputs and parameters */
  readonly dump?: string;
  /** a safetensors file of reference values (outputs by name, nodes by dotted name) */
  readonly compare?: string;
  /** the relative error --compare accepts (default 1e-4) */
  readonly tol?: number;
  /** --check with perturbed parameters when they are initialised, not read (default true) */
  readonly perturb?: boolean;
}

/** A request this adapter cannot serve (e.g. --profile without timestamp queries). */
class RunError extends Error {}

function stats(t: NamedTensor): string {
  let sum = 0, sq = 0, min = Infinity, max = -Infinity, bad = 0;
  for (const v of t.data) {
    if (!Number.isFinite(v)) { bad++; continue; }
    sum += v; sq += v * v; min = Math.min(min, v); max = Math.max(max, v);
  }
  if (bad === 0 && min === 0 && max === 0) return 'identically zero';
  const n = t.data.length - bad;
  const mean = sum / Math.max(1, n);
  const std = Math.sqrt(Math.max(0, sq / Math.max(1, n) - mean * mean));
  const f = (v: number) => v.toPrecision(4);
  return `mean ${f(mean)}, std ${f(std)}, min ${f(min)}, max ${f(max)}${bad ? `, ${bad} not finite` : ''}`;
}

const e2 = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));

export async function runCommand(args: RunArgs): Promise<number> {
  const dims = dimsOrReport(args.dim);
  if (!dims) return 1;
  const repeat = args.repeat ?? 5;
  if (!Number.isInteger(repeat) || repeat < 1) {
    process.stderr.write(`vdm run: --repeat must be a positive integer, got ${args.repeat}\n`);
    return 2;
  }
  const tol = args.tol ?? DEFAULT_TOL;
  if (!(Number.isFinite(tol) && tol >= 0)) {
    process.stderr.write(`vdm run: --tol must be a non-negative number, got ${args.tol}\n`);
    return 2;
  }
  const model = checkedOrReport(args.file, { dims, root: args.root, purpose: 'vdm run' });
  if (!model) return 1;
  const { graph } = model;
  try {
    // every file is checked before the forward pass, not after it
    if (args.out) checkWritable(args.out);
    if (args.dump) prepareDumpFolder(args.dump);
    const reference = args.compare ? readSafetensors(args.compare).tensors : undefined;
    const seed = args.seed ?? 0;
    const marks = { start: performance.now(), params: 0, gpu: 0, load: 0 };
    let params: Map<string, Float64Array | Float32Array>;
    if (args.params) {
      const file = readParamsFile(graph, args.params, { allowNonfinite: args.allowNonfinite });
      params = file.params;
      const n = file.unused.length;
      if (n) {
        process.stderr.write(`vdm run: note: ${n} tensor${n === 1 ? '' : 's'} of ${args.params} ${n === 1 ? 'is no parameter' : 'are no parameters'} of model ${graph.model} and ${n === 1 ? 'is' : 'are'} ignored: `
          + `${file.unused.slice(0, 8).join(', ')}${n > 8 ? `, ... and ${n - 8} more` : ''}\n`);
      }
    } else params = initialParams32(graph, seed);
    marks.params = performance.now();
    const inputs = args.inputs ? readInputsFile(graph, args.inputs) : exampleInputs(graph, seed + 1);
    const gpu = await openGpu();
    marks.gpu = performance.now();
    const planned = planModel(lowerModel(model, { adapter: gpu }));
    const kernels = kernelCount(planned);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    const paramCount = [...params.values()].reduce((n, p) => n + p.length, 0);
    process.stdout.write(`${graph.model} on ${gpu.info.description || gpu.info.vendor || 'the adapter'}: ${planned.lowered.steps.length} dispatches of ${kernels} kernels, `
      + `${paramCount.toLocaleString('en-US')} parameters (${args.params ? args.params : `initialised, seed ${seed}`}), activations ${mib(planned.plan.plannedBytes)}`
      + `${args.inputs ? `, inputs from ${args.inputs}` : ''}\n`);
    process.stdout.write(`compiling ${kernels} kernels and running once ...\n`);
    const once = load(gpu, planned, { params, inputs });
    marks.load = performance.now();
    let released = false;
    const loaded: LoadedModel = { ...once, run: (o) => once.run(o), release: () => { if (!released) { released = true; once.release(); } } };
    try {
      return await report({ args, gpu, planned, loaded, repeat, seed, inputs, params, reference, tol, marks });
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

interface RunContext {
  readonly args: RunArgs;
  readonly gpu: Gpu;
  readonly planned: PlannedModel;
  readonly loaded: LoadedModel;
  readonly repeat: number;
  readonly seed: number;
  readonly inputs: ReadonlyMap<string, NamedTensor>;
  readonly params: ReadonlyMap<string, Float64Array | Float32Array>;
  readonly reference: Readonly<Record<string, SafeTensor>> | undefined;
  readonly tol: number;
  /** performance.now() after the parameters were ready, the adapter open and the model loaded */
  readonly marks: { readonly start: number; readonly params: number; readonly gpu: number; readonly load: number };
}

/** Runs the loaded model: first (compiling), timed, profiled; then the outputs, the check, the files, the comparison. */
async function report(ctx: RunContext): Promise<number> {
  const { args, loaded, repeat } = ctx;
  const { graph } = loaded.model;
  const first = await loaded.run();
  const timed = await loaded.run({ repeat });
  const m = ctx.marks, sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  process.stdout.write(`first run (with compilation): ${(first.wallMs / 1000).toFixed(2)} s; forward pass: ${(timed.wallMs / repeat).toFixed(1)} ms (mean of ${repeat})\n`);
  // performance.now() counts from the process's start: Node, the CLI's modules and the spec's
  // checking come before m.start.
  process.stdout.write(`time to first forward: ${sec(m.load + first.wallMs)} since vdm started (start-up and checking ${sec(m.start)}, `
    + `parameters ${sec(m.params - m.start)}, adapter ${sec(m.gpu - m.params)}, lowering and upload ${sec(m.load - m.gpu)}, first run ${sec(first.wallMs)})\n`);
  const tuning = tuningStats(ctx.gpu);
  if (tuning.problems > 0) process.stdout.write(`${tuningLine(tuning)}\n`);
  if (args.profile) {
    if (!ctx.gpu.features.has('timestamp-query')) throw new RunError('--profile needs the timestamp-query feature, which this adapter lacks');
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
  // the outputs are on the host now: the device memory goes back before any further pass
  loaded.release();
  if (args.out) {
    writeSafetensors(args.out, Object.fromEntries([...outputs].map(([name, v]) =>
      [name, { dtype: 'F32' as const, shape: v.axes.map(([, s]) => s), data: Float32Array.from(v.data) }])),
    { model: graph.model, axes: JSON.stringify(Object.fromEntries([...outputs].map(([name, v]) => [name, v.axes.map(([n]) => n)]))) });
    process.stdout.write(`wrote ${args.out}\n`);
  }
  let code = 0;
  if (args.dump || ctx.reference) code = await inspect(ctx);
  if (args.check) await check(ctx, outputs);
  return code;
}

/** `--dump` and `--compare`: one more pass that keeps every node's value. */
async function inspect(ctx: RunContext): Promise<number> {
  const { args } = ctx;
  const { graph } = ctx.planned;
  const inspected = await inspectModel(ctx.gpu, ctx.planned, { params: ctx.params, inputs: ctx.inputs });
  if (args.dump) {
    const { files, nodes } = writeDump(args.dump, graph, { values: inspected.values, outputs: inspected.outputs, inputs: ctx.inputs, params: ctx.params },
      { 'vdm.params': args.params ?? `initialised, seed ${ctx.seed}`, 'vdm.inputs': args.inputs ?? `example, seed ${ctx.seed + 1}` });
    process.stdout.write(`wrote ${args.dump}: ${nodes} node values (${inspected.dispatches} dispatches, unfused), ${files.map((f) => path.basename(f)).join(', ')}\n`);
  }
  if (!ctx.reference) return 0;
  const comparison = compareWithReference(graph, inspected.values, inspected.outputs, ctx.reference, ctx.tol);
  process.stdout.write(comparisonText(comparison, args.compare!, Boolean(process.stdout.isTTY)));
  return comparison.firstOver || comparison.outputs.length + comparison.nodes.length === 0 ? 1 : 0;
}

/**
 * `--check`: the outputs against the float64 evaluation. Initialised parameters are perturbed (a
 * second upload of the same program) so that zero-initialised layers do not make outputs
 * identically zero; an output that is zero anyway is reported as a check of nothing.
 */
async function check(ctx: RunContext, outputs: ReadonlyMap<string, NamedTensor>): Promise<void> {
  const { args } = ctx;
  const { graph } = ctx.planned;
  const perturb = !args.params && args.perturb !== false;
  let params = ctx.params, got = outputs;
  if (perturb) {
    params = initialParams(graph, { seed: ctx.seed, perturb: true });
    const again = load(ctx.gpu, ctx.planned, { params, inputs: ctx.inputs });
    try {
      got = (await again.run()).outputs;
    } finally {
      again.release();
    }
    process.stdout.write(`check with perturbed parameters (seed ${ctx.seed}, every zero- or one-initialised entry moved by up to ±0.2; --no-perturb: as initialised):\n`);
  }
  const ref = evaluate(graph, ctx.inputs, new Map([...params].map(([k, v]) => [k, v instanceof Float64Array ? v : new Float64Array(v)]))).outputs;
  for (const c of checkOutputs(got, ref)) {
    if (c.zero) {
      process.stdout.write(`check ${c.name}: identically zero on the GPU and in float64: this compares nothing `
        + `(${args.params ? `the parameters of ${args.params}` : 'zero-initialised layers'} switch the output off${perturb || args.params ? '' : '; drop --no-perturb'})\n`);
      continue;
    }
    process.stdout.write(`check ${c.name}: max |GPU - float64| = ${e2(c.error.maxAbs)} (largest |value| ${c.error.scale.toPrecision(3)}), max rel ${e2(c.error.maxRel)}`
      + `${c.error.refZero ? ' (float64 is identically zero)' : c.error.gotZero ? ' (the GPU gave identically zero)' : ''}\n`);
  }
}

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** The comparison as a table, the first node over the tolerance marked (and red on a terminal), and a verdict. */
export function comparisonText(c: Comparison, file: string, color: boolean): string {
  const rows = [...c.outputs, ...c.nodes];
  const status = (r: CompareRow) => {
    if (r.problem) return r.problem;
    const zero = r.error!.refZero && r.error!.gotZero ? ' (both identically zero)' : r.error!.refZero ? ' (reference identically zero)' : '';
    return `${r === c.firstOver ? 'FIRST OVER' : r.over ? 'over' : 'ok'}${zero}`;
  };
  const table = renderTable(['', 'kind', 'name', 'op', 'shape', 'max abs', 'max rel', 'status'], rows.map((r) => [
    r === c.firstOver ? '>>' : '', r.kind, r.name, r.node.op, shapeText(r.shape), r.error ? e2(r.error.maxAbs) : '-', r.error ? e2(r.error.maxRel) : '-', status(r),
  ]), new Set([5, 6])).split('\n');
  if (color && c.firstOver) {
    const i = rows.indexOf(c.firstOver) + 2;
    table[i] = `\x1b[1;31m${table[i]}\x1b[0m`;
  }
  const lines = [`compare with ${file} (${rows.length} tensors; tolerance ${c.tol} on the max relative error):`, ...table];
  const over = rows.filter((r) => r.over).length;
  if (rows.length === 0) lines.push(`no tensor of ${file} names an output or a node of the model: nothing compared`);
  else if (c.firstOver) {
    const f = c.firstOver;
    lines.push(`first ${f.kind} over ${c.tol}: ${f.name} (${f.node.op}, node ${f.node.id}): ${f.problem ?? `max rel ${e2(f.error!.maxRel)}, max abs ${e2(f.error!.maxAbs)}`}; ${over} of ${rows.length} over`);
  } else {
    const worst = rows.reduce((a, b) => (b.error!.maxRel > a.error!.maxRel ? b : a));
    lines.push(`agreement: all ${rows.length} within ${c.tol} (largest max rel ${e2(worst.error!.maxRel)}, ${worst.name})`);
  }
  const zeros = rows.filter((r) => r.error?.refZero && r.error.gotZero).length;
  if (zeros) lines.push(`note: ${zeros} of them ${zeros === 1 ? 'is' : 'are'} identically zero on both sides and show${zeros === 1 ? 's' : ''} nothing`);
  if (c.ignored.length) lines.push(`note: ${c.ignored.length} tensor${c.ignored.length === 1 ? '' : 's'} of ${file} name${c.ignored.length === 1 ? 's' : ''} no output or node: ${c.ignored.slice(0, 6).join(', ')}${c.ignored.length > 6 ? ', ...' : ''}`);
  if (c.nodes.length && c.notInReference) lines.push(`note: ${c.notInReference} node${c.notInReference === 1 ? '' : 's'} of the model ${c.notInReference === 1 ? 'is' : 'are'} not in ${file}`);
  return `${lines.join('\n')}\n`;
}
