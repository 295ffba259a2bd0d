// `vdm info FILE`: a per-layer table (path, op, output shape, params, MACs, activation bytes) and
// totals; `--json` the costs as JSON; `--graph` the graph IR; `--params` every parameter with its
// shape and initialiser.
import { costsOf, type Costs } from '../compiler/ir/cost.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { forwardMemoryOf, LoweringError, parameterList, trainingMemoryOf, type TrainingMemoryReport } from '../pipeline.ts';
import { dimsOrReport } from './dim-args.ts';
import { checkedOrReport } from './report.ts';
import { renderTable } from './table.ts';
import { grouped, humanBytes, humanCount } from './units.ts';

export interface InfoArgs {
  readonly file: string;
  readonly dim?: readonly (string | number)[];
  readonly root?: string;
  readonly json?: boolean;
  readonly graph?: boolean;
  readonly train?: boolean;
  /** list every parameter (name, shape, count, initialiser) instead of the layers */
  readonly params?: boolean;
}

export const LEGEND = "MACs = multiply-accumulates (the DiT paper's 'Gflops' are MACs); FLOPs = 2 x MACs";

export function infoCommand(args: InfoArgs): number {
  const dims = dimsOrReport(args.dim);
  if (!dims) return 1;
  const model = checkedOrReport(args.file, { dims, root: args.root, purpose: 'vdm info' });
  if (!model) return 1;
  const { graph } = model;
  if (args.params) {
    process.stdout.write(`${args.json ? paramsJson(graph) : paramsText(graph)}\n`);
    return 0;
  }
  const costs = costsOf(graph);
  const train = args.train ? trainingMemoryOrProblem(model) : undefined;
  if (train && !train.ok) {
    process.stderr.write(`vdm info: ${args.file}: ${train.message}\n`);
    return 1;
  }
  if (args.graph) process.stdout.write(`${JSON.stringify(graph, null, 2)}\n`);
  else if (args.json) process.stdout.write(`${costsJson(costs, train?.ok ? train : undefined, forwardOrNull(model))}\n`);
  else process.stdout.write(`${infoText(graph, costs)}\n${forwardText(model)}${train?.ok ? `\n${trainText(train)}` : ''}\n`);
  return 0;
}

/** The totals, then one layer per line: valid JSON that stays readable. */
export function costsJson(c: Costs, train?: Extract<TrainingMemoryReport, { ok: true }>, forward?: ReturnType<typeof forwardMemoryOf> | null): string {
  const layers = c.layers.map((l) => `    ${JSON.stringify({
    path: l.path, op: l.op, shape: l.shape, params: l.params, macs: l.macs, activationBytes: l.activationBytes,
    ...(l.sharedWith ? { sharedWith: l.sharedWith } : {}),
  })}`);
  return [
    '{',
    `  "params": ${c.params},`,
    `  "macs": ${c.macs},`,
    `  "flops": ${c.flops},`,
    `  "activationBytes": ${c.activationBytes},`,
    ...(forward ? [`  "forward": ${JSON.stringify({ ...forward.memory, dispatches: forward.dispatches })},`] : []),
    ...(train ? [`  "training": ${JSON.stringify({ batch: train.batch, ...train.kept.memory, dispatches: train.kept.dispatches, recompute: { ...train.recompute.memory, dispatches: train.recompute.dispatches } })},`] : []),
    `  "layers": [${layers.length ? `\n${layers.join(',\n')}\n  ` : ''}]`,
    '}',
  ].join('\n');
}

const shapeText = (shape: Costs['layers'][number]['shape']) => `[${shape.map(([n, s]) => `${n}=${s}`).join(', ')}]`;

export function infoText(graph: Graph, costs: Costs): string {
  const dims = Object.entries(graph.dims).map(([k, v]) => `${k}=${v}`).join(', ');
  const rows = costs.layers.map((l) => [
    l.path, l.op, shapeText(l.shape), l.params ? humanCount(l.params) : l.sharedWith ? 'shared' : '-', l.macs ? humanCount(l.macs) : '-', humanBytes(l.activationBytes),
  ]);
  const table = renderTable(['path', 'op', 'output shape', 'params', 'MACs', 'activations'], rows, new Set([3, 4, 5]));
  return [
    `model ${graph.model} (${graph.file})${dims ? `  dims: ${dims}` : ''}`,
    '',
    table,
    '',
    `total  params ${humanCount(costs.params)} (${grouped(costs.params)})  MACs ${humanCount(costs.macs)}  FLOPs ${humanCount(costs.flops)}  activations ${humanBytes(costs.activationBytes)} (every output at once)`,
    ...(costs.layers.some((l) => l.sharedWith) ? ["shared = a later call of a shared module: the layer reads its first call's parameters, counted there once"] : []),
    LEGEND,
  ].join('\n');
}

/**
 * The training step's memory, or why it cannot be planned: as for the forward pass (LoweringError),
 * what the kernels cannot lower (a --dim past a dispatch limit) is the user's to change, not a bug.
 */
function trainingMemoryOrProblem(model: Parameters<typeof trainingMemoryOf>[0]): TrainingMemoryReport {
  try {
    return trainingMemoryOf(model);
  } catch (err) {
    return { ok: false, message: `cannot plan a training step of model ${model.graph.model} yet: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The planned forward pass, or null when the kernels cannot lower the model yet. */
function forwardOrNull(model: Parameters<typeof forwardMemoryOf>[0]) {
  try {
    return forwardMemoryOf(model);
  } catch (err) {
    if (err instanceof LoweringError) return null;
    throw err;
  }
}

/**
 * The forward pass's device memory as the runtime allocates it (values share the planned slots);
 * the table's activation column is every output held at once, which no run allocates.
 */
function forwardText(model: Parameters<typeof forwardMemoryOf>[0]): string {
  const f = forwardOrNull(model);
  if (!f) return 'forward pass: not lowered (vdm compile says why)';
  const m = f.memory;
  return [
    `forward pass (${f.dispatches} dispatches): peak device memory ${humanBytes(m.total)}`,
    `  parameters  ${humanBytes(m.params)}`,
    `  activations and scratch (planned: values whose lifetimes do not overlap share memory)  ${humanBytes(m.activations)}`,
    `  inputs and outputs  ${humanBytes(m.other)}`,
  ].join('\n');
}

/** The training step's peak device memory, by what holds it, and with --recompute. */
function trainText(t: Extract<TrainingMemoryReport, { ok: true }>): string {
  const m = t.kept.memory, r = t.recompute.memory;
  return [
    `training step (batch ${t.batch}, ${t.kept.dispatches} dispatches): peak device memory ${humanBytes(m.total)}`,
    `  parameters, gradients, Adam moments, EMA  ${humanBytes(m.arenas)}`,
    `  activations kept for the backward, gradients, scratch (planned)  ${humanBytes(m.activations)}`,
    `  inputs, noise, targets, tables  ${humanBytes(m.other)}`,
    `with --recompute (${t.recompute.dispatches} dispatches: each block's forward runs again before its backward): peak ${humanBytes(r.total)}, activations ${humanBytes(r.activations)}`,
  ].join('\n');
}

/** Every parameter, one per line: dotted name, shape, count, init and the distribution it is drawn from. */
function paramsText(graph: Graph): string {
  const list = parameterList(graph);
  const rows = list.map((p) => [p.path, `[${p.shape.join(', ')}]`, grouped(p.count), p.init, p.distribution]);
  const total = list.reduce((n, p) => n + p.count, 0);
  return [
    `model ${graph.model}: ${list.length} parameter tensors, ${grouped(total)} parameters (vdm init writes them; vdm run --params reads them by these names)`,
    '',
    renderTable(['name', 'shape', 'count', 'init', 'drawn from'], rows, new Set([2])),
  ].join('\n');
}

function paramsJson(graph: Graph): string {
  const list = parameterList(graph);
  return [
    '{',
    `  "model": ${JSON.stringify(graph.model)},`,
    `  "params": ${list.reduce((n, p) => n + p.count, 0)},`,
    `  "tensors": [${list.length ? `\n${list.map((p) => `    ${JSON.stringify({ name: p.path, shape: p.shape, count: p.count, init: p.init, distribution: p.distribution })}`).join(',\n')}\n  ` : ''}]`,
    '}',
  ].join('\n');
}
