// Fusion of elementwise chains: an operator or elementwise function whose value is read only by
// one other elementwise node (over the same axes or fewer, not an output) is not stored; its expression is
// inlined into that consumer, which becomes one kernel over all the chain's leaves. A leaf limit
// keeps every kernel within the storage buffers a shader stage may bind (8 in WebGPU's defaults).
import type { Graph, GraphNode } from '../compiler/ir/graph.ts';
import { BINARY_BY_OP } from '../compiler/primitives/index.ts';
import { binary, constant, input, unary, type BinaryOp, type Expr, type UnaryOp } from './kernels/expr.ts';
import { planGemmFusion, type GemmEpilogue, type GemmPrologue } from './fuse-gemm.ts';
import { isFunctionName } from './kernels/functions.ts';

const MAX_LEAVES = 6;

/** Nodes the elementwise kernel computes from their inputs alone. */
export const isElementwise = (n: GraphNode) => n.dtype === 'f32' && (BINARY_BY_OP.has(n.op) || isFunctionName(n.op));

export interface FusionPlan {
  /** nodes computed inside their consumer's kernel: no buffer, no dispatch */
  readonly inlined: ReadonlySet<number>;
  /** per elementwise node that gets a kernel: the node ids its kernel reads (in0, in1, ...) */
  readonly leaves: ReadonlyMap<number, readonly number[]>;
  /**
   * kernel node -> the dense layer (linear, attention) whose GEMM computes it in its epilogue: the
   * layer's value is never stored (it is in `inlined`), the kernel's dispatch is that GEMM
   */
  readonly epilogues: ReadonlyMap<number, GemmEpilogue>;
  /** dense layer -> the layer norm and modulate of its input that its GEMM's prologue computes */
  readonly prologues: ReadonlyMap<number, GemmPrologue>;
  /** split parts that GEMMs read in place: no buffer, no dispatch */
  readonly views: ReadonlySet<number>;
}

/**
 * A producer's value fits in its consumer's kernel when each of its axes is one of the consumer's:
 * the same size, or broadcast over the consumer's other axes (its expression is then evaluated per
 * consumer element: a [b, c] `1 + scale` inside a [b, c, t, h, w] modulate costs one add per
 * element and saves a dispatch and a buffer).
 */
const within = (producer: GraphNode, consumer: GraphNode) =>
  producer.axes.every(([n, s]) => consumer.axes.some(([m, t]) => m === n && t === s));

/**
 * `keep`: values that must stay stored though they could be inlined (a training step's backward
 * reads them); given, GEMMs fuse activations only.
 */
export function planFusion(graph: Graph, enabled = true, keep?: ReadonlySet<number>): FusionPlan {
  const uses = new Array<number>(graph.nodes.length).fill(0);
  for (const n of graph.nodes) for (const i of n.inputs) uses[i]++;
  const outputs = new Set(graph.outputs.map((o) => o.node));
  const inlined = new Set<number>();
  const leaves = new Map<number, number[]>();
  for (const node of graph.nodes) {
    if (!isElementwise(node)) continue;
    let set: number[] = [];
    for (const i of node.inputs) {
      const producer = graph.nodes[i];
      const candidate = enabled && !keep?.has(i) && isElementwise(producer) && uses[i] === 1 && !outputs.has(i) && within(producer, node);
      const merged = candidate ? [...new Set([...set, ...leaves.get(i)!])] : [];
      if (candidate && merged.length <= MAX_LEAVES) {
        inlined.add(i);
        set = merged;
      } else if (!set.includes(i)) {
        set = [...set, i];
      }
    }
    leaves.set(node.id, set);
  }
  // A node inlined into its consumer needs no kernel of its own.
  for (const id of inlined) leaves.delete(id);
  // Kernels that a GEMM's epilogue or prologue computes (fuse-gemm.ts): beyond activations, only
  // without `keep` (a forward pass; a training step's backward reads those values).
  const gemm = enabled ? planGemmFusion(graph, inlined, leaves, keep ?? new Set(), keep === undefined) : { epilogues: new Map(), prologues: new Map(), views: new Set<number>() };
  return { inlined, leaves, ...gemm };
}

/** The expression of `node` over its kernel's leaves (in0, in1, ... in the order of `leaves`). */
export function fusedExpr(graph: Graph, plan: FusionPlan, node: GraphNode): Expr {
  const leafIds = plan.leaves.get(node.id)!;
  const of = (n: GraphNode): Expr => {
    const arg = (k: number): Expr => {
      const i = n.inputs[k];
      return plan.inlined.has(i) ? of(graph.nodes[i]) : input(`in${leafIds.indexOf(i)}`);
    };
    if (BINARY_BY_OP.has(n.op)) {
      const op = n.op as BinaryOp;
      if (n.inputs.length === 2) return binary(op, arg(0), arg(1));
      const k = constant(Number(n.attrs.scalar));
      return n.attrs.side === 'left' ? binary(op, k, arg(0)) : binary(op, arg(0), k);
    }
    return unary(n.op as UnaryOp, arg(0));
  };
  return of(node);
}
