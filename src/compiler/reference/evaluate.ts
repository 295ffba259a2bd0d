// Reference evaluation of a checked graph in float64 on the CPU: each node's value from its
// primitive's `reference`. It is slow and exact, the oracle that lowered GPU programs are tested
// against; it is also how parameters are initialised and example inputs drawn, reproducibly.
import { paramLeaf, paramsRead, type Graph, type GraphNode } from '../ir/graph.ts';
import { fmt, relayout, tensor, zipWith, type NamedTensor } from '../ir/named-tensor.ts';
import { BINARY_BY_OP, primitiveOf } from '../primitives/index.ts';


/** mulberry32: a small seeded generator, so initialisations and inputs are reproducible. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box-Muller) from a uniform generator. */
export function gaussian(uniform: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** [fan_in, fan_out] of a parameter: the primitive's rule, else [first, last] of its shape. */
export function fansOf(op: string, leaf: string, shape: readonly number[]): readonly [number, number] {
  const rule = primitiveOf(op)?.fans;
  if (rule) return rule(leaf, shape);
  return [shape[0] ?? 1, shape[shape.length - 1] ?? 1];
}

/**
 * Every parameter of the graph, by dotted path, drawn as its `init` says: "default" uniform in
 * ±1/sqrt(fan_in) (PyTorch's layers), "xavier_uniform" uniform in ±sqrt(6 / (fan_in + fan_out)),
 * "normal" N(0, 0.02²), "scaled_normal" N(0, 1/fan_in), "zeros", "ones". Row-major in the parameter's shape.
 */
export function initParams(graph: Graph, seed?: number): Map<string, Float64Array>;
/**
 * The same draws rounded to float32 as they are made (what the GPU holds): no float64 copy of a
 * large model is ever allocated.
 */
export function initParams(graph: Graph, seed: number, f32: true): Map<string, Float32Array>;
export function initParams(graph: Graph, seed = 0, f32 = false): Map<string, Float64Array | Float32Array> {
  const uniform = prng(seed);
  const normal = gaussian(uniform);
  const out = new Map<string, Float64Array | Float32Array>();
  for (const node of graph.nodes) {
    for (const p of node.params) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const [fanIn, fanOut] = fansOf(node.op, paramLeaf(node, p), p.shape);
      const v = f32 ? new Float32Array(n) : new Float64Array(n);
      const within = (bound: number) => { for (let i = 0; i < n; i++) v[i] = (2 * uniform() - 1) * bound; };
      switch (p.init) {
        case 'zeros': break;
        case 'ones': v.fill(1); break;
        case 'normal': for (let i = 0; i < n; i++) v[i] = 0.02 * normal(); break;
        case 'scaled_normal': for (let i = 0; i < n; i++) v[i] = normal() / Math.sqrt(fanIn); break;
        case 'xavier_uniform': within(Math.sqrt(6 / (fanIn + fanOut))); break;
        case 'default': within(1 / Math.sqrt(fanIn)); break;
        default: throw new Error(`parameter ${p.path}: unknown init '${p.init}'`);
      }
      out.set(p.path, v);
    }
  }
  return out;
}

/**
 * initParams, with every entry a constant init set (zeros, ones) moved by up to ±spread: zero-
 * initialised layers (adaLN-Zero, biases) then no longer switch a path off, which checks of the
 * whole graph (GPU against float64, gradients against finite differences) need.
 */
export function liveParams(graph: Graph, seed = 0, spread = 0.2): Map<string, Float64Array> {
  const uniform = prng(seed ^ 0x5eed);
  const params = initParams(graph, seed);
  for (const v of params.values()) for (let i = 0; i < v.length; i++) if (v[i] === 0 || v[i] === 1) v[i] += spread * (2 * uniform() - 1);
  return params;
}

/**
 * Example values for every input: N(0, 1) for videos, images, text and trajectories; a step in
 * [0, steps) of the diffusion process (1000 without one) for timesteps; a class (the null class
 * excluded) for labels; a value in the declared range for scalars.
 */
export function exampleInputs(graph: Graph, seed = 1): Map<string, NamedTensor> {
  const uniform = prng(seed);
  const normal = gaussian(uniform);
  const steps = graph.diffusion?.schedule.steps ?? 1000;
  const out = new Map<string, NamedTensor>();
  for (const input of graph.inputs) {
    const t = tensor(input.axes);
    const o = input.options;
    for (let i = 0; i < t.data.length; i++) {
      if (input.kind === 'timestep') t.data[i] = Math.floor(uniform() * steps);
      else if (input.kind === 'label') t.data[i] = Math.floor(uniform() * Number(o.classes));
      else if (input.kind === 'scalar' && Array.isArray(o.range)) {
        const [lo, hi] = o.range as number[];
        t.data[i] = lo + (hi - lo) * uniform();
      } else t.data[i] = normal();
    }
    out.set(input.name, t);
  }
  return out;
}

export interface Evaluation {
  /** Each node's value, by node id, over the node's axes in the graph's order. */
  readonly values: readonly NamedTensor[];
  readonly outputs: ReadonlyMap<string, NamedTensor>;
}

/** Evaluates every node of `graph` in float64. Throws (an internal error) on a missing value. */
export function evaluate(graph: Graph, inputs: ReadonlyMap<string, NamedTensor>, params: ReadonlyMap<string, Float64Array>): Evaluation {
  const values: NamedTensor[] = [];
  for (const node of graph.nodes) {
    const v = evaluateNode(node, node.inputs.map((i) => values[i]), inputs, params);
    // sizes too: relayout would broadcast a size-1 axis, which must not hide a wrong reference
    const sizes = new Map(v.axes.map(([n, s]) => [n, s]));
    if (v.axes.length !== node.axes.length || node.axes.some(([n, s]) => sizes.get(n) !== s)) {
      throw new Error(`${node.op} at ${node.path}: reference gave ${fmt(v.axes)}, the shape rule ${fmt(node.axes)}`);
    }
    values.push(relayout(v, node.axes));
  }
  return { values, outputs: new Map(graph.outputs.map((o) => [o.name, values[o.node]])) };
}

function evaluateNode(node: GraphNode, args: NamedTensor[], inputs: ReadonlyMap<string, NamedTensor>,
  params: ReadonlyMap<string, Float64Array>): NamedTensor {
  const a = node.attrs;
  if (node.op === 'input') {
    const v = inputs.get(String(a.name));
    if (!v) throw new Error(`no value for input '${a.name}'`);
    return v;
  }
  const binary = BINARY_BY_OP.get(node.op);
  if (binary) {
    if (args.length === 2) return zipWith(node.axes, args, binary.scalar);
    const k = Number(a.scalar);
    return zipWith(node.axes, args, a.side === 'left' ? (x) => binary.scalar(k, x) : (x) => binary.scalar(x, k));
  }
  const prim = primitiveOf(node.op);
  if (!prim) throw new Error(`no primitive '${node.op}'`);
  if (prim.reference) {
    const own = new Map<string, Float64Array>();
    for (const p of paramsRead(node)) {
      const data = params.get(p.path);
      if (!data) throw new Error(`no value for parameter '${p.path}'`);
      own.set(p.leaf, data);
    }
    return prim.reference({ inputs: args, params: own, attrs: a, axes: node.axes });
  }
  if (prim.scalar) return zipWith(node.axes, args, prim.scalar);
  throw new Error(`primitive '${node.op}' has no float64 reference yet`);
}
