// The graph IR: the checker's output. Immutable (deeply frozen) and plain JSON.
import type { Location } from './source.ts';
import type { Json } from './json.ts';
import type { DiffusionSpec } from './diffusion-spec.ts';

export type AxisPair = readonly [string, number];

export interface GraphParam {
  readonly path: string;
  readonly shape: readonly number[];
  readonly init: string;
}

export interface GraphNode {
  /** Dense, in topological order. */
  readonly id: number;
  readonly op: string;
  readonly path: string;
  readonly inputs: readonly number[];
  readonly attrs: Readonly<Record<string, Json>>;
  readonly axes: readonly AxisPair[];
  readonly dtype: 'f32' | 'i32';
  readonly params: readonly GraphParam[];
  readonly macs: number;
  readonly activationBytes: number;
  readonly span: Location;
  /**
   * Set on a node of a later call of a shared module: the parameters it reads, which the node
   * of the module's first call at the same place owns (and lists in its `params`).
   */
  readonly shares?: readonly SharedParam[];
}

/** A parameter a node reads but does not own: its name under the node (`weight`) and its dotted path. */
export interface SharedParam {
  readonly leaf: string;
  readonly path: string;
}

/** A parameter's name under its node (e.g. "qkv.weight" of "blocks.0.attn"): how primitives see it. */
export const paramLeaf = (node: GraphNode, p: GraphParam) => (node.path ? p.path.slice(node.path.length + 1) : p.path);

/** Every parameter a node reads, by leaf and dotted path: its own, then those it shares with an earlier node. */
export function paramsRead(node: GraphNode): SharedParam[] {
  const own = node.params.map((p) => ({ leaf: paramLeaf(node, p), path: p.path }));
  return node.shares ? [...own, ...node.shares] : own;
}

export interface GraphInput {
  readonly name: string;
  readonly kind: string;
  readonly dtype: 'f32' | 'i32';
  readonly axes: readonly AxisPair[];
  readonly options: Readonly<Record<string, Json>>;
}

export interface Graph {
  readonly model: string;
  readonly file: string;
  readonly dims: Readonly<Record<string, number>>;
  readonly inputs: readonly GraphInput[];
  readonly nodes: readonly GraphNode[];
  readonly outputs: readonly { readonly name: string; readonly node: number }[];
  readonly diffusion: DiffusionSpec | null;
}

/** Freezes a JSON-like tree. Already-frozen objects are taken as frozen all the way down (shared shapes). */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  } else {
    for (const key in value) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}
