// PyTorch's layout of a vdm model's parameters, by rule (never by shape): a dense weight vdm keeps
// as [in, out] is nn.Linear's [out, in]; a linear right after patchify (a patch embedding) is the
// strided convolution nn.Conv{1,2,3}d holds as [out, C, k...] over the patch axes larger than 1; a
// conv is already [out, c / groups, k...] and a conv_transpose nn.ConvTranspose{1,2,3}d's
// [c, out / groups, k...]; norms, embeddings, biases and GRUs are the same. Each conversion is a
// permutation of the values, so vdm -> PyTorch -> vdm is bit-identical.
import { paramLeaf, type Graph, type GraphNode, type GraphParam } from '../compiler/ir/graph.ts';
import { patchOrder } from '../compiler/primitives/patchify.ts';

export type LayoutRule = 'same' | 'transpose' | 'patch-conv';

export interface ParamLayout {
  /** vdm's dotted path */
  readonly path: string;
  readonly node: GraphNode;
  readonly param: GraphParam;
  readonly rule: LayoutRule;
  readonly vdmShape: readonly number[];
  readonly torchShape: readonly number[];
  /** torch[i] = vdm[perm[i]] (identity for 'same': null) */
  readonly perm: Int32Array | null;
  /** patch-conv: the conv weight's shape with every patch axis in the kernel, size-1 ones too */
  readonly fullKernelShape?: readonly number[];
}

/** The patch sizes of a linear's patchify input, when the linear embeds patches along c. */
export function patchEmbedOf(graph: Graph, node: GraphNode): { kernel: { axis: string; size: number }[]; order: string[]; patch: Record<string, number>; channels: number } | null {
  if (node.op !== 'linear' || node.attrs.axis !== 'c' || node.attrs.over !== undefined) return null;
  const src = graph.nodes[node.inputs[0]];
  if (!src || src.op !== 'patchify') return null;
  const patch = src.attrs.patch as Record<string, number>;
  const order = patchOrder(patch, src.attrs.order);
  const kernel = order.filter((a) => Number(patch[a]) > 1).map((axis) => ({ axis, size: Number(patch[axis]) }));
  if (!kernel.length) return null;
  const input = graph.nodes[src.inputs[0]];
  const channels = input.axes.find(([n]) => n === 'c')![1];
  return { kernel, order, patch, channels };
}

const TRANSPOSED_LEAVES: Readonly<Record<string, readonly string[]>> = {
  linear: ['weight'],
  attention: ['qkv.weight', 'q.weight', 'kv.weight', 'proj.weight'],
};

function transposePerm(rows: number, cols: number): Int32Array {
  // vdm [rows, cols] -> torch [cols, rows]: torch[j * rows + i] = vdm[i * cols + j]
  const perm = new Int32Array(rows * cols);
  for (let j = 0; j < cols; j++) for (let i = 0; i < rows; i++) perm[j * rows + i] = i * cols + j;
  return perm;
}

/** vdm [prod(patch) * C, out] (row ((dt*ph+dh)*pw+dw)*C + c) -> torch [out, C, k...] over the patch axes > 1. */
function patchConvPerm(pe: NonNullable<ReturnType<typeof patchEmbedOf>>, out: number): { perm: Int32Array; shape: number[] } {
  const C = pe.channels;
  const sizes = pe.order.map((a) => Number(pe.patch[a]));
  const rows = sizes.reduce((a, b) => a * b, 1) * C;
  const kernel = pe.kernel.map((k) => k.size);
  const kProd = kernel.reduce((a, b) => a * b, 1);
  const perm = new Int32Array(rows * out);
  // Enumerate torch's indices (o, c, k...) in row-major order.
  const kIdx = kernel.map(() => 0);
  let t = 0;
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < C; c++) {
      kIdx.fill(0);
      for (let k = 0; k < kProd; k++) {
        // offset index over all patch axes in patchOrder (size-1 axes contribute 0)
        let off = 0;
        pe.order.forEach((axis, i) => {
          const ki = pe.kernel.findIndex((e) => e.axis === axis);
          off = off * sizes[i] + (ki >= 0 ? kIdx[ki] : 0);
        });
        perm[t++] = (off * C + c) * out + o;
        for (let a = kernel.length - 1; a >= 0; a--) { if (++kIdx[a] < kernel[a]) break; kIdx[a] = 0; }
      }
    }
  }
  return { perm, shape: [out, C, ...kernel] };
}

/** Every parameter of the model with its PyTorch layout, in graph order. */
export function torchLayout(graph: Graph): ParamLayout[] {
  const out: ParamLayout[] = [];
  for (const node of graph.nodes) {
    for (const param of node.params) {
      const leaf = paramLeaf(node, param);
      const shape = param.shape;
      const base = { path: param.path, node, param, vdmShape: shape };
      const pe = leaf === 'weight' ? patchEmbedOf(graph, node) : null;
      if (pe) {
        const { perm, shape: torchShape } = patchConvPerm(pe, shape[1]);
        const fullKernelShape = [shape[1], pe.channels, ...pe.order.map((a) => Number(pe.patch[a]))];
        out.push({ ...base, rule: 'patch-conv', torchShape, perm, fullKernelShape });
      } else if ((TRANSPOSED_LEAVES[node.op] ?? []).includes(leaf) && shape.length === 2) {
        out.push({ ...base, rule: 'transpose', torchShape: [shape[1], shape[0]], perm: transposePerm(shape[0], shape[1]) });
      } else {
        out.push({ ...base, rule: 'same', torchShape: shape, perm: null });
      }
    }
  }
  return out;
}

/** vdm's values in PyTorch's layout. */
export function vdmToTorch(l: ParamLayout, data: Float32Array): Float32Array {
  if (!l.perm) return Float32Array.from(data);
  const out = new Float32Array(data.length);
  for (let i = 0; i < out.length; i++) out[i] = data[l.perm[i]];
  return out;
}

/** PyTorch's values in vdm's layout. */
export function torchToVdm(l: ParamLayout, data: Float32Array): Float32Array {
  if (!l.perm) return Float32Array.from(data);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[l.perm[i]] = data[i];
  return out;
}
