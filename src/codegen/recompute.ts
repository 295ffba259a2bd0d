// Recomputation per block (`vdm train --recompute`): a block's inner values are not kept from the
// forward pass for its backward; the block's forward kernels run again, into buffers of their own,
// just before its backward rules. Only what crosses a block's edge (its inputs from outside and
// the values read outside it) stays alive across the step: memory for compute.
import type { Graph, GraphNode } from '../compiler/ir/graph.ts';
import type { FusionPlan } from './fuse.ts';
import type { AdapterTraits } from './kernels/kernel.ts';
import { lowerNodes, type LoweredGraph, type Value } from './lower.ts';

/** A block to recompute: its inner nodes, and their kernels lowered again under new buffer names. */
export interface RecomputeBlock {
  readonly name: string;
  readonly nodes: ReadonlySet<number>;
  readonly lowered: LoweredGraph;
}

/**
 * The block a node belongs to, by its path: an instance of a repeated block (`blocks.3` of
 * `blocks.3.attn.qkv`) or a named call (`t_embedder` of `t_embedder.fc1`); top-level nodes: none.
 */
export function blockOf(node: GraphNode): string | null {
  const segs = node.path.split('.');
  if (segs.length < 2) return null;
  return segs.length > 2 && /^\d+$/.test(segs[1]) ? `${segs[0]}.${segs[1]}` : segs[0];
}

/** Every block's inner nodes (read by no node outside it, not an output), lowered again with prefix `re.`. */
export function recomputeBlocks(graph: Graph, forward: LoweredGraph, fusion: FusionPlan, adapter?: AdapterTraits): RecomputeBlock[] {
  const blockNames = graph.nodes.map((n) => (n.op === 'input' ? null : blockOf(n)));
  const exported = new Set(graph.outputs.map((o) => o.node));
  for (const n of graph.nodes) for (const i of n.inputs) if (blockNames[i] !== blockNames[n.id]) exported.add(i);
  const members = new Map<string, Set<number>>();
  graph.nodes.forEach((n, id) => {
    const b = blockNames[id];
    if (b === null || exported.has(id)) return;
    if (!members.has(b)) members.set(b, new Set());
    members.get(b)!.add(id);
  });
  const values: readonly Value[] = forward.values;
  return [...members].map(([name, nodes]) => ({
    name, nodes,
    lowered: lowerNodes(graph, { adapter, fusion, only: { nodes, values }, prefix: `re.${name}.` }),
  }));
}
