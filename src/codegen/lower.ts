// Lowering: a checked graph onto kernels. Every node's value gets a buffer of its own, contiguous
// in an axis order the compiler picks (the node's own by default); each primitive's `lower` emits
// the dispatches that fill it, addressing its operands through strided views by axis name. Chains of elementwise nodes are fused into one
// kernel (fuse.ts), and into the GEMM of a dense layer they feed or read (fuse-gemm.ts); every other
// node is one or more kernels of its own.
import { paramLeaf, type AxisPair, type Graph, type GraphNode } from '../compiler/ir/graph.ts';
import { numelOf } from '../compiler/ir/named-tensor.ts';
import { primitiveOf } from '../compiler/primitives/index.ts';
import type { Primitive } from '../compiler/primitives/types.ts';
import { lowerElementwise, type GemmFusion, type LowerCall, type Value } from '../compiler/primitives/lowering.ts';
import { emitSplitParts, MAX_SPLIT_PARTS } from '../compiler/primitives/split.ts';
import { rangeView } from '../compiler/primitives/slice.ts';
import { fusedExpr, planFusion, type FusionPlan } from './fuse.ts';
import type { GemmEpilogue } from './fuse-gemm.ts';
import type { Activation } from './kernels/epilogue.ts';
import type { AdapterTraits, KernelSpec } from './kernels/kernel.ts';

export type { LowerCall, Value };

/**
 * 'grad': a parameter's gradient (backward.ts), kept whole for the optimizer like a parameter;
 * 'arena': one buffer holding many parameters (or their gradients, moments) as parts; 'state':
 * training state that lives across steps (random keys, the loss, flags).
 */
export type BufferRole = 'input' | 'param' | 'value' | 'scratch' | 'grad' | 'arena' | 'state';

export interface BufferDecl {
  readonly name: string;
  readonly elements: number;
  readonly dtype: 'f32' | 'i32' | 'u32';
  readonly role: BufferRole;
  /** a part of an arena buffer (role 'arena'), bound as a buffer of its own from element `offset` */
  readonly part?: { readonly arena: string; readonly offset: number };
}

export interface LoweredStep {
  readonly spec: KernelSpec;
  /** buffer names in the order of spec.bindings */
  readonly buffers: readonly string[];
  /** the node this dispatch computes, for messages and profiles */
  readonly label: string;
}

export interface LoweredGraph {
  readonly buffers: ReadonlyMap<string, BufferDecl>;
  readonly steps: readonly LoweredStep[];
  /** input name -> its value's buffer; parameter path -> buffer */
  readonly inputs: ReadonlyMap<string, Value>;
  readonly params: ReadonlyMap<string, string>;
  readonly outputs: ReadonlyMap<string, Value>;
  /** every node's value, by node id */
  readonly values: readonly Value[];
}

/**
 * How node values are laid out: 'node' keeps the node's own axis order; 'channels-last' moves c to
 * the end of each value's axes. Measured on lavapipe (bench/forward.md, five runs): channels-last
 * ran a Video DiT at 0.95-1.18x the speed of node order, a recurrent net at 0.88-1.22x and a
 * depthwise-separable conv net at 0.54-0.89x (the direct conv kernel reads spatial rows): no
 * consistent gain, so 'node' is the default.
 */
export type ValueLayout = 'channels-last' | 'node';

const layoutOf = (axes: readonly AxisPair[], layout: ValueLayout): readonly AxisPair[] =>
  layout === 'node' ? axes : [...axes.filter(([n]) => n !== 'c'), ...axes.filter(([n]) => n === 'c')];

function lowerNode(call: LowerCall, prim: Primitive | undefined): void {
  if (prim?.lower) return prim.lower(call);
  throw new Error(`primitive '${call.node.op}' (${call.node.path}) cannot be lowered to kernels yet`);
}

/**
 * Lowers every node of `graph`, in order, for `adapter` (kernels pick tilings that suit it). `keep`:
 * node values fusion must not inline (a training step's backward reads them).
 */
export function lowerGraph(graph: Graph, adapter?: AdapterTraits, layout: ValueLayout = 'node', fuse = true, keep?: ReadonlySet<number>): LoweredGraph {
  return lowerNodes(graph, { adapter, layout, fusion: planFusion(graph, fuse, keep) });
}

export interface LowerNodesOptions {
  readonly adapter?: AdapterTraits;
  readonly layout?: ValueLayout;
  readonly fusion: FusionPlan;
  /** lower only these nodes (in graph order); every other node's value is taken from `values` */
  readonly only?: { readonly nodes: ReadonlySet<number>; readonly values: readonly Value[] };
  /** prefix of the value and scratch buffer names (a second copy of some nodes: recomputation) */
  readonly prefix?: string;
}

/**
 * Splits whose parts are consecutive nodes (as a tuple elaborates) and all lowered here: the last
 * part's id -> every part's id. Those parts are one dispatch, at the last part.
 */
function splitGroups(graph: Graph, only?: ReadonlySet<number>): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (const node of graph.nodes) {
    if (node.op !== 'split' || node.attrs.index !== 0 || node.dtype !== 'f32') continue;
    const n = Number(node.attrs.n);
    const ids = Array.from({ length: n }, (_, k) => node.id + k);
    const whole = n >= 2 && n <= MAX_SPLIT_PARTS && ids.every((id, k) => {
      const part = graph.nodes[id];
      return part?.op === 'split' && part.attrs.index === k && part.inputs[0] === node.inputs[0] && part.attrs.axis === node.attrs.axis
        && (!only || only.has(id));
    });
    if (whole) groups.set(ids[n - 1], ids);
  }
  return groups;
}

/**
 * Nodes whose value a later identical node may share: no parameters, one value of their own (not
 * a tuple part), not an input. Recomputation (a subset) recomputes each node as written.
 */
const repeatable = (node: GraphNode, subset: boolean) =>
  !subset && node.params.length === 0 && !node.shares && node.op !== 'input' && node.op !== 'split';

/** lowerGraph's work, also for a subset of nodes again under new buffer names (training's recomputation). */
export function lowerNodes(graph: Graph, opts: LowerNodesOptions): LoweredGraph {
  const { adapter, fusion, only, prefix = '' } = opts;
  const layout = opts.layout ?? 'node';
  const buffers = new Map<string, BufferDecl>();
  const steps: LoweredStep[] = [];
  const values: Value[] = [];
  const inputs = new Map<string, Value>();
  const params = new Map<string, string>();
  const declare = (name: string, elements: number, role: BufferRole, dtype: 'f32' | 'i32' = 'f32') => {
    if (buffers.has(name)) throw new Error(`lower: buffer '${name}' declared twice`);
    buffers.set(name, { name, elements: Math.max(1, elements), dtype, role });
    return name;
  };
  const splits = splitGroups(graph, only?.nodes);
  // parameters of the nodes computed inside another node's kernel (a GEMM with its activation)
  const ownParams = new Map<number, Map<string, string>>();
  const computed = new Map<string, number>();
  const canonical: number[] = [];
  const deferred = new Set([...splits.values()].flatMap((ids) => ids.slice(0, -1)));
  for (const node of graph.nodes) {
    if (only && !only.nodes.has(node.id)) {
      values.push(only.values[node.id]);
      continue;
    }
    if (node.op === 'input') {
      const v = { buffer: declare(`input.${node.attrs.name}`, numelOf(node.axes), 'input', node.dtype), axes: layoutOf(node.axes, layout) };
      inputs.set(String(node.attrs.name), v);
      values.push(v);
      continue;
    }
    // a node that computes what an earlier one did (the same op, attributes and inputs, no
    // parameters: each DiT block's silu(c)) reads that one's value instead
    const key = repeatable(node, only !== undefined) ? JSON.stringify([node.op, node.attrs, node.axes, node.inputs.map((i) => canonical[i] ?? i)]) : '';
    const earlier = key ? computed.get(key) : undefined;
    if (earlier !== undefined && !values[earlier].fused && !fusion.inlined.has(node.id)) {
      canonical[node.id] = earlier;
      values.push(values[earlier]);
      continue;
    }
    if (fusion.views.has(node.id)) {
      // a split part that GEMMs read in place from the split's input
      const axes = layoutOf(node.axes, layout);
      const part = node.axes.find(([n]) => n === node.attrs.axis)![1];
      const v = rangeView(values[node.inputs[0]], axes, String(node.attrs.axis), Number(node.attrs.index) * part);
      values.push({ buffer: values[node.inputs[0]].buffer, axes, fused: true, strides: v.strides, offset: v.offset });
      continue;
    }
    if (key) computed.set(key, node.id);
    const own = new Map<string, string>();
    for (const p of node.params) {
      own.set(paramLeaf(node, p), declare(`param.${p.path}`, p.shape.reduce((a, b) => a * b, 1), 'param'));
      params.set(p.path, `param.${p.path}`);
    }
    // a later call of a shared module reads the parameters its first call's node declared
    for (const p of node.shares ?? []) own.set(p.leaf, `param.${p.path}`);
    if (fusion.inlined.has(node.id)) {
      values.push({ buffer: '', axes: layoutOf(node.axes, layout), fused: true });
      ownParams.set(node.id, own);
      continue;
    }
    const out = { buffer: declare(`${prefix}v${node.id}.${node.op}`, numelOf(node.axes), 'value', node.dtype), axes: layoutOf(node.axes, layout) };
    const label = `${prefix}${node.path || node.op} (${node.op}, node ${node.id})`;
    let scratchCount = 0;
    const call: LowerCall = {
      node, attrs: node.attrs, inputs: node.inputs.map((i) => values[i]), params: own, out, adapter,
      scratch: (name, elements) => declare(`${prefix}v${node.id}.${name}.${scratchCount++}`, elements, 'scratch'),
      emit: (spec, bufs) => {
        if (bufs.length !== spec.bindings.length) throw new Error(`lower ${label}: ${spec.bindings.length} bindings, ${bufs.length} buffers`);
        steps.push({ spec, buffers: [...bufs], label });
      },
    };
    const leaves = fusion.leaves.get(node.id);
    const parts = splits.get(node.id);
    const epi = fusion.epilogues.get(node.id);
    // a dense layer's GEMM with what fusion folded into it: its input's layer norm and modulate
    // (prologue), an activation, gate and residual (epilogue, written into this node's value)
    const dense = (id: number, e?: GemmEpilogue) => {
      const layer = graph.nodes[id];
      const pro = fusion.prologues.get(id);
      const ins = layer.inputs.map((i, k) => values[k === 0 && pro ? pro.input : i]);
      const at = (i: number | undefined) => (i === undefined ? undefined : values[i]);
      const gemm: GemmFusion = {
        normalize: pro && { eps: pro.eps }, scale: at(pro?.scale), shift: at(pro?.shift),
        activation: e?.activation as Activation | undefined, gate: at(e?.gate), residual: at(e?.residual),
      };
      // labelled by the layer (and the node its epilogue computes), for messages and profiles
      const named = `${prefix}${layer.path || layer.op} (${layer.op}, node ${layer.id}${e ? `, into node ${node.id}` : ''})`;
      const emit: LowerCall['emit'] = (spec, bufs) => {
        if (bufs.length !== spec.bindings.length) throw new Error(`lower ${named}: ${spec.bindings.length} bindings, ${bufs.length} buffers`);
        steps.push({ spec, buffers: [...bufs], label: named });
      };
      lowerNode({ ...call, node: layer, attrs: layer.attrs, inputs: ins, params: id === node.id ? own : ownParams.get(id)!, gemm, emit }, primitiveOf(layer.op));
    };
    if (deferred.has(node.id)) { /* written by its split's last part */ }
    else if (epi !== undefined && ownParams.has(epi.node)) dense(epi.node, epi);
    else if (parts) emitSplitParts(call, values[node.inputs[0]], [...parts.slice(0, -1).map((id) => values[id]), out], String(node.attrs.axis));
    else if (leaves) lowerElementwise({ ...call, inputs: leaves.map((i) => values[i]) }, fusedExpr(graph, fusion, node));
    else if (fusion.prologues.has(node.id)) dense(node.id);
    else lowerNode(call, primitiveOf(node.op));
    values.push(out);
  }
  const outputs = new Map(graph.outputs.map((o) => [o.name, values[o.node]]));
  return { buffers, steps, inputs, params, outputs, values };
}
