// Backward lowering: the gradient of a loss with respect to every parameter, as kernels appended to
// a forward lowering whose fusion kept every value a rule reads (`gradientReads`). Nodes are visited in reverse; each writes one gradient buffer per
// differentiable input (a "contribution"), and a value read by several consumers gets the sum of
// its contributions in one elementwise kernel before its own rule runs. Elementwise functions and
// operators are handled here from their derivative expressions; every other primitive brings its
// `lowerVjp`. Forward values stay alive until their last backward use: the memory plan sees that.
import { paramsRead, type Graph } from '../compiler/ir/graph.ts';
import { numelOf } from '../compiler/ir/named-tensor.ts';
import { primitiveOf } from '../compiler/primitives/index.ts';
import { emitElementwise, emitZeros, viewOver, type LowerVjpCall, type Value } from '../compiler/primitives/lowering.ts';
import { elementwiseKernel } from './kernels/elementwise.ts';
import type { AdapterTraits } from './kernels/kernel.ts';
import { reduceKernel } from './kernels/reduce.ts';
import { isElementwise } from './fuse.ts';
import type { RecomputeBlock } from './recompute.ts';
import { gradientExprs } from './gradient-exprs.ts';
import type { BufferDecl, BufferRole, LoweredGraph, LoweredStep } from './lower.ts';
import { inputsOf, type Expr } from './kernels/expr.ts';

export interface BackwardLowering extends LoweredGraph {
  /** parameter path -> the buffer of its gradient (role 'grad') */
  readonly paramGrads: ReadonlyMap<string, string>;
}

const MAX_SUM = 6;

/** Which values depend on a parameter: only they need gradients. */
function needsGradient(graph: Graph): boolean[] {
  const needs = graph.nodes.map(() => false);
  for (const n of graph.nodes) needs[n.id] = n.dtype === 'f32' && (n.params.length > 0 || !!n.shares || n.inputs.some((i) => needs[i]));
  return needs;
}

/**
 * The node values the backward reads that fusion could otherwise inline: the operands (or value) an
 * elementwise rule's expression uses. Fusion only inlines a value read by one elementwise consumer,
 * so no other rule can read an inlined value. `add` and scalings read nothing: their chains still fuse.
 */
export function gradientReads(graph: Graph): Set<number> {
  const needs = needsGradient(graph);
  const reads = new Set<number>();
  for (const node of graph.nodes) {
    if (!needs[node.id] || !isElementwise(node)) continue;
    const exprs = gradientExprs(node);
    const used = inputsOf(node.inputs.flatMap((i, k) => (needs[i] ? [exprs[k]] : [])));
    node.inputs.forEach((i, k) => { if (used.has(`in${k + 1}`)) reads.add(i); });
    if (used.has(`in${node.inputs.length + 1}`)) reads.add(node.id);
  }
  return reads;
}

/**
 * Appends the backward pass to `forward`, lowered with fusion off or keeping `gradientReads(graph)`.
 * `seeds`: output name -> the buffer holding d loss / d output over that output's value axes.
 * `recompute`: blocks whose kernels run again before their first backward rule; the rules then
 * read the recomputed values, so the forward's die early (recompute.ts).
 */
export function lowerBackward(graph: Graph, forward: LoweredGraph, seeds: ReadonlyMap<string, Value>, adapter?: AdapterTraits,
  recompute: readonly RecomputeBlock[] = []): BackwardLowering {
  const kept = gradientReads(graph);
  const lost = forward.values.findIndex((v, id) => v.fused && kept.has(id));
  if (lost >= 0) throw new Error(`lowerBackward: node ${lost}'s value was fused away but its gradient rule reads it`);
  const buffers = new Map<string, BufferDecl>(forward.buffers);
  const steps: LoweredStep[] = [...forward.steps];
  const paramGrads = new Map<string, string>();
  const declare = (name: string, elements: number, role: BufferRole) => {
    if (buffers.has(name)) throw new Error(`lowerBackward: buffer '${name}' declared twice`);
    buffers.set(name, { name, elements: Math.max(1, elements), dtype: 'f32', role });
    return name;
  };
  const emitter = (label: string) => (spec: LoweredStep['spec'], bufs: readonly string[]) => {
    if (bufs.length !== spec.bindings.length) throw new Error(`backward ${label}: ${spec.bindings.length} bindings, ${bufs.length} buffers`);
    steps.push({ spec, buffers: [...bufs], label });
  };

  const needs = needsGradient(graph);
  // the value each rule reads: the forward's, or a block's recomputed one once its kernels ran again
  const values = [...forward.values];
  const blockAt = new Map(recompute.flatMap((b) => [...b.nodes].map((id) => [id, b] as const)));
  const recomputed = new Set<RecomputeBlock>();
  const rerun = (b: RecomputeBlock) => {
    recomputed.add(b);
    for (const d of b.lowered.buffers.values()) if (!buffers.has(d.name)) buffers.set(d.name, d);
    steps.push(...b.lowered.steps);
    for (const id of b.nodes) values[id] = b.lowered.values[id];
  };
  const contributions: Value[][] = graph.nodes.map(() => []);
  // A shared module's parameter is read by a node of each of its calls: each writes a part, summed at the end.
  const readers = new Map<string, number>();
  for (const n of graph.nodes) for (const p of paramsRead(n)) readers.set(p.path, (readers.get(p.path) ?? 0) + 1);
  const shareParts = new Map<string, Value[]>();
  for (const o of graph.outputs) {
    const seed = seeds.get(o.name);
    if (seed && needs[o.node]) contributions[o.node].push(seed);
  }

  for (let id = graph.nodes.length - 1; id >= 0; id--) {
    const node = graph.nodes[id];
    const parts = contributions[id];
    if (parts.length === 0 || node.op === 'input') continue;
    const label = `d ${node.path || node.op} (${node.op}, node ${id})`;
    const emit = emitter(label);
    const block = blockAt.get(id);
    if (block && !recomputed.has(block)) rerun(block);
    const out = values[id];
    const grad = sumContributions(parts, out, `g${id}`, declare, emit);
    const exprs = isElementwise(node) ? gradientExprs(node) : null;
    const inputGrads = node.inputs.map((i, k) => {
      if (!needs[i]) return null;
      // d (a + b) / d a = g over the same axes: pass g on rather than copy it (residual streams)
      if (exprs && isIdentity(exprs[k]) && sameAxes(values[i].axes, grad.axes)) {
        contributions[i].push(grad);
        return null;
      }
      const v: Value = { buffer: declare(`g${id}.in${k}`, numelOf(graph.nodes[i].axes), 'scratch'), axes: values[i].axes };
      contributions[i].push(v);
      return v;
    });
    const own = new Map<string, string>();
    const ownGrads = new Map<string, string>();
    for (const p of paramsRead(node)) {
      own.set(p.leaf, forward.params.get(p.path)!);
      const elements = buffers.get(forward.params.get(p.path)!)!.elements;
      if (readers.get(p.path) === 1) {
        const name = declare(`grad.${p.path}`, elements, 'grad');
        ownGrads.set(p.leaf, name);
        paramGrads.set(p.path, name);
        continue;
      }
      const mine = shareParts.get(p.path) ?? [];
      shareParts.set(p.path, mine);
      const name = declare(`grad.${p.path}.part${mine.length}`, elements, 'scratch');
      mine.push({ buffer: name, axes: [['n', elements]] });
      ownGrads.set(p.leaf, name);
    }
    let scratchCount = 0;
    const call: LowerVjpCall = {
      node, attrs: node.attrs, inputs: node.inputs.map((i) => values[i]), params: own, out, adapter,
      grad, inputGrads, paramGrads: ownGrads,
      scratch: (name, elements) => declare(`g${id}.${name}.${scratchCount++}`, elements, 'scratch'),
      emit,
    };
    if (isElementwise(node)) lowerElementwiseVjp(call);
    else {
      const prim = primitiveOf(node.op);
      if (!prim?.lowerVjp) throw new Error(`primitive '${node.op}' (${node.path}) has no GPU backward rule yet`);
      prim.lowerVjp(call);
    }
  }
  for (const [path, mine] of shareParts) {
    const name = declare(`grad.${path}`, buffers.get(forward.params.get(path)!)!.elements, 'grad');
    paramGrads.set(path, name);
    sumInto(mine, { buffer: name, axes: mine[0].axes }, `grad.${path}`, declare, emitter(`sum d ${path}`));
  }
  // Parameters no path reaches (unused, or behind an integer input) get a zero gradient.
  for (const n of graph.nodes) for (const p of n.params) {
    if (paramGrads.has(p.path)) continue;
    const name = declare(`grad.${p.path}`, p.shape.reduce((a, b) => a * b, 1), 'grad');
    paramGrads.set(p.path, name);
    emitZeros({ emit: emitter(`zero ${p.path}`) }, { buffer: name, axes: [['n', buffers.get(name)!.elements]] });
  }
  return { ...forward, buffers, steps, paramGrads };
}

/** g · 1: the gradient passes through unchanged. */
const isIdentity = (e: Expr) => e.op === 'mul' && e.a.op === 'input' && e.a.name === 'in0' && e.b.op === 'const' && e.b.value === 1;
const sameAxes = (a: Value['axes'], b: Value['axes']) => a.length === b.length && a.every(([n, s], i) => b[i][0] === n && b[i][1] === s);

/** dst = the sum of `parts`, in rounds of at most MAX_SUM (a shared parameter's gradient from its readers). */
function sumInto(parts: readonly Value[], dst: Value, name: string,
  declare: (name: string, elements: number, role: BufferRole) => string, emit: (spec: LoweredStep['spec'], bufs: readonly string[]) => void): void {
  let rest = [...parts];
  let round = 0;
  while (rest.length > MAX_SUM) {
    const group = rest.slice(0, MAX_SUM);
    const sum: Value = { buffer: declare(`${name}.sum${round++}`, numelOf(dst.axes), 'scratch'), axes: dst.axes };
    emitElementwise({ emit }, dst.axes, group, sum, sumExpr(group.length));
    rest = [sum, ...rest.slice(MAX_SUM)];
  }
  emitElementwise({ emit }, dst.axes, rest, dst, sumExpr(rest.length));
}

const sumExpr = (n: number): Expr => Array.from({ length: n - 1 }, (_, k) => k + 1)
  .reduce<Expr>((e, k) => ({ op: 'add', a: e, b: { op: 'input', name: `in${k}` } }), { op: 'input', name: 'in0' });

/** The gradient of a value from its consumers' contributions: the one buffer, or their sum. */
function sumContributions(parts: readonly Value[], out: Value, name: string,
  declare: (name: string, elements: number, role: BufferRole) => string, emit: (spec: LoweredStep['spec'], bufs: readonly string[]) => void): Value {
  let acc = parts[0];
  let rest = parts.slice(1);
  let round = 0;
  while (rest.length > 0) {
    const group = [acc, ...rest.slice(0, MAX_SUM - 1)];
    rest = rest.slice(MAX_SUM - 1);
    const target = out.axes;
    const sum: Value = { buffer: declare(`${name}.sum${round++}`, numelOf(target), 'scratch'), axes: target };
    const expr = group.slice(1).reduce<Expr>((e, _, k) => ({ op: 'add', a: e, b: { op: 'input', name: `in${k + 1}` } }), { op: 'input', name: 'in0' });
    emitElementwise({ emit }, target, group, sum, expr);
    acc = sum;
  }
  return acc;
}

/**
 * Elementwise functions and operators: d input = g * (partial derivative), over the node's axes; an
 * operand that was broadcast (fewer axes) gets the sum over the axes it lacks.
 */
function lowerElementwiseVjp(call: LowerVjpCall): void {
  const { node } = call;
  const target = call.out.axes;
  const exprs = gradientExprs(node);
  const reads: Value[] = [call.grad, ...call.inputs, call.out];
  call.inputGrads.forEach((dst, k) => {
    if (!dst) return;
    const expr = exprs[k];
    const used = inputsOf([expr]);
    const live = reads.flatMap((v, j) => (used.has(`in${j}`) ? [{ name: `in${j}`, v }] : []));
    const ins = live.map(({ name, v }) => ({ name, view: viewOver(v, target) }));
    const bufs = live.map(({ v }) => v.buffer);
    if (sameSizes(dst.axes, target)) {
      call.emit(elementwiseKernel({ shape: target.map(([, s]) => s), inputs: ins, outputs: [{ name: 'out', view: viewOver(dst, target), expr }] }), [...bufs, dst.buffer]);
      return;
    }
    // broadcast operand: the full-size product, then its sum over the axes it lacks or has with size 1
    const full = call.scratch('bcast', numelOf(target));
    const fullValue: Value = { buffer: full, axes: target };
    call.emit(elementwiseKernel({ shape: target.map(([, s]) => s), inputs: ins, outputs: [{ name: 'out', view: viewOver(fullValue, target), expr }] }), [...bufs, full]);
    reduceTo(call, fullValue, dst);
  });
}

/** Every axis of `a` is one of `b`'s with the same size, and they have as many. */
const sameSizes = (a: Value['axes'], b: Value['axes']) => a.length === b.length && a.every(([n, s]) => b.some(([m, t]) => m === n && t === s));

/**
 * dst = the sum of `full` over the axes `dst` lacks or has with size 1 where `full` has more (dst's
 * axes are a subset of full's by name).
 */
export function reduceTo(call: Pick<LowerVjpCall, 'emit'>, full: Value, dst: Value): void {
  const sizes = new Map(dst.axes.map(([n, s]) => [n, s]));
  const keeps = ([n, s]: readonly [string, number]) => sizes.get(n) === s;
  const axes = full.axes.flatMap((a, i) => (keeps(a) ? [] : [i]));
  const kept = full.axes.filter(keeps);
  const x = viewOver(full, full.axes);
  call.emit(reduceKernel({ op: 'sum', x, axes, y: viewOver(dst, kept) }), [full.buffer, dst.buffer]);
}

