// GEMM prologue and epilogue fusion, after the elementwise chains are planned (fuse.ts). A dense
// layer (linear, attention's projections) runs as one GEMM kernel that can normalise and modulate
// its input rows and apply act(acc + bias) * gate + residual to its result (kernels/gemm.ts), so:
// - epilogue: an elementwise kernel whose expression is [residual +] [gate *] [act(] L [)], with L
//   a linear (or attention: no activation) read by nothing else, becomes L's GEMM writing that
//   kernel's value (DiT: x + gate * proj(attn), x + gate * fc2(h), gelu(fc1(y)));
// - prologue: a linear or attention whose input is [layernorm(x) * (1 + scale)] [+ shift] (the
//   layernorm without affine, along the contracted axis; read by nothing else) reads x and does
//   the normalisation and modulate itself (DiT's adaLN before qkv, fc1 and the final linear).
// gate, scale and shift are stored values over some of the layer's axes, the residual one over them.
// A split whose parts only such GEMM operands read (adaLN's shift, scale and gate vectors) is not
// copied: the GEMMs read the parts in place from the split's input.
// Only forward lowerings fuse beyond an activation: a training step's backward rules read the
// layer's input and the gated value (the caller passes allowed = false).
import type { Graph, GraphNode } from '../compiler/ir/graph.ts';
import { ACTIVATIONS } from './kernels/epilogue.ts';

/** The activations a GEMM epilogue applies (kernels/epilogue.ts). */
const EPILOGUE_ACTIVATIONS: ReadonlySet<string> = new Set(ACTIVATIONS.filter((a) => a !== 'none'));

/** A kernel node whose value a GEMM writes: the dense layer `node` and what its epilogue applies (node ids). */
export interface GemmEpilogue {
  readonly node: number;
  readonly activation?: string;
  readonly gate?: number;
  readonly residual?: number;
}

/** A dense layer's input folded into its GEMM: `input` (the layernorm's input) normalised, then modulated. */
export interface GemmPrologue {
  readonly input: number;
  readonly eps: number;
  readonly scale?: number;
  readonly shift?: number;
}

export interface GemmFusionPlan {
  readonly epilogues: Map<number, GemmEpilogue>;
  readonly prologues: Map<number, GemmPrologue>;
  /** split parts read in place (no copy, no dispatch): every node reading them reads them as a GEMM operand */
  readonly views: Set<number>;
}

/** The axes of `inner` are some of `outer`'s, with the same sizes. */
const within = (inner: GraphNode, outer: GraphNode) =>
  inner.axes.every(([n, s]) => outer.axes.some(([m, t]) => m === n && t === s));
const sameAxes = (a: GraphNode, b: GraphNode) => a.axes.length === b.axes.length && within(a, b);
// A linear over several axes copies its input first (primitives/linear.ts): nothing folds into it.
const isDense = (n: GraphNode) => (n.op === 'linear' && n.attrs.over === undefined) || (n.op === 'attention' && n.inputs.length >= 1);
const contracted = (n: GraphNode) => (n.op === 'linear' ? String(n.attrs.axis) : 'c');

interface State {
  readonly graph: Graph;
  readonly uses: readonly number[];
  readonly outputs: ReadonlySet<number>;
  readonly keep: ReadonlySet<number>;
  /** nodes computed inside their consumer's kernel (updated) */
  readonly inlined: Set<number>;
  /** elementwise kernel node -> the node ids it reads (updated) */
  readonly leaves: Map<number, number[]>;
}

/** A value only one node reads and nobody else needs stored. */
const private1 = (s: State, id: number) => s.uses[id] === 1 && !s.outputs.has(id) && !s.keep.has(id);

type Found = { node: number; activation?: string; gate?: number; residual?: number; absorbed: number[] };

/**
 * The epilogue form of node `id` inside kernel `top`'s expression, from `stage` on (0: residual
 * add, 1: gate multiply, 2: activation, 3: the layer itself).
 */
function epilogueOf(s: State, top: number, id: number, stage: number): Found | undefined {
  const { graph } = s;
  const n = graph.nodes[id];
  const leaves = s.leaves.get(top)!;
  if (id !== top && leaves.includes(id)) {
    // a leaf: only the layer itself
    return isDense(n) && private1(s, id) && sameAxes(n, graph.nodes[top]) ? { node: id, absorbed: [] } : undefined;
  }
  if (id !== top && !s.inlined.has(id)) return undefined;
  const stored = (i: number) => leaves.includes(i);
  const pairs = n.inputs.length === 2 ? [[n.inputs[0], n.inputs[1]], [n.inputs[1], n.inputs[0]]] : [];
  if (stage <= 0 && n.op === 'add') {
    for (const [inner, r] of pairs) {
      if (!stored(r) || !within(graph.nodes[r], n)) continue;
      const f = epilogueOf(s, top, inner, 1);
      if (f) return { ...f, residual: r, absorbed: [...f.absorbed, id] };
    }
  }
  if (stage <= 1 && n.op === 'mul') {
    for (const [inner, g] of pairs) {
      if (!stored(g) || !within(graph.nodes[g], n)) continue;
      const f = epilogueOf(s, top, inner, 2);
      if (f) return { ...f, gate: g, absorbed: [...f.absorbed, id] };
    }
  }
  if (stage <= 2 && EPILOGUE_ACTIVATIONS.has(n.op) && n.inputs.length === 1) {
    const f = epilogueOf(s, top, n.inputs[0], 3);
    if (f && graph.nodes[f.node].op === 'linear') return { ...f, activation: n.op, absorbed: [...f.absorbed, id] };
  }
  return undefined;
}

/** The modulate form [layernorm(x) * (1 + scale)] [+ shift] of the input `id` of dense layer `layer`. */
function prologueOf(s: State, layer: GraphNode, id: number): { p: GemmPrologue; absorbed: number[] } | undefined {
  const { graph } = s;
  const n = graph.nodes[id];
  const norm = (i: number) => {
    const ln = graph.nodes[i];
    const ok = ln.op === 'layernorm' && ln.attrs.affine === false && ln.params.length === 0 && String(ln.attrs.axis) === contracted(layer)
      && private1(s, i) && sameAxes(ln, n);
    return ok ? { input: ln.inputs[0], eps: Number(ln.attrs.eps) } : undefined;
  };
  if (!private1(s, id)) return undefined;
  if (n.op === 'layernorm') {
    const p = norm(id);
    return p && { p, absorbed: [id] };
  }
  const leaves = s.leaves.get(id);
  if (!leaves) return undefined;
  const stored = (i: number) => leaves.includes(i) && within(graph.nodes[i], n);
  const pairs = (m: GraphNode) => (m.inputs.length === 2 ? [[m.inputs[0], m.inputs[1]], [m.inputs[1], m.inputs[0]]] : []);
  // x * (1 + scale), x a stored layernorm
  const scaled = (i: number, top: boolean): { p: GemmPrologue; absorbed: number[] } | undefined => {
    const m = graph.nodes[i];
    if (!top && !s.inlined.has(i)) return undefined;
    if (m.op !== 'mul') return undefined;
    for (const [x, one] of pairs(m)) {
      const o = graph.nodes[one];
      const isOnePlus = o.op === 'add' && o.inputs.length === 1 && Number(o.attrs.scalar) === 1 && s.inlined.has(one) && stored(o.inputs[0]);
      const p = isOnePlus && leaves.includes(x) ? norm(x) : undefined;
      if (p) return { p: { ...p, scale: o.inputs[0] }, absorbed: [x, one, i] };
    }
    return undefined;
  };
  if (n.op === 'add') {
    for (const [x, h] of pairs(n)) {
      if (!stored(h)) continue;
      const alone = leaves.includes(x) ? norm(x) : undefined;
      const inner = scaled(x, false) ?? (alone && { p: alone, absorbed: [x] });
      if (inner) return { p: { ...inner.p, shift: h }, absorbed: [...inner.absorbed, id] };
    }
  }
  return scaled(id, true);
}

/**
 * Plans the GEMM epilogues and prologues over an elementwise fusion plan, updating its `inlined`
 * and `leaves` (a kernel that became a GEMM's epilogue or prologue is no longer one of its own).
 * With `allowed` false, only activations become epilogues.
 */
export function planGemmFusion(graph: Graph, inlined: Set<number>, leaves: Map<number, number[]>, keep: ReadonlySet<number>, allowed: boolean): GemmFusionPlan {
  const uses = new Array<number>(graph.nodes.length).fill(0);
  for (const n of graph.nodes) for (const i of n.inputs) uses[i]++;
  const s: State = { graph, uses, outputs: new Set(graph.outputs.map((o) => o.node)), keep, inlined, leaves };
  const epilogues = new Map<number, GemmEpilogue>();
  for (const id of [...leaves.keys()]) {
    const f = epilogueOf(s, id, id, allowed ? 0 : 2);
    if (!f || (!allowed && (f.activation === undefined || graph.nodes[f.node].op !== 'linear'))) continue;
    epilogues.set(id, { node: f.node, activation: f.activation, gate: f.gate, residual: f.residual });
    inlined.add(f.node);
    leaves.delete(id);
  }
  const prologues = new Map<number, GemmPrologue>();
  const views = new Set<number>();
  if (!allowed) return { epilogues, prologues, views };
  for (const layer of graph.nodes) {
    // padded windowed attention pads its input after the norm (Video Swin): the norm is not folded in
    if (!isDense(layer) || layer.attrs.pad === true) continue;
    const found = prologueOf(s, layer, layer.inputs[0]);
    if (!found) continue;
    prologues.set(layer.id, found.p);
    for (const a of found.absorbed) inlined.add(a);
    leaves.delete(layer.inputs[0]);
  }
  // A split whose every part only GEMMs read (as scale, shift, gate or residual: adaLN's six
  // modulation vectors) is not copied: the GEMMs read the parts in place.
  const operandUses = new Array<number>(graph.nodes.length).fill(0);
  for (const p of prologues.values()) for (const i of [p.scale, p.shift]) if (i !== undefined) operandUses[i]++;
  for (const e of epilogues.values()) for (const i of [e.gate, e.residual]) if (i !== undefined) operandUses[i]++;
  const inPlace = (n: GraphNode) => n.dtype === 'f32' && operandUses[n.id] > 0 && operandUses[n.id] === uses[n.id] && !s.outputs.has(n.id) && !keep.has(n.id);
  for (const n of graph.nodes) {
    if (n.op !== 'split' || !inPlace(n)) continue;
    const siblings = graph.nodes.filter((m) => m.op === 'split' && m.inputs[0] === n.inputs[0] && m.attrs.axis === n.attrs.axis && m.attrs.n === n.attrs.n);
    if (siblings.every(inPlace)) views.add(n.id);
  }
  return { epilogues, prologues, views };
}
