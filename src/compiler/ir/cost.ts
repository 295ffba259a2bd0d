// Costs of a checked graph: trainable parameters (exact; fixed tables are buffers, not counted;
// a shared module's once, on the layers of its first call),
// MACs per layer as the primitive table defines them, FLOPs = 2 x MACs, activation bytes
// (output elements x 4) per node, and totals.
import type { AxisPair, Graph } from './graph.ts';

export interface LayerCost {
  readonly path: string;
  readonly op: string;
  readonly shape: readonly AxisPair[];
  readonly params: number;
  readonly macs: number;
  readonly activationBytes: number;
  /** A later call of a shared module: the layer whose parameters it reads (its own count is 0). */
  readonly sharedWith?: string;
}

export interface Costs {
  readonly params: number;
  readonly macs: number;
  readonly flops: number;
  readonly activationBytes: number;
  readonly layers: readonly LayerCost[];
}

export function costsOf(graph: Graph): Costs {
  let params = 0;
  let macs = 0;
  let activationBytes = 0;
  const layers: LayerCost[] = graph.nodes.map((n) => {
    const p = n.params.reduce((sum, q) => sum + q.shape.reduce((a, b) => a * b, 1), 0);
    params += p;
    macs += n.macs;
    activationBytes += n.activationBytes;
    const layer = { path: n.path, op: n.op, shape: n.axes, params: p, macs: n.macs, activationBytes: n.activationBytes };
    const owner = n.shares?.[0];
    return owner ? { ...layer, sharedWith: owner.path.slice(0, owner.path.length - owner.leaf.length - 1) } : layer;
  });
  return { params, macs, flops: 2 * macs, activationBytes, layers };
}
