// Reverse-mode differentiation of a graph in float64: each primitive's backward rule (`vjp`, or
// `derivative` for elementwise functions, `partials` for operators) applied from the outputs back.
// It is the oracle for GPU backward passes, as evaluate() is for forward ones; every rule is tested
// against central finite differences.
import type { Evaluation } from './evaluate.ts';
import { paramsRead, type Graph, type GraphNode } from '../ir/graph.ts';
import { fmt, relayout, sumTo, zipWith, type NamedTensor } from '../ir/named-tensor.ts';
import { BINARY_BY_OP, primitiveOf } from '../primitives/index.ts';

export interface Gradients {
  /** d loss / d parameter, by dotted path (every parameter, zero where unused) */
  readonly params: ReadonlyMap<string, Float64Array>;
  /** d loss / d input, by input name, over the input's axes (f32 inputs only) */
  readonly inputs: ReadonlyMap<string, NamedTensor>;
}

function accumulate(into: (NamedTensor | undefined)[], id: number, g: NamedTensor, axes: GraphNode['axes']): void {
  const names = new Set(g.axes.map(([n]) => n));
  if (g.axes.length !== axes.length || axes.some(([n]) => !names.has(n))) throw new Error(`gradient over ${fmt(g.axes)} for a value over ${fmt(axes)}`);
  const v = relayout(g, axes);
  const have = into[id];
  if (!have) { into[id] = v; return; }
  for (let i = 0; i < v.data.length; i++) have.data[i] += v.data[i];
}

/**
 * Gradients of loss = sum over outputs of <seed, output> with respect to every parameter and input,
 * given the forward evaluation `ev` of the same inputs and `params`.
 */
export function backward(graph: Graph, ev: Evaluation, params: ReadonlyMap<string, Float64Array>,
  seeds: ReadonlyMap<string, NamedTensor>): Gradients {
  const grads: (NamedTensor | undefined)[] = new Array(graph.nodes.length);
  for (const o of graph.outputs) {
    const seed = seeds.get(o.name);
    if (seed) accumulate(grads, o.node, seed, graph.nodes[o.node].axes);
  }
  const paramGrads = new Map<string, Float64Array>();
  for (const n of graph.nodes) for (const p of n.params) paramGrads.set(p.path, new Float64Array(p.shape.reduce((a, b) => a * b, 1)));
  const inputGrads = new Map<string, NamedTensor>();

  for (let id = graph.nodes.length - 1; id >= 0; id--) {
    const node = graph.nodes[id];
    const g = grads[id];
    if (!g) continue;
    const args = node.inputs.map((i) => ev.values[i]);
    const value = ev.values[id];
    const send = (k: number, gi: NamedTensor | null) => {
      if (!gi) return;
      const target = graph.nodes[node.inputs[k]];
      if (target.dtype !== 'f32') return; // integer ids have no gradient
      accumulate(grads, node.inputs[k], sumTo(gi, target.axes), target.axes);
    };
    if (node.op === 'input') {
      if (node.dtype === 'f32') inputGrads.set(String(node.attrs.name), g);
      continue;
    }
    const op = BINARY_BY_OP.get(node.op);
    if (op) {
      if (args.length === 2) {
        send(0, zipWith(node.axes, [g, args[0], args[1]], (gv, a, b) => gv * op.partials(a, b)[0]));
        send(1, zipWith(node.axes, [g, args[0], args[1]], (gv, a, b) => gv * op.partials(a, b)[1]));
      } else {
        const k = Number(node.attrs.scalar);
        const side = node.attrs.side === 'left' ? 1 : 0; // the tensor's place in (a, b)
        send(0, zipWith(node.axes, [g, args[0]], (gv, x) => gv * (side ? op.partials(k, x)[1] : op.partials(x, k)[0])));
      }
      continue;
    }
    const prim = primitiveOf(node.op);
    if (prim?.derivative) {
      const d = prim.derivative;
      send(0, zipWith(node.axes, [g, args[0], value], (gv, x, y) => gv * d(x, y)));
      continue;
    }
    if (!prim?.vjp) throw new Error(`primitive '${node.op}' (${node.path}) has no backward rule yet`);
    // A shared module's parameter is read by a node of each call: its gradient sums over them.
    const read = paramsRead(node);
    const own = new Map<string, Float64Array>();
    for (const p of read) own.set(p.leaf, params.get(p.path)!);
    const r = prim.vjp({ inputs: args, params: own, attrs: node.attrs, axes: node.axes, value, grad: g });
    r.inputs.forEach((gi, k) => send(k, gi));
    for (const p of read) {
      const gp = r.params?.get(p.leaf);
      if (!gp) continue;
      const acc = paramGrads.get(p.path)!;
      for (let i = 0; i < gp.length; i++) acc[i] += gp[i];
    }
  }
  return { params: paramGrads, inputs: inputGrads };
}
