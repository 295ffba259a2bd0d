// The benchmark cases: each defines its inputs once (canonical layout), how vdm runs it and how
// TensorFlow.js runs it, so both sides compute the same function on the same data.
import type { Gpu } from '../src/runtime/gpu.ts';
import type { Tensor } from '../src/runtime/program.ts';
import { Program } from '../src/runtime/program.ts';
import { contiguous } from '../src/codegen/kernels/view.ts';
import type { Tf } from './tfjs.ts';
import { randomArray } from './util.ts';

type TfTensor = import('@tensorflow/tfjs-core').Tensor;

/** A vdm generator that does not exist (yet) in this checkout: reported, not fatal. */
export class NotAvailable extends Error {}

export interface VdmSide {
  program: Program;
  /** output tensor compared with tfjs's result */
  output: Tensor;
  /** maps vdm's output layout to the canonical one, when they differ */
  canonical?: (out: Float32Array) => Float32Array;
}

export interface TfSide {
  /** one iteration; returns the output in canonical layout */
  op: () => TfTensor;
  dispose: () => void;
}

export interface BenchCase {
  name: string;
  shape: string;
  flops: number;
  inputs: () => Record<string, Float32Array>;
  vdm: (gpu: Gpu, x: Record<string, Float32Array>) => Promise<VdmSide>;
  tfjs: (tf: Tf, x: Record<string, Float32Array>, gpu: Gpu) => TfSide;
  /** iterations per timed batch, at most (large cases hold many intermediates per batch in tfjs) */
  maxIterations?: number;
}

/** Imports a generator module lazily; a missing file or export becomes NotAvailable. */
export async function generator<T>(file: string, exportName: string): Promise<T> {
  const url = new URL(`../src/codegen/kernels/${file}`, import.meta.url);
  let mod: Record<string, unknown>;
  try {
    mod = await import(url.href);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(file)) throw new NotAvailable(`src/codegen/kernels/${file} not present`);
    throw e;
  }
  if (typeof mod[exportName] !== 'function') throw new NotAvailable(`src/codegen/kernels/${file} has no export ${exportName}`);
  return mod[exportName] as T;
}

const tensors = (tf: Tf, x: Record<string, Float32Array>, shapes: Record<string, number[]>) =>
  Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(x[k], s)]));

const disposeAll = (ts: Record<string, TfTensor>) => () => Object.values(ts).forEach((t) => t.dispose());

// ------------------------------------------------------------------ matmul

export function matmulCase(n: number): BenchCase {
  return {
    name: `matmul ${n}`, shape: `[${n}, ${n}] x [${n}, ${n}]`, flops: 2 * n ** 3,
    inputs: () => ({ a: randomArray(n * n, 11), b: randomArray(n * n, 12) }),
    vdm: async (gpu, x) => vdmMatmul(gpu, n, x),
    tfjs: (tf, x) => {
      const t = tensors(tf, x, { a: [n, n], b: [n, n] });
      return { op: () => tf.matMul(t.a, t.b), dispose: disposeAll(t) };
    },
  };
}

async function vdmMatmul(gpu: Gpu, n: number, x: Record<string, Float32Array>): Promise<VdmSide> {
  const gemmKernel = await generator<typeof import('../src/codegen/kernels/gemm.ts').gemmKernel>('gemm.ts', 'gemmKernel');
  // adapter: gpu lets the generator pick the tiling that suits this adapter.
  const spec = gemmKernel({ a: contiguous([n, n]), b: contiguous([n, n]), out: contiguous([n, n]), adapter: gpu });
  const p = new Program(gpu);
  const a = p.input('a', x.a);
  const b = p.input('b', x.b);
  const out = p.output('out', n * n);
  p.step(spec, [a, b, out]);
  return { program: p, output: out };
}

// ------------------------------------------------------------------ conv3d

/** NCDHW [1, 64, 16, 32, 32] (tfjs: NDHWC), 3x3x3 'same' convolution to 64 channels. */
const CONV = { c: 64, d: 16, h: 32, w: 32, o: 64 };
const convVoxels = CONV.d * CONV.h * CONV.w;

/** Host-side axis permutation of a contiguous array: result axis i is input axis perm[i]. */
export function permuteHost(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const src = contiguous(shape);
  const outShape = perm.map((p) => shape[p]);
  const strides = perm.map((p) => src.strides[p]);
  const out = new Float32Array(data.length);
  const idx = new Array(outShape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let o = 0;
    for (let a = 0; a < idx.length; a++) o += idx[a] * strides[a];
    out[i] = data[o];
    for (let a = idx.length - 1; a >= 0 && ++idx[a] === outShape[a]; a--) idx[a] = 0;
  }
  return out;
}

type ConvKernel = typeof import('../src/codegen/kernels/conv.ts').convKernel;

/**
 * vdm runs its native layouts (x NCDHW, weights [Cout, Cin, kt, kh, kw]); the canonical inputs
 * (tfjs's NDHWC and [kt, kh, kw, Cin, Cout]) are transposed on the host, outside the timing.
 */
async function vdmConvChain(gpu: Gpu, x: Record<string, Float32Array>, layers: { w: string; k: [number, number, number] }[]): Promise<VdmSide> {
  const convKernel = await generator<ConvKernel>('conv.ts', 'convKernel');
  const act = [1, CONV.c, CONV.d, CONV.h, CONV.w];
  const p = new Program(gpu);
  let input = p.input('x', permuteHost(x.x, [1, CONV.d, CONV.h, CONV.w, CONV.c], [0, 4, 1, 2, 3]));
  layers.forEach((l, i) => {
    const w = p.input(l.w, permuteHost(x[l.w], [...l.k, CONV.c, CONV.o], [4, 3, 0, 1, 2]));
    const last = i === layers.length - 1;
    const out = last ? p.output('y', act.reduce((a, b) => a * b)) : p.scratch(`h${i}`, act.reduce((a, b) => a * b));
    const spec = convKernel({ x: contiguous(act), weight: contiguous([CONV.o, CONV.c, ...l.k]), out: contiguous(act), padding: 'same', adapter: gpu });
    p.step(spec, [input, w, out], `conv ${l.k.join('x')}`);
    input = out;
  });
  return { program: p, output: input, canonical: (y) => permuteHost(y, act, [0, 2, 3, 4, 1]) };
}

export function conv3dCase(): BenchCase {
  return {
    name: 'conv3d 3x3x3', shape: `[1, ${CONV.c}, ${CONV.d}, ${CONV.h}, ${CONV.w}] * 3x3x3 -> ${CONV.o}`,
    flops: 2 * CONV.o * CONV.c * 27 * convVoxels,
    inputs: () => ({ x: randomArray(convVoxels * CONV.c, 21), w: randomArray(27 * CONV.c * CONV.o, 22, 0.1) }),
    vdm: (gpu, x) => vdmConvChain(gpu, x, [{ w: 'w', k: [3, 3, 3] }]),
    tfjs: (tf, x) => {
      const t = tensors(tf, x, { x: [1, CONV.d, CONV.h, CONV.w, CONV.c], w: [3, 3, 3, CONV.c, CONV.o] });
      return { op: () => tf.conv3d(t.x as never, t.w as never, 1, 'same'), dispose: disposeAll(t) };
    },
    maxIterations: 4,
  };
}

/** The same receptive field factorized: 1x3x3 spatial then 3x1x1 temporal, 64 channels in between. */
export function conv21dCase(): BenchCase {
  return {
    name: 'conv (2+1)D', shape: `[1, ${CONV.c}, ${CONV.d}, ${CONV.h}, ${CONV.w}] * 1x3x3 -> ${CONV.o}, 3x1x1 -> ${CONV.o}`,
    flops: 2 * CONV.o * CONV.c * (9 + 3) * convVoxels,
    inputs: () => ({ x: randomArray(convVoxels * CONV.c, 21), ws: randomArray(9 * CONV.c * CONV.o, 23, 0.1), wt: randomArray(3 * CONV.o * CONV.o, 24, 0.1) }),
    vdm: (gpu, x) => vdmConvChain(gpu, x, [{ w: 'ws', k: [1, 3, 3] }, { w: 'wt', k: [3, 1, 1] }]),
    tfjs: (tf, x) => {
      const t = tensors(tf, x, { x: [1, CONV.d, CONV.h, CONV.w, CONV.c], ws: [1, 3, 3, CONV.c, CONV.o], wt: [3, 1, 1, CONV.o, CONV.o] });
      return {
        op: () => tf.conv3d(tf.conv3d(t.x as never, t.ws as never, 1, 'same'), t.wt as never, 1, 'same'),
        dispose: disposeAll(t),
      };
    },
    maxIterations: 6,
  };
}

// ------------------------------------------------------------------ attention

type AttentionModule = typeof import('../src/codegen/kernels/attention.ts');

async function attentionModule(): Promise<AttentionModule> {
  await generator('attention.ts', 'attentionKernel');
  return import('../src/codegen/kernels/attention.ts');
}

/** Self-attention, 8 heads x 1024 tokens x 64, from a packed qkv [1024, 3, 8, 64]; output [1024, 8, 64]. */
export function attentionCase(): BenchCase {
  const T = 1024, H = 8, D = 64;
  return {
    name: 'attention', shape: `${H} heads x ${T} tokens x ${D}`, flops: 4 * H * T * T * D,
    inputs: () => ({ qkv: randomArray(T * 3 * H * D, 31) }),
    vdm: async (gpu, x) => {
      const { attentionKernel, packedSelfAttention, attentionTilingFor } = await attentionModule();
      const spec = attentionKernel(packedSelfAttention({
        grid: [{ name: 'b', size: 1 }, { name: 't', size: T }], tokens: ['t'], heads: H, headDim: D,
        tiling: attentionTilingFor(gpu.info, gpu.features.has('subgroups')),
      }));
      const p = new Program(gpu);
      const qkv = p.input('qkv', x.qkv);
      const o = p.output('o', T * H * D);
      p.step(spec, [qkv, qkv, qkv, o]);
      return { program: p, output: o };
    },
    tfjs: (tf, x) => {
      const qkv = tf.tensor(x.qkv, [T, 3, H, D]);
      const op = () => {
        const [q, k, v] = tf.unstack(qkv, 1).map((m) => tf.transpose(m, [1, 0, 2])); // [H, T, D]
        const p = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)));
        return tf.transpose(tf.matMul(p, v), [1, 0, 2]);
      };
      return { op, dispose: () => qkv.dispose() };
    },
    maxIterations: 10,
  };
}

/**
 * Video Swin-T stage-1 window attention: grid 16x56x56, windows (8,7,7) = 392 tokens, 3 heads x 32,
 * with the relative-position bias. Packed qkv [16, 56, 56, 3, 3, 32]; output [16, 56, 56, 3, 32].
 */
export function windowAttentionCase(grid: [number, number, number] = [16, 56, 56]): BenchCase {
  const [T, Hh, W] = grid;
  const [wt, wh, ww] = [8, 7, 7];
  const heads = 3, D = 32, n = wt * wh * ww, windows = (T / wt) * (Hh / wh) * (W / ww);
  const tableRows = (2 * wt - 1) * (2 * wh - 1) * (2 * ww - 1);
  return {
    name: 'window attention', shape: `(${wt},${wh},${ww}) windows over ${T}x${Hh}x${W}, ${heads} heads x ${D}`,
    flops: 4 * windows * heads * n * n * D,
    inputs: () => ({ qkv: randomArray(T * Hh * W * 3 * heads * D, 41), rpb: randomArray(tableRows * heads, 42, 0.5) }),
    vdm: async (gpu, x) => {
      const { attentionKernel, packedSelfAttention, attentionTilingFor } = await attentionModule();
      // Video Swin-T stage 1 for the default grid.
      const spec = attentionKernel(packedSelfAttention({
        grid: [{ name: 'b', size: 1 }, { name: 't', size: T }, { name: 'h', size: Hh }, { name: 'w', size: W }],
        tokens: ['t', 'h', 'w'], heads, headDim: D, window: { t: wt, h: wh, w: ww }, relPosBias: contiguous([tableRows, heads]),
        tiling: attentionTilingFor(gpu.info, gpu.features.has('subgroups')),
      }));
      const p = new Program(gpu);
      const qkv = p.input('qkv', x.qkv);
      const rpb = p.input('rpb', x.rpb);
      const o = p.output('o', T * Hh * W * heads * D);
      p.step(spec, [qkv, qkv, qkv, rpb, o]);
      return { program: p, output: o };
    },
    tfjs: (tf, x, gpu) => {
      // Dense bias [heads, n, n] from the table: index by query-minus-key offsets, t most significant.
      const bias = new Float32Array(heads * n * n);
      const pos = (i: number) => [Math.floor(i / (wh * ww)), Math.floor(i / ww) % wh, i % ww];
      for (let qi = 0; qi < n; qi++) {
        const [a, b, c] = pos(qi);
        for (let ki = 0; ki < n; ki++) {
          const [d, e, f] = pos(ki);
          const row = (a - d + wt - 1) * (2 * wh - 1) * (2 * ww - 1) + (b - e + wh - 1) * (2 * ww - 1) + (c - f + ww - 1);
          for (let h = 0; h < heads; h++) bias[(h * n + qi) * n + ki] = x.rpb[row * heads + h];
        }
      }
      const biasT = tf.tensor(bias, [heads, n, n]);
      // tfjs transposes at most rank 6: axes that stay adjacent (w within window, qkv, heads, D) are merged.
      const qkv = tf.tensor(x.qkv, [T / wt, wt, Hh / wh, wh, W / ww, ww * 3 * heads * D]);
      // tfjs materializes the scores: split the windows so [chunk, heads, n, n] fits one storage binding.
      let chunk = windows;
      while (chunk > 1 && chunk * heads * n * n * 4 > gpu.limits.maxStorageBufferBindingSize) chunk = Math.ceil(chunk / 2);
      const op = () => {
        const win = tf.reshape(tf.transpose(qkv, [0, 2, 4, 1, 3, 5]), [windows, n, 3, heads, D]);
        const outs: TfTensor[] = [];
        for (let w0 = 0; w0 < windows; w0 += chunk) {
          const part = tf.slice(win, [w0, 0, 0, 0, 0], [Math.min(chunk, windows - w0), n, 3, heads, D]);
          const [q, k, v] = tf.unstack(part, 2).map((m) => tf.transpose(m, [0, 2, 1, 3])); // [chunk, heads, n, D]
          const s = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)), biasT);
          outs.push(tf.transpose(tf.matMul(tf.softmax(s), v), [0, 2, 1, 3])); // [chunk, n, heads, D]
        }
        const o = tf.reshape(tf.concat(outs, 0), [T / wt, Hh / wh, W / ww, wt, wh, ww * heads * D]);
        return tf.reshape(tf.transpose(o, [0, 3, 1, 4, 2, 5]), [T, Hh, W, heads, D]);
      };
      return { op, dispose: () => { qkv.dispose(); biasT.dispose(); } };
    },
    maxIterations: 3,
  };
}

export const allCases = (): BenchCase[] => [
  matmulCase(512), matmulCase(1024), conv3dCase(), conv21dCase(), attentionCase(), windowAttentionCase(),
];
