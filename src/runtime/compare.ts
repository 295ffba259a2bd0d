// Comparing a run's values with reference values: the float64 evaluation (`vdm run --check`) or a
// safetensors file from another run or implementation (`vdm run --compare`). Each tensor gets its
// max absolute and max relative error, and whether the reference is identically zero (then the
// comparison shows nothing: a zero-initialised layer switched the path off).
//
// Relative error is judged element by element against the reference with a floor of 1% of the
// reference's root mean square, as the test suite does: max |got - ref| / (|ref| + 0.01 rms(ref)),
// so values that cancel to about zero are measured against the tensor's scale, not divided by ~0.
import type { Graph, GraphNode } from '../compiler/ir/graph.ts';
import { relayout, type NamedTensor } from '../compiler/ir/named-tensor.ts';
import { readSafetensors, type SafeTensor } from './safetensors.ts';

export interface TensorError {
  /** max |got - ref| (Infinity when one side is NaN or infinite and the other is not) */
  readonly maxAbs: number;
  /** max |got - ref| / (|ref| + 0.01 rms(ref)); 0 when both are identically zero */
  readonly maxRel: number;
  /** largest |ref| */
  readonly scale: number;
  /** every value of the reference is zero */
  readonly refZero: boolean;
  /** every value of the run is zero */
  readonly gotZero: boolean;
}

/** The errors of `got` against `ref` (same length, same order). */
export function tensorError(got: ArrayLike<number>, ref: ArrayLike<number>): TensorError {
  if (got.length !== ref.length) throw new Error(`tensorError: ${got.length} values against ${ref.length}`);
  let ss = 0, n = 0, scale = 0, refZero = true, gotZero = true;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    if (r !== 0) refZero = false;
    if (got[i] !== 0) gotZero = false;
    if (Number.isFinite(r)) { ss += r * r; n++; scale = Math.max(scale, Math.abs(r)); }
  }
  const floor = 0.01 * Math.sqrt(ss / Math.max(n, 1));
  let maxAbs = 0, maxRel = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i], r = ref[i];
    if (g === r || (Number.isNaN(g) && Number.isNaN(r))) continue; // equal, or the same infinity / NaN
    const e = Math.abs(g - r);
    if (!Number.isFinite(e)) { maxAbs = Infinity; maxRel = Infinity; continue; }
    maxAbs = Math.max(maxAbs, e);
    const d = Math.abs(r) + floor;
    maxRel = Math.max(maxRel, d > 0 ? e / d : Infinity);
  }
  return { maxAbs, maxRel, scale, refZero, gotZero };
}

/**
 * A name for every node: its dotted path (`blocks.0.attn`, an input's name), unique in the graph;
 * a path that names two nodes gets `#<id>` on the later ones.
 */
export function nodeNames(graph: Graph): string[] {
  const seen = new Set<string>();
  return graph.nodes.map((n) => {
    let name = n.path || n.op;
    if (seen.has(name)) name = `${name}#${n.id}`;
    seen.add(name);
    return name;
  });
}

export interface CompareRow {
  readonly kind: 'output' | 'node';
  /** the output's name, or the node's (nodeNames) */
  readonly name: string;
  readonly node: GraphNode;
  readonly shape: readonly number[];
  /** null when the values could not be compared (`problem` says why) */
  readonly error: TensorError | null;
  readonly problem?: string;
  /** max rel error above the tolerance, or not comparable */
  readonly over: boolean;
}

export interface Comparison {
  readonly tol: number;
  readonly outputs: readonly CompareRow[];
  /** in graph order */
  readonly nodes: readonly CompareRow[];
  /** the first node in graph order over the tolerance (else the first output over it), or null */
  readonly firstOver: CompareRow | null;
  /** tensors of the reference that name no output or node of the model */
  readonly ignored: readonly string[];
  /** nodes of the model the reference has no value for */
  readonly notInReference: number;
}

const shapeOf = (node: GraphNode) => node.axes.map(([, s]) => s);

/** A safetensors tensor's values as float64 (integer tensors too). */
export function safeValues(t: SafeTensor): Float64Array {
  return t.data instanceof BigInt64Array ? Float64Array.from(t.data, Number) : Float64Array.from(t.data);
}

/**
 * Compares a run's values (every node's, by node id, over the node's axes; and the outputs) with a
 * reference file whose tensors are named by output name or node name (nodeNames), row-major in
 * the node's declared axis order: what `vdm run --out` and `--dump` write.
 */
export function compareWithReference(graph: Graph, values: readonly (NamedTensor | undefined)[], outputs: ReadonlyMap<string, NamedTensor>,
  reference: Readonly<Record<string, SafeTensor>>, tol: number): Comparison {
  const names = nodeNames(graph);
  const used = new Set<string>();
  const row = (kind: CompareRow['kind'], name: string, node: GraphNode, got: NamedTensor | undefined): CompareRow | null => {
    if (!Object.hasOwn(reference, name)) return null;
    used.add(name);
    const ref = reference[name];
    const shape = shapeOf(node);
    if (ref.shape.join() !== shape.join()) {
      return { kind, name, node, shape, error: null, problem: `[${ref.shape.join(', ')}] in the reference, [${shape.join(', ')}] here`, over: true };
    }
    if (!got) return { kind, name, node, shape, error: null, problem: 'no value on the GPU (computed inside another kernel)', over: true };
    const error = tensorError(relayout(got, node.axes).data, safeValues(ref));
    return { kind, name, node, shape, error, over: !(error.maxRel <= tol) };
  };
  const outputRows = graph.outputs.map((o) => row('output', o.name, graph.nodes[o.node], outputs.get(o.name))).filter((r): r is CompareRow => r !== null);
  const nodeRows: CompareRow[] = [];
  let notInReference = 0;
  for (const node of graph.nodes) {
    const r = row('node', names[node.id], node, values[node.id]);
    if (r) nodeRows.push(r); else notInReference++;
  }
  const firstOver = nodeRows.find((r) => r.over) ?? outputRows.find((r) => r.over) ?? null;
  return { tol, outputs: outputRows, nodes: nodeRows, firstOver, ignored: Object.keys(reference).filter((k) => !used.has(k)).sort(), notInReference };
}

/** compareWithReference against a safetensors file. */
export function compareWithFile(graph: Graph, values: readonly (NamedTensor | undefined)[], outputs: ReadonlyMap<string, NamedTensor>,
  file: string, tol: number): Comparison {
  return compareWithReference(graph, values, outputs, readSafetensors(file).tensors, tol);
}

export interface OutputCheck {
  readonly name: string;
  readonly error: TensorError;
  /** both the run and the float64 evaluation are identically zero: the check compares nothing */
  readonly zero: boolean;
}

/** Each output of a run against the float64 evaluation's (`vdm run --check`). */
export function checkOutputs(got: ReadonlyMap<string, NamedTensor>, ref: ReadonlyMap<string, NamedTensor>): OutputCheck[] {
  return [...got].map(([name, v]) => {
    const want = ref.get(name);
    if (!want) throw new Error(`checkOutputs: no reference for output '${name}'`);
    const error = tensorError(v.data, relayout(want, v.axes).data);
    return { name, error, zero: error.refZero && error.gotZero };
  });
}
