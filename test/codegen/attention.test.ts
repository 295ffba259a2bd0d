import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { attentionKernel, attentionReference, attentionTilingFor, packedSelfAttention, type AttentionParams, type Axis } from '../../src/codegen/kernels/attention.ts';
import { contiguous, extent, permute, splitAxis, type View } from '../../src/codegen/kernels/view.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { runKernel } from '../runtime/kernels.ts';
import { absolute, assertCompilesClean, randomArray as uniform, relError, seed } from './ref-check.ts';

/** Symmetric uniform inputs in [-amp, amp). */
const randomArray = (n: number, amp = 1) => uniform(n, -amp, amp);

interface Data { q: Float32Array; k: Float32Array; v: Float32Array; relPosBias?: Float32Array; keyMask?: Float32Array }

/** Runs the kernel and returns GPU output and float64 reference over the o buffer. */
async function run(p: AttentionParams, data: Data) {
  const spec = attentionKernel(p);
  await assertCompilesClean(spec);
  const args = [data.q, data.k, data.v, ...(data.relPosBias ? [data.relPosBias] : []), ...(data.keyMask ? [data.keyMask] : []), extent(p.o)];
  const [gpu] = await runKernel(spec, args);
  // Each output is a probability-weighted sum of values: sum_j p_j |v_j| is the scale of its rounding error.
  return { gpu, ref: attentionReference(p, data).o, magnitude: attentionReference(p, { ...data, v: absolute({ v: data.v }).v }).o };
}

/** The tiling this adapter gets by default (the subgroup variant on CPU adapters with fixed subgroups). */
const adapterTiling = async () => {
  const gpu = await openGpu();
  return attentionTilingFor(gpu.info as { subgroupMinSize?: number; subgroupMaxSize?: number }, gpu.features.has('subgroups'));
};

async function checkOne(p: AttentionParams, data: Data, what: string) {
  const { gpu, ref, magnitude } = await run(p, data);
  const err = relError(gpu, ref, magnitude);
  assert.ok(err < 1e-4, `${what} ${JSON.stringify(p.tiling ?? {})}: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
  return { gpu, ref };
}

/**
 * Checks the adapter's variant unless `p` fixes a tiling; `perKeyToo` adds the per-key variant (the index
 * maps are shared code, so a few cases cover it and the suite stays within lavapipe's compile budget).
 */
async function check(p: AttentionParams, data: Data, what: string, perKeyToo = false) {
  if (p.tiling) return checkOne(p, data, what);
  if (perKeyToo) await checkOne({ ...p, tiling: { rowsPerInvocation: 2 } }, data, what);
  return checkOne({ ...p, tiling: await adapterTiling() }, data, what);
}

const axes = (spec: Record<string, number>): Axis[] => Object.entries(spec).map(([name, size]) => ({ name, size }));

/** Self-attention over a packed qkv buffer [...grid, 3, heads, dh] with random contents. */
function packed(grid: Record<string, number>, tokens: string[], heads: number, headDim: number, extra: Partial<AttentionParams> = {}) {
  const p = { ...packedSelfAttention({ grid: axes(grid), tokens, heads, headDim }), ...extra };
  const qkv = randomArray(extent(p.q) + 2 * heads * headDim, 2);
  return { p, data: { q: qkv, k: qkv, v: qkv } as Data };
}

test('the reference is softmax(q k^T / sqrt(dh)) v, written out for three tokens of one head', () => {
  const dh = 4, n = 3;
  const p = packedSelfAttention({ grid: axes({ b: 1, t: n }), tokens: ['t'], heads: 1, headDim: dh });
  const qkv = randomArray(n * 3 * dh, 2); // per token: q, k, v
  const at = (part: number, token: number, d: number) => qkv[token * 3 * dh + part * dh + d];
  const { o } = attentionReference(p, { q: qkv, k: qkv, v: qkv });
  for (let i = 0; i < n; i++) {
    const scores = Array.from({ length: n }, (_, j) => Math.exp(
      Array.from({ length: dh }, (_, d) => at(0, i, d) * at(1, j, d)).reduce((a, b) => a + b) / Math.sqrt(dh)));
    const total = scores.reduce((a, b) => a + b);
    for (let d = 0; d < dh; d++) {
      const want = scores.reduce((acc, s, j) => acc + (s / total) * at(2, j, d), 0);
      assert.ok(Math.abs(o[i * dh + d] - want) < 1e-9, `token ${i}, channel ${d}: ${o[i * dh + d]} vs ${want} (replay: VDM_TEST_SEED=${seed})`);
    }
  }
});

gpuTest('full space-time attention, 60 tokens, head dim 12, over packed qkv', async () => {
  const { p, data } = packed({ b: 2, t: 3, h: 4, w: 5 }, ['t', 'h', 'w'], 2, 12);
  await check(p, data, 'full');
  await check({ ...p, tiling: { workgroupSize: 32, rowsPerInvocation: 3 } }, data, 'full, 3 rows per invocation');
  const sg = (await adapterTiling()).subgroupSize;
  if (sg) await check({ ...p, tiling: { subgroupSize: sg, workgroupSize: 2 * sg, rowsPerInvocation: 3, kvTile: 3 } }, data, 'subgroup, partial tiles');
});

gpuTest('spatial-only attention: t is a batch axis', async () => {
  const { p, data } = packed({ b: 2, t: 3, h: 5, w: 3 }, ['h', 'w'], 3, 8);
  await check(p, data, 'spatial');
});

gpuTest('temporal-only attention with a head dim that is not a multiple of 4', async () => {
  const { p, data } = packed({ b: 1, t: 7, h: 3, w: 2 }, ['t'], 2, 10);
  await check(p, data, 'temporal');
});

gpuTest('windowed attention without shift', async () => {
  const { p, data } = packed({ b: 1, t: 4, h: 6, w: 6 }, ['t', 'h', 'w'], 2, 8, { window: { t: 2, h: 3, w: 3 } });
  await check(p, data, 'windowed');
});

/** Rolls a packed [...grid, rest] buffer by -shift along grid axes (Swin's torch.roll(x, -shift)). */
function rollPacked(x: Float32Array, grid: number[], rest: number, shift: number[]): Float32Array {
  const out = new Float32Array(x.length);
  const n = grid.reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    let rem = i, src = 0, mul = 1;
    for (let a = grid.length - 1; a >= 0; a--) {
      const c = rem % grid[a]; rem = Math.floor(rem / grid[a]);
      src += ((c + shift[a]) % grid[a]) * mul; mul *= grid[a];
    }
    out.set(x.subarray(src * rest, src * rest + rest), i * rest);
  }
  return out;
}

gpuTest('shifted windows: roll semantics match a rolled copy, and the mask changes boundary windows', async () => {
  const grid = { b: 1, t: 4, h: 6, w: 6 }, window = { t: 2, h: 3, w: 3 }, shift = { t: 1, h: 1, w: 2 };
  const heads = 2, dh = 8;
  const { p, data } = packed(grid, ['t', 'h', 'w'], heads, dh, { window, shift });
  const { gpu } = await check(p, data, 'shifted windows', true);
  // Unmasked reference: window attention on an explicitly rolled copy, rolled back.
  const gs = Object.values(grid), sh = [0, ...Object.values(shift)];
  const rolled = rollPacked(data.q, gs, 3 * heads * dh, sh);
  const plain = attentionReference({ ...p, shift: undefined }, { q: rolled, k: rolled, v: rolled }).o;
  const unrolled = rollPacked(Float32Array.from(plain), gs, heads * dh, sh.map((s, a) => (gs[a] - s) % gs[a]));
  let interiorAgree = true, boundaryDiffers = false;
  for (let t = 0; t < 4; t++) for (let h = 0; h < 6; h++) for (let w = 0; w < 6; w++) {
    // rolled coordinates decide the window; the last window along a shifted axis mixes regions
    const rt = (t + 4 - 1) % 4, rh = (h + 6 - 1) % 6, rw = (w + 6 - 2) % 6;
    const interior = rt < 2 && rh < 3 && rw < 3;
    for (let e = 0; e < heads * dh; e++) {
      const i = ((t * 6 + h) * 6 + w) * heads * dh + e;
      const d = Math.abs(gpu[i] - unrolled[i]);
      if (interior && d > 1e-4 * (1 + Math.abs(unrolled[i]))) interiorAgree = false;
      if (!interior && d > 1e-2) boundaryDiffers = true;
    }
  }
  assert.ok(interiorAgree, `windows away from the wrap must equal plain attention on the rolled grid (replay: VDM_TEST_SEED=${seed})`);
  assert.ok(boundaryDiffers, `an absent mask would go unnoticed (replay: VDM_TEST_SEED=${seed})`);
});

gpuTest('relative-position bias (Swin table, stored transposed) with shifted windows', async () => {
  const heads = 3, window = { t: 2, h: 3, w: 3 };
  const { p, data } = packed({ b: 2, t: 2, h: 3, w: 6 }, ['t', 'h', 'w'], heads, 8, { window, shift: { t: 1, h: 0, w: 1 } });
  const rows = 3 * 5 * 5;
  const table = permute(contiguous([heads, rows]), [1, 0]);
  const bias = randomArray(rows * heads, 3);
  const { gpu } = await check({ ...p, relPosBias: table }, { ...data, relPosBias: bias }, 'relative-position bias');
  const without = attentionReference(p, data).o;
  assert.ok(relError(gpu, without) > 1e-2, 'the bias must change the result');
});

gpuTest('a bias window larger than the clamped window: the in-window index is read over it (relative_position_index[:N, :N])', async () => {
  const heads = 2, rows = 3 * 5 * 7;
  // w is clamped to 2 but the table is of window 4: an inner axis, so the bias rows differ from window 2's
  const { p, data } = packed({ b: 1, t: 4, h: 6, w: 2 }, ['t', 'h', 'w'], heads, 8,
    { window: { t: 2, h: 3, w: 2 }, shift: { t: 1, h: 1 }, biasWindow: { t: 2, h: 3, w: 4 }, relPosBias: contiguous([rows, heads]) });
  const d = { ...data, relPosBias: randomArray(rows * heads, 2) };
  await check(p, d, 'bias window', true);
  await check({ ...p, tiling: { rowsPerInvocation: 1, kvTile: 4, workgroupSize: 8 } }, d, 'bias window, workgroup tiles');
  const own = attentionReference({ ...p, biasWindow: undefined, relPosBias: contiguous([3 * 5 * 3, heads]) }, d).o;
  assert.ok(attentionReference(p, d).o.some((v, i) => Math.abs(v - own[i]) > 1e-3), 'the bias window changes the rows read');
  assert.throws(() => attentionKernel({ ...p, biasWindow: { w: 1 } }), /bias window 1 on axis 'w'/);
});

gpuTest('causal: a query sees its own and earlier tokens (row-major over (t, h)), with a bias table', async () => {
  const { p, data } = packed({ b: 2, t: 3, h: 5, w: 1 }, ['t', 'h'], 2, 4);
  const { gpu } = await check({ ...p, causal: true }, data, 'causal', true);
  const open = attentionReference(p, data).o;
  assert.ok(relError(gpu, open) > 1e-2, 'the mask matters');
  await check({ ...p, causal: true, relPosBias: contiguous([45, 2]), tiling: { rowsPerInvocation: 1, kvTile: 4, workgroupSize: 8 } },
    { ...data, relPosBias: randomArray(90, 2) }, 'causal, bias, K/V tiles');
  assert.throws(() => attentionKernel({ ...p, causal: true, window: { t: 3, h: 1 } } as AttentionParams), /causal/);
});

gpuTest('keyMask: masked keys unseen, a fully masked row gives 0 (self with bias and causal, cross with a broadcast batch axis)', async () => {
  // [b, t, h] over the grid; sample 1 masks every key, sample 0 every third (values other than 1 keep)
  const { p, data } = packed({ b: 2, t: 3, h: 5, w: 1 }, ['t', 'h'], 2, 4);
  const keyMask = Float32Array.from({ length: 30 }, (_, i) => (i >= 15 || i % 3 === 1 ? 0 : 1 + (i % 2)));
  const masked = { ...p, keyMask: contiguous([2, 3, 5, 1]) };
  const { gpu } = await check(masked, { ...data, keyMask }, 'key mask', true);
  assert.ok(relError(gpu, attentionReference(p, data).o) > 1e-2, 'the mask matters');
  const first = attentionReference(masked, { ...data, keyMask }).o;
  assert.ok(first.slice(extent(p.o) / 2).every((x) => x === 0) && gpu.slice(extent(p.o) / 2).every((x) => x === 0), 'fully masked rows are 0');
  await check({ ...masked, causal: true, relPosBias: contiguous([45, 2]), tiling: { rowsPerInvocation: 1, kvTile: 4, workgroupSize: 8 } },
    { ...data, keyMask, relPosBias: randomArray(90, 2) }, 'key mask, causal, bias, K/V tiles');
  // cross: q over [b, t, h], k and v over [b, l], mask over [l] only (b broadcast with stride 0)
  const q = contiguous([2, 3, 4, 2, 4]), kv = contiguous([2, 6, 2, 4]);
  const cross: AttentionParams = { grid: axes({ b: 2, t: 3, h: 4 }), tokens: ['t', 'h'], heads: 2, headDim: 4, context: axes({ l: 6 }),
    q, k: kv, v: { ...kv, offset: 0 }, o: contiguous([2, 3, 4, 2, 4]), keyMask: { shape: [2, 6], strides: [0, 1], offset: 0 } };
  const cdata = { q: randomArray(extent(q), 2), k: randomArray(extent(kv), 2), v: randomArray(extent(kv), 2), keyMask: Float32Array.from([1, 0, 1, 1, 0, -3]) };
  await check(cross, cdata, 'cross key mask', true);
  assert.throws(() => attentionKernel({ ...cross, keyMask: contiguous([6]) }), /keyMask has shape/);
});

gpuTest('relative-position bias without windows (full temporal attention)', async () => {
  const { p, data } = packed({ b: 1, t: 9, h: 2, w: 1 }, ['t'], 2, 4);
  await check({ ...p, relPosBias: contiguous([17, 2]) }, { ...data, relPosBias: randomArray(34, 2) }, 'temporal bias');
});

gpuTest('cross-attention to a context of another length (text [b, l, e]), packed kv', async () => {
  const b = 2, heads = 2, dh = 8, l = 7;
  const self = packedSelfAttention({ grid: axes({ b, t: 2, h: 3, w: 3 }), tokens: ['t', 'h', 'w'], heads, headDim: dh });
  const kv = splitAxis(splitAxis(contiguous([b, l, 2 * heads * dh]), 2, heads * dh), 3, dh); // [b, l, 2, heads, dh]
  const p: AttentionParams = { ...self, context: axes({ l }), k: pick(kv, 0), v: pick(kv, 1) };
  const kvData = randomArray(b * l * 2 * heads * dh);
  await check(p, { q: randomArray(extent(p.q)), k: kvData, v: kvData }, 'cross', true);
});

/** Selects index `i` of axis 2 of a [b, l, 2, heads, dh] view. */
function pick(v: View, i: number): View {
  return { shape: [v.shape[0], v.shape[1], v.shape[3], v.shape[4]], strides: [v.strides[0], v.strides[1], v.strides[3], v.strides[4]], offset: v.offset + i * v.strides[2] };
}

gpuTest('spatial cross-attention with the context broadcast over time (stride 0)', async () => {
  const b = 2, t = 3, heads = 2, dh = 12, l = 5;
  const self = packedSelfAttention({ grid: axes({ b, t, h: 2, w: 3 }), tokens: ['h', 'w'], heads, headDim: dh });
  const ctx = contiguous([b, l, heads, dh]);
  const bcast: View = { shape: [b, t, l, heads, dh], strides: [ctx.strides[0], 0, ...ctx.strides.slice(1)], offset: 0 };
  const p: AttentionParams = { ...self, context: axes({ l }), k: bcast, v: { ...bcast, offset: b * l * heads * dh } };
  const kv = randomArray(2 * b * l * heads * dh);
  await check(p, { q: randomArray(extent(p.q)), k: kv, v: kv }, 'broadcast cross');
});

gpuTest('strided views: permuted q, k, v and o layouts (scalar access path)', async () => {
  const grid = axes({ b: 2, t: 3, h: 2, w: 3 }), heads = 2, dh = 8;
  const shape = [2, 3, 2, 3, heads, dh];
  // buffers stored as [dh, heads, w, h, t, b] (q), [heads, b, t, dh, h, w] (k, v), o as [b, heads, t, h, w, dh]
  const q = permute(contiguous([dh, heads, 3, 2, 3, 2]), [5, 4, 3, 2, 1, 0]);
  const k = permute(contiguous([heads, 2, 3, dh, 2, 3]), [1, 2, 4, 5, 0, 3]);
  const o = permute(contiguous([2, heads, 3, 2, 3, dh]), [0, 2, 3, 4, 1, 5]);
  const p: AttentionParams = { grid, tokens: ['t', 'h', 'w'], heads, headDim: dh, q, k, v: k, o, window: { h: 2 }, shift: { h: 1 } };
  assert.equal([q.shape, k.shape, o.shape], [shape, shape, shape]);
  const n = shape.reduce((a, x) => a * x, 1);
  await check(p, { q: randomArray(n), k: randomArray(n), v: randomArray(n) }, 'permuted layouts');
});

gpuTest('workgroup-memory K/V tiles give the same result (tile not dividing the key count)', async () => {
  const { p, data } = packed({ b: 1, t: 4, h: 6, w: 6 }, ['t', 'h', 'w'], 3, 12, { window: { t: 2, h: 3, w: 3 }, shift: { t: 1, h: 1, w: 1 } });
  const table = contiguous([3 * 5 * 5, 3]);
  const withBias = { ...p, relPosBias: table };
  const d = { ...data, relPosBias: randomArray(75 * 3) };
  await check({ ...withBias, tiling: { workgroupSize: 8, rowsPerInvocation: 2, kvTile: 5 } }, d, 'kv tiles');
  const sg = (await adapterTiling()).subgroupSize;
  if (sg) await check({ ...withBias, tiling: { subgroupSize: sg, rowsPerInvocation: 2, kvTile: 2 } }, d, 'subgroup tiles');
  const full = packed({ b: 1, t: 3, h: 3, w: 3 }, ['t', 'h', 'w'], 1, 10);
  await check({ ...full.p, tiling: { workgroupSize: 16, kvTile: 4 } }, full.data, 'kv tiles, scalar path');
});

test('bad parameters give clear messages', () => {
  const base = packedSelfAttention({ grid: axes({ b: 1, t: 4, h: 6 }), tokens: ['t', 'h'], heads: 1, headDim: 4 });
  assert.throws(() => attentionKernel({ ...base, window: { h: 4 } }), /window 4 does not divide axis 'h'/);
  assert.throws(() => attentionKernel({ ...base, window: { h: 3 }, shift: { h: 3 } }), /shift 3 on axis 'h'/);
  assert.throws(() => attentionKernel({ ...base, tokens: ['x'] }), /token axis 'x' is not a grid axis/);
  assert.throws(() => attentionKernel({ ...base, q: contiguous([1, 4, 6, 2, 4]) }), /q has shape/);
});

test.run();
