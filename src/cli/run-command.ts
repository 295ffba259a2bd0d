// `vdm run FILE`: one forward pass of a model on the WebGPU adapter, with parameters from a
// safetensors file (by dotted path) or seeded initialisation, and example inputs. Reports the time
// per forward pass, the activation memory, each output's statistics; `--profile` the GPU time per
// kernel family, `--check` the agreement with the float64 evaluation, `--out` writes the outputs.
import { kernelFamily } from '../codegen/kernels/kernel.ts';
import { lowerGraph } from '../codegen/lower.ts';
import { planMemory } from '../codegen/plan-memory.ts';
import { checkFile } from '../compiler/frontend/check.ts';
import { diag } from '../compiler/ir/diagnostics.ts';
import { evaluate, exampleInputs, initParams } from '../compiler/reference/evaluate.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { relayout, type NamedTensor } from '../compiler/ir/named-tensor.ts';
import { NoAdapterError } from '../runtime/adapter.ts';
import { openGpu } from '../runtime/gpu.ts';
import { summarizeByKernel } from '../runtime/profile.ts';
import { loadLowered, type LoadedGraph } from '../runtime/run-graph.ts';
import { readSafetensors, SafetensorsError, writeSafetensors } from '../runtime/safetensors.ts';
import { parseDimArgs } from './dim-args.ts';
import { printDiagnostics } from './report.ts';
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
}

class RunError extends Error {}

/** Parameters by dotted path from a safetensors file; every one the model has, with its shape. */
function loadParams(graph: Graph, file: string): Map<string, Float64Array> {
  const st = readSafetensors(file);
  const out = new Map<string, Float64Array>();
  const problems: string[] = [];
  for (const p of graph.nodes.flatMap((n) => n.params)) {
    const t = st.tensors[p.path];
    if (!t) { problems.push(`missing ${p.path} [${p.shape}]`); continue; }
    if (t.shape.join() !== p.shape.join()) { problems.push(`${p.path} is [${t.shape}] in the file, the model needs [${p.shape}]`); continue; }
    if (t.data instanceof BigInt64Array) { problems.push(`${p.path} is ${t.dtype}; parameters must be floating point`); continue; }
    out.set(p.path, Float64Array.from(t.data));
  }
  if (problems.length) {
    const more = problems.length > 8 ? `\n  ... and ${problems.length - 8} more` : '';
    throw new RunError(`${file} does not fit model ${graph.model}:\n  ${problems.slice(0, 8).join('\n  ')}${more}`);
  }
  return out;
}

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
  const { dims, errors } = parseDimArgs(args.dim);
  if (errors.length) {
    printDiagnostics('vdm', errors);
    return 1;
  }
  const repeat = args.repeat ?? 5;
  if (!Number.isInteger(repeat) || repeat < 1) {
    process.stderr.write(`vdm run: --repeat must be a positive integer, got ${args.repeat}\n`);
    return 2;
  }
  const result = checkFile(args.file, { dims, root: args.root });
  if (result.diagnostics.length) {
    printDiagnostics(args.file, result.diagnostics);
    return 1;
  }
  const graph = result.graph;
  if (!graph) {
    printDiagnostics(args.file, [{ ...diag('VDM050', null, `${args.file} defines no model`, 'vdm run needs a file with a model'), file: args.file }]);
    return 1;
  }
  try {
    const seed = args.seed ?? 0;
    const params = args.params ? loadParams(graph, args.params) : initParams(graph, seed);
    const inputs = exampleInputs(graph, seed + 1);
    const gpu = await openGpu();
    let lowered;
    try {
      lowered = lowerGraph(graph, gpu);
    } catch (err) {
      throw new RunError(`cannot lower model ${graph.model} yet: ${(err as Error).message}`);
    }
    const plan = planMemory(lowered);
    const kernels = new Set(lowered.steps.map((s) => s.spec.key)).size;
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    const paramCount = [...params.values()].reduce((n, p) => n + p.length, 0);
    process.stdout.write(`${graph.model} on ${gpu.info.description || gpu.info.vendor || 'the adapter'}: ${lowered.steps.length} dispatches of ${kernels} kernels, `
      + `${paramCount.toLocaleString('en-US')} parameters (${args.params ? args.params : `initialised, seed ${seed}`}), activations ${mib(plan.plannedBytes)}\n`);
    process.stdout.write(`compiling ${kernels} kernels and running once ...\n`);
    const loaded = loadLowered(gpu, lowered, inputs, params, { plan });
    try {
      return await report(args, graph, loaded, repeat, gpu.features.has('timestamp-query'), inputs, params);
    } finally {
      loaded.release();
    }
  } catch (err) {
    if (err instanceof RunError || err instanceof SafetensorsError || err instanceof NoAdapterError) {
      process.stderr.write(`vdm run: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Runs the loaded model: first (compiling), timed, profiled; then the outputs, the check, the file. */
async function report(args: RunArgs, graph: Graph, loaded: LoadedGraph, repeat: number, canProfile: boolean,
  inputs: ReadonlyMap<string, NamedTensor>, params: ReadonlyMap<string, Float64Array>): Promise<number> {
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
  // outputs in the axis order the model declares, whatever layout the buffers had
  const outputs = new Map([...timed.outputs].map(([name, v]) => [name, relayout(v, graph.nodes[graph.outputs.find((o) => o.name === name)!.node].axes)]));
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
