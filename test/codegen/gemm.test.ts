import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { ACTIVATIONS } from '../../src/codegen/kernels/epilogue.ts';
import { gemmBindingNames, gemmKernel, gemmReference, type GemmData } from '../../src/codegen/kernels/gemm.ts';
import { chooseGemmTiling, gemmTilingCandidates, type GemmParams, type GemmTiling } from '../../src/codegen/kernels/gemm-plan.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { expectMatches, randomArray } from './ref-check.ts';

const LANES: GemmTiling = { kind: 'lanes', lanes: 8, rows: 16, colVecs: 1 };
const LANES_WIDE: GemmTiling = { kind: 'lanes', lanes: 8, rows: 8, colVecs: 2 };
const TILES: GemmTiling = { kind: 'tiles', tileM: 32, tileN: 32, tileK: 8, threadRows: 4, threadCols: 2 };
const TILES_VEC: GemmTiling = { kind: 'tiles', tileM: 32, tileN: 32, tileK: 8, threadRows: 4, threadCols: 4, vector: true };
// 8 x 8 invocations, 4 x 8 outputs each: 2 A slots per invocation, the second partly idle (guarded).
const TILES_PREFETCH: GemmTiling = { kind: 'tiles', tileM: 32, tileN: 64, tileK: 12, threadRows: 4, threadCols: 8, vector: true, prefetch: true };
// The prefetching kernel shares the vector tiles' loads and stores (vectorLoads, vectorStores): it runs
// where its own indexing is at stake (ragged edges, batch, strides), not in every prologue and epilogue
// case, as each costs seconds of shader compilation on a cold software adapter.
const ALL = [LANES, LANES_WIDE, TILES, TILES_VEC];
const WITH_PREFETCH = [...ALL, TILES_PREFETCH];
const tilingName = (t: GemmTiling) => (t.kind === 'lanes' ? `lanes r${t.rows} c${t.colVecs}`
  : `tiles ${t.tileM}x${t.tileN}x${t.tileK} ${t.threadRows}x${t.threadCols}${t.prefetch ? ' prefetch' : t.vector ? ' vec4' : ''}`);

/** Fresh random buffers for every operand `p` has, the GPU run, and the float64 comparison. */
async function check(p: GemmParams, what: string, data: Partial<GemmData> = {}) {
  const names = gemmBindingNames(p);
  const d: Record<string, ArrayLike<number>> = { ...data };
  for (const k of names.slice(0, -1)) d[k] ??= randomArray(extent(p[k as keyof GemmParams] as View), -1, 1);
  const ref = gemmReference(p, d as GemmData);
  const spec = gemmKernel(p);
  const args = [...names.slice(0, -1).map((k) => Float32Array.from(d[k])), extent(p.out)];
  const [out] = await expectMatches(spec, args, [ref], `${what} [${p.tiling ? tilingName(p.tiling) : 'default'}]`, 1e-4,
    [gemmReference(p, d as GemmData, true)]);
  return { out, ref, spec, data: d };
}

gpuTest('plain GEMM with shapes that divide no tile size, every tiling', async () => {
  const [M, N, K] = [37, 45, 29];
  for (const tiling of WITH_PREFETCH) {
    await check({ a: contiguous([M, K]), b: contiguous([K, N]), out: contiguous([M, N]), tiling }, 'plain');
  }
});

gpuTest('vector paths: K and N multiples of 4 with edges in M and N tiles', async () => {
  const [M, N, K] = [23, 36, 44];
  const wide: GemmTiling[] = [{ kind: 'lanes', lanes: 8, rows: 32, colVecs: 1 },
    { kind: 'tiles', tileM: 32, tileN: 16, tileK: 12, threadRows: 8, threadCols: 4, vector: true },
    { kind: 'tiles', tileM: 32, tileN: 16, tileK: 12, threadRows: 8, threadCols: 4, vector: true, prefetch: true }];
  for (const tiling of [...WITH_PREFETCH, ...wide]) {
    await check({ a: contiguous([M, K]), b: contiguous([K, N]), out: contiguous([M, N]), tiling }, 'vec4');
  }
});

gpuTest('every tiling a GPU is offered (gemmTilingCandidates) computes the GEMM, with the adaLN prologue and an epilogue', async () => {
  const gpuTraits = { software: false, features: new Set<string>(), info: {}, limits: { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 } };
  const [Bt, M, N, K] = [2, 70, 136, 36];
  const p = { a: contiguous([Bt, M, K]), b: contiguous([K, N]), out: contiguous([Bt, M, N]), bias: contiguous([N]), residual: contiguous([Bt, M, N]), activation: 'gelu_tanh' as const };
  const tilings = gemmTilingCandidates(gpuTraits, { M, N, eps: 1e-6 });
  assert.ok(tilings.length >= 7, JSON.stringify(tilings));
  assert.ok(tilings.some((t) => t.kind === 'tiles' && t.prefetch && t.tileM === 128 && t.tileN === 128), 'a 128 x 128 prefetching tiling is offered');
  const data = { a: randomArray(Bt * M * K), b: randomArray(K * N), bias: randomArray(N), residual: randomArray(Bt * M * N), scale: randomArray(Bt * K), shift: randomArray(Bt * K) };
  // Prefetching kernels take seconds each to compile on a cold software adapter: one per register
  // layout (what their written-out loops follow), every plain one.
  const seen = new Set<string>();
  const run = tilings.filter((t) => {
    if (t.kind !== 'tiles' || !t.prefetch) return true;
    const key = `${t.threadRows}x${t.threadCols}`;
    return !seen.has(key) && !!seen.add(key);
  });
  assert.ok(run.some((t) => t.kind === 'tiles' && t.prefetch && t.tileM === 128 && t.tileN === 128) && run.length < tilings.length);
  for (const tiling of run) {
    await check({ ...p, tiling, normalize: { eps: 1e-6 }, scale: contiguous([Bt, K]), shift: contiguous([Bt, K]) }, 'offered', data);
  }
});

gpuTest('the scalar, vector and prefetching tiles sum in the same order: bit-identical outputs', async () => {
  const [Bt, M, N, K] = [2, 45, 52, 36];
  const p = { a: contiguous([Bt, M, K]), b: contiguous([K, N]), bias: contiguous([N]), out: contiguous([Bt, M, N]), activation: 'gelu' as const };
  const scalar = await check({ ...p, tiling: TILES }, 'scalar tiles');
  const same = { a: scalar.data.a, b: scalar.data.b, bias: scalar.data.bias };
  const vector = await check({ ...p, tiling: { ...TILES_VEC, tileM: 16, threadRows: 4 } }, 'vector tiles', same);
  assert.ok(scalar.out.every((v, i) => Object.is(v, vector.out[i])), 'vector outputs differ');
  const prefetch = await check({ ...p, tiling: TILES_PREFETCH }, 'prefetching tiles', same);
  assert.ok(scalar.out.every((v, i) => Object.is(v, prefetch.out[i])), 'prefetching outputs differ');
});

gpuTest('lanes: workgroups in blocks of row tiles, with a ragged last block and a bias epilogue', async () => {
  // rows 8 -> 10 row tiles (a block of 8, then one of 2), 2 column strips, 2 batch entries.
  const [Bt, M, N, K] = [2, 75, 40, 12];
  const tiling: GemmTiling = { kind: 'lanes', lanes: 8, rows: 8, colVecs: 1 };
  const { spec } = await check({
    a: contiguous([Bt, M, K]), b: contiguous([K, N]), bias: contiguous([N]), out: contiguous([Bt, M, N]), tiling,
  }, 'blocked');
  assert.equal(spec.dispatch, [20, 1, Bt]);
});

gpuTest('batched with B shared across the batch (weights) and per-batch B', async () => {
  const [Bt, M, N, K] = [3, 19, 40, 24];
  for (const tiling of WITH_PREFETCH) {
    await check({ a: contiguous([Bt, M, K]), b: contiguous([K, N]), out: contiguous([Bt, M, N]), tiling }, 'shared B');
    await check({ a: contiguous([Bt, M, K]), b: contiguous([Bt, K, N]), out: contiguous([Bt, M, N]), tiling }, 'batched B');
  }
});

gpuTest('transposed and permuted operands are strides, not copies', async () => {
  const [M, N, K] = [21, 36, 28];
  // B as the transpose of a [N, K] weight (PyTorch Linear layout): vec4 loads along K.
  const bT = permute(contiguous([N, K]), [1, 0]);
  // A as the transpose of [K, M]: scalar loads.
  const aT = permute(contiguous([K, M]), [1, 0]);
  // Output written transposed into an [N, M] buffer.
  const outT = permute(contiguous([N, M]), [1, 0]);
  for (const tiling of WITH_PREFETCH) {
    await check({ a: contiguous([M, K]), b: bT, out: contiguous([M, N]), tiling }, 'B^T');
    await check({ a: aT, b: contiguous([K, N]), out: outT, tiling }, 'A^T, out^T');
  }
  // Attention-style batch over two axes of a packed [b, t, 3, h, d] buffer: q[b, h, t, d] . k[b, h, d, t]
  const [b, t, h, dd] = [2, 13, 3, 8];
  const qkv = contiguous([b, t, 3, h, dd]);
  const q: View = { shape: [b, h, t, dd], strides: [qkv.strides[0], qkv.strides[3], qkv.strides[1], 1], offset: 0 };
  const k: View = { shape: [b, h, dd, t], strides: [qkv.strides[0], qkv.strides[3], 1, qkv.strides[1]], offset: h * dd };
  const data = { a: randomArray(extent(qkv)) };
  for (const tiling of ALL) {
    await check({ a: q, b: k, out: contiguous([b, h, t, t]), tiling }, 'q.k^T from packed qkv', { ...data, b: data.a });
  }
});

gpuTest('prologue: layernorm over K then modulate by per-sample scale and shift (DiT adaLN)', async () => {
  const [Bt, M, N, K] = [2, 17, 33, 40];
  const shape = [Bt, M, K];
  // rows with a large mean relative to their spread: the in-kernel statistics must stay accurate
  const a = Float32Array.from(randomArray(Bt * M * K), (v, i) => v + 20 * ((i / K) % 3));
  const ada = randomArray(Bt * 6 * K); // a [Bt, 6K] adaLN projection: scale and shift are chunks of it
  const perSample = (chunk: number): View => ({ shape: [Bt, K], strides: [6 * K, 1], offset: chunk * K });
  for (const tiling of ALL) {
    const base = { a: contiguous(shape), b: contiguous([K, N]), out: contiguous([Bt, M, N]), tiling };
    await check({ ...base, normalize: { eps: 1e-6 }, scale: perSample(1), shift: perSample(0) }, 'adaLN', { a, scale: ada, shift: ada });
    if (tiling === LANES_WIDE) continue; // the one-term variants share its code paths
    await check({ ...base, normalize: { eps: 1e-6 } }, 'layernorm', { a });
    await check({ ...base, scale: perSample(4) }, 'scale only', { scale: ada });
    await check({ ...base, shift: perSample(3) }, 'shift only', { shift: ada });
  }
  // K not a multiple of 4 and an A^T view: the scalar paths of the prologue
  const [m2, k2] = [11, 23];
  for (const tiling of ALL) {
    await check({
      a: permute(contiguous([k2, m2]), [1, 0]), b: contiguous([k2, 9]), out: contiguous([m2, 9]), tiling,
      normalize: { eps: 1e-5 }, scale: contiguous([k2]), shift: contiguous([k2]),
    }, 'adaLN scalar');
  }
});

gpuTest('epilogue: every activation with bias, per-sample gate and residual, large |x| included', async () => {
  const [Bt, M, N, K] = [2, 9, 20, 12];
  const gate: View = { shape: [Bt, N], strides: [N, 1], offset: 0 };
  // inputs up to |x| ~ 40 after the product: the activations' tails must not overflow into NaN
  const a = Float32Array.from(randomArray(Bt * M * K, -3, 3), (v, i) => (i % 11 === 0 ? 15 * Math.sign(v) : v));
  for (const activation of ACTIVATIONS) {
    const { out } = await check({
      a: contiguous([Bt, M, K]), b: contiguous([K, N]), out: contiguous([Bt, M, N]), tiling: LANES, activation,
      bias: contiguous([N]), gate, residual: contiguous([Bt, M, N]),
    }, `epilogue ${activation}`, { a });
    assert.ok(out.every(Number.isFinite), activation);
  }
  await check({
    a: contiguous([Bt, M, K]), b: contiguous([K, N]), out: contiguous([Bt, M, N]), tiling: TILES, activation: 'gelu_tanh',
    bias: contiguous([N]), gate, residual: contiguous([Bt, M, N]),
  }, 'epilogue, tiles', { a });
  // each term alone, with scalar (strided) access
  const strided = (n: number, s: number): View => ({ shape: [n], strides: [s], offset: 1 });
  for (const tiling of ALL) {
    const base = { a: contiguous([M, K]), b: contiguous([K, 18]), out: contiguous([M, 18]), tiling };
    await check({ ...base, bias: strided(18, 3) }, 'bias only');
    await check({ ...base, gate: strided(18, 2), activation: 'silu' }, 'gate only');
    await check({ ...base, residual: permute(contiguous([18, M]), [1, 0]) }, 'residual only');
  }
});

gpuTest('the tiling chooser: lanes on a SIMD software adapter, shared-memory tiles elsewhere', async () => {
  const gpu = await openGpu();
  const chosen = chooseGemmTiling(gpu);
  if (gpu.software && gpu.features.has('subgroups')) assert.is(chosen.kind, 'lanes');
  assert.is(chooseGemmTiling({ software: false, features: new Set(['subgroups']), info: { subgroupMinSize: 32, subgroupMaxSize: 32 } }).kind, 'tiles');
  assert.is(chooseGemmTiling(undefined).kind, 'tiles');
  await check({ a: contiguous([30, 20]), b: contiguous([20, 70]), out: contiguous([30, 70]), adapter: gpu }, 'default tiling');
});

test('bad parameters are clear errors', () => {
  const ok = { a: contiguous([4, 8]), b: contiguous([8, 5]), out: contiguous([4, 5]) };
  assert.throws(() => gemmKernel({ ...ok, b: contiguous([7, 5]) }), /b must have shape/);
  assert.throws(() => gemmKernel({ ...ok, out: contiguous([4, 6]) }), /out must have shape/);
  assert.throws(() => gemmKernel({ ...ok, bias: contiguous([4]) }), /bias must have shape/);
  assert.throws(() => gemmKernel({ ...ok, activation: 'swish' as never }), /unknown activation 'swish'/);
  assert.throws(() => gemmKernel({ ...ok, normalize: { eps: 0 } }), /eps must be a positive/);
  assert.throws(() => gemmKernel({ ...ok, tiling: { kind: 'lanes', lanes: 8, rows: 12, colVecs: 1 } }), /multiple of lanes/);
  assert.throws(() => gemmKernel({ ...ok, out: { shape: [4, 5], strides: [0, 1], offset: 0 } }), /must not broadcast/);
  assert.throws(() => gemmKernel({ ...ok, tiling: { ...TILES, vector: true } }), /multiples of 4/);
  assert.throws(() => gemmKernel({ ...ok, tiling: { ...TILES_VEC, vector: false, prefetch: true } }), /vector: true/);
  assert.throws(() => gemmKernel({ ...ok, a: { shape: [4, 8], strides: [8, -1], offset: 0 } }), /non-negative integer/);
});

test.run();
