import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { convBindingNames, convKernel, convReference, type ConvData } from '../../src/codegen/kernels/conv.ts';
import { chooseConvTiling, convOutShape, convTilingCandidates, planConv, type ConvParams, type ConvTiling } from '../../src/codegen/kernels/conv-plan.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { absolute, expectMatches, randomArray } from './ref-check.ts';

const DIRECT: ConvTiling = { kind: 'direct', lanes: 8, rows: 8, cols: 8 };
const DIRECT_16: ConvTiling = { kind: 'direct', lanes: 8, rows: 16, cols: 4 };
const DIRECT_FEW: ConvTiling = { kind: 'direct', lanes: 8, rows: 3, cols: 4 };
const TILES: ConvTiling = { kind: 'tiles', tileM: 16, tileN: 32, tileK: 8, threadRows: 2, threadCols: 4 };
const TILES_VEC: ConvTiling = { kind: 'tiles', tileM: 16, tileN: 32, tileK: 8, threadRows: 4, threadCols: 4, vector: true };
const TILES_PREFETCH: ConvTiling = { kind: 'tiles', tileM: 32, tileN: 64, tileK: 12, threadRows: 4, threadCols: 8, vector: true, prefetch: true };
const ALL = [DIRECT, DIRECT_16, TILES];
const name = (t: ConvTiling) => (t.kind === 'direct' ? `direct r${t.rows} c${t.cols}` : `tiles${t.prefetch ? ' prefetch' : t.vector ? ' vec4' : ''}`);

/** NCTHW views for x [B, Cin, T, H, W] and weight [Cout, Cin / groups, ...k]; out as the settings imply. */
function conv(B: number, Cin: number, size: number[], Cout: number, k: number[], rest: Partial<ConvParams> = {}): ConvParams {
  const base = { x: contiguous([B, Cin, ...size]), weight: contiguous([Cout, Cin / (rest.groups ?? 1), ...k]), ...rest };
  return { ...base, out: rest.out ?? contiguous(convOutShape(base)) };
}

async function check(p: ConvParams, what: string, data: Partial<ConvData> = {}) {
  const names = convBindingNames(p);
  const d: Record<string, ArrayLike<number>> = { ...data };
  for (const k of names.slice(0, -1)) d[k] ??= randomArray(extent(p[k as keyof ConvParams] as View));
  const ref = convReference(p, d as ConvData);
  const args = [...names.slice(0, -1).map((k) => Float32Array.from(d[k])), extent(p.out)];
  const magnitude = convReference({ ...p, activation: undefined }, absolute(d as ConvData));
  const [out] = await expectMatches(convKernel(p), args, [ref], `${what} [${p.tiling ? name(p.tiling) : 'default'}]`, 1e-4, [magnitude]);
  return { out, ref };
}

gpuTest('conv3d 3x3x3 same padding on a shape that divides no tile', async () => {
  for (const tiling of ALL) await check(conv(2, 5, [5, 6, 9], 7, [3, 3, 3], { padding: 'same', tiling }), 'conv3d same');
});

gpuTest('stride, asymmetric padding and dilation per axis', async () => {
  for (const tiling of ALL) {
    await check(conv(1, 4, [9, 11, 13], 6, [3, 2, 3], {
      stride: [2, 1, 2], padding: [[1, 0], 1, [2, 1]], dilation: [1, 2, 2], tiling,
    }), 'stride/pad/dilation');
  }
  // 'same' with stride 2 (TensorFlow's rule: out = ceil(in / stride)) and valid padding
  for (const tiling of [DIRECT, TILES]) {
    await check(conv(1, 3, [6, 7, 10], 5, [3, 3, 3], { stride: 2, padding: 'same', tiling }), 'same stride 2');
    await check(conv(1, 3, [6, 7, 10], 5, [2, 3, 3], { tiling }), 'valid');
  }
});

gpuTest('axis subsets: t only, h-w only, t-h-w, and a 1D sequence', async () => {
  for (const tiling of ALL) {
    await check(conv(2, 6, [7, 5, 12], 9, [3, 1, 1], { padding: 'same', tiling }), 'temporal 3x1x1');
    await check(conv(1, 6, [3, 9, 12], 10, [1, 3, 3], { padding: 'same', tiling }), 'spatial 1x3x3');
    // a [B, C, T] sequence as [B, C, T, 1, 1]: w is too short for a lane's run, so t takes its place
    await check(conv(2, 5, [21, 1, 1], 6, [5, 1, 1], { padding: [2, 0, 0], dilation: [2, 1, 1], tiling }), '1D sequence');
  }
});

gpuTest('groups and depthwise', async () => {
  for (const tiling of [...ALL, DIRECT_FEW]) {
    await check(conv(2, 6, [4, 5, 11], 9, [3, 3, 3], { groups: 3, padding: 1, tiling }), 'groups 3');
    await check(conv(1, 12, [4, 6, 13], 12, [3, 3, 3], { groups: 12, padding: 'same', tiling }), 'depthwise');
  }
  const gpu = await openGpu();
  const dw = conv(1, 16, [3, 8, 16], 16, [1, 3, 3], { groups: 16, padding: 'same', adapter: gpu });
  await check(dw, 'depthwise, default tiling');
});

gpuTest('vector window loads: aligned rows with every padding phase and stride 2', async () => {
  for (const pw of [0, 1, 2, 3]) {
    await check(conv(1, 3, [2, 3, 16], 8, [1, 2, 5], { padding: [0, 0, pw], tiling: DIRECT }), `pad w ${pw}`);
  }
  await check(conv(1, 3, [2, 3, 16], 8, [1, 1, 3], { padding: [0, 0, 1], stride: [1, 1, 2], tiling: DIRECT }), 'stride 2 along w');
  // kw > 4: weights span two vec4s
  await check(conv(1, 2, [1, 3, 20], 8, [1, 1, 7], { padding: 'same', tiling: DIRECT }), 'kw 7');
});

gpuTest('permuted and offset views: channels-last input, output written into a slice', async () => {
  const [B, C, T, H, W] = [2, 5, 4, 6, 8];
  const x = permute(contiguous([B, T, H, W, C]), [0, 4, 1, 2, 3]); // NTHWC memory seen as NCTHW
  const wt = permute(contiguous([3, 3, 3, C, 7]), [4, 3, 0, 1, 2]); // [kt, kh, kw, Cin, Cout] memory
  const big = contiguous([B, 9, T, H, W]); // write channels 2..8 of a 9-channel buffer
  const out: View = { ...big, shape: [B, 7, T, H, W], offset: 2 * big.strides[1] };
  for (const tiling of ALL) await check({ x, weight: wt, out, padding: 'same', tiling }, 'permuted');
});

gpuTest('fused epilogue: bias, activation, per-sample gate, residual', async () => {
  for (const activation of ['silu', 'gelu', 'tanh'] as const) {
    for (const tiling of [DIRECT, TILES]) {
      const p = conv(2, 4, [3, 5, 8], 8, [3, 3, 3], { padding: 'same', tiling, activation });
      await check({ ...p, bias: contiguous([8]), gate: contiguous([2, 8]), residual: contiguous(p.out.shape) }, `epilogue ${activation}`);
    }
  }
  // scalar residual/out paths (w not contiguous)
  const p = conv(1, 3, [2, 4, 6], 5, [1, 3, 3], { padding: 'same', tiling: DIRECT });
  const res = permute(contiguous([1, 5, 2, 6, 4]), [0, 1, 2, 4, 3]);
  await check({ ...p, out: permute(contiguous([1, 5, 2, 6, 4]), [0, 1, 2, 4, 3]), residual: res, bias: contiguous([5]) }, 'scalar epilogue');
});

gpuTest('vector and prefetching tiles (the tuner\'s variants) match the scalar tiles bit for bit: groups, stride, dilation, epilogue', async () => {
  const p = conv(2, 6, [5, 7, 9], 10, [3, 3, 2], { groups: 2, stride: [1, 2, 1], padding: [1, 1, [1, 0]], dilation: [2, 1, 1], activation: 'gelu' });
  const full = { ...p, bias: contiguous([10]), residual: contiguous(p.out.shape) };
  const data = { x: randomArray(extent(p.x)), weight: randomArray(extent(p.weight)), bias: randomArray(10), residual: randomArray(extent(p.out)) };
  const a = await check({ ...full, tiling: TILES }, 'scalar tiles', data);
  for (const tiling of [TILES_VEC, TILES_PREFETCH]) {
    const b = await check({ ...full, tiling }, 'variant', data);
    assert.ok(a.out.every((v, i) => Object.is(v, b.out[i])), `${name(tiling)} outputs differ from the scalar tiles`);
  }
});

test('a tuning adapter is offered vector and prefetching tiles for a convolution; the software direct kernel none', () => {
  const hw = { software: false, tune: true, features: new Set<string>(), info: {}, limits: { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 } };
  const p = conv(1, 64, [4, 16, 16], 128, [3, 3, 3], { padding: 'same' });
  const offered = convTilingCandidates(hw, planConv(p));
  assert.equal(offered[0], chooseConvTiling(hw, planConv(p)));
  assert.ok(offered.some((t) => t.kind === 'tiles' && t.prefetch && t.tileM === 128 && t.tileN === 128), JSON.stringify(offered));
  const spec = convKernel({ ...p, adapter: hw });
  const variants = spec.variants!();
  assert.is(variants.length, offered.length - 1);
  assert.ok(variants.every((v) => v.key !== spec.key && v.wgsl.includes('fn main')));
  const sw = { ...hw, software: true, features: new Set(['subgroups']), info: { subgroupMinSize: 8, subgroupMaxSize: 8 } };
  assert.is(convTilingCandidates(sw, planConv(p)).length, 1);
  assert.is(convKernel({ ...p, adapter: { ...hw, tune: false } }).variants, undefined);
  assert.throws(() => convKernel({ ...p, tiling: { ...TILES_VEC, prefetch: true, vector: false } as ConvTiling }), /vector: true/);
  assert.throws(() => convKernel({ ...p, tiling: { ...TILES, vector: true } as ConvTiling }), /multiples of 4/);
});

gpuTest('the tiling chooser and clear errors for bad parameters', async () => {
  const gpu = await openGpu();
  const plan = planConv(conv(1, 64, [4, 8, 32], 64, [3, 3, 3], { padding: 'same' }));
  if (gpu.software && gpu.features.has('subgroups')) assert.is(chooseConvTiling(gpu, plan).kind, 'direct');
  assert.is(chooseConvTiling(undefined, plan).kind, 'tiles');
  const ok = conv(1, 4, [3, 5, 6], 4, [3, 3, 3], { padding: 'same' });
  assert.throws(() => convKernel({ ...ok, groups: 3 }), /groups \(3\) must divide/);
  assert.throws(() => convKernel({ ...ok, out: contiguous([1, 4, 3, 5, 7]) }), /out must have shape \[1,4,3,5,6\]/);
  assert.throws(() => convKernel({ ...ok, stride: [1, 0, 1] }), /stride must be a positive integer/);
  assert.throws(() => convKernel({ ...ok, padding: 'full' as never }), /padding must be/);
  assert.throws(() => convKernel({ ...ok, x: contiguous([1, 4, 3, 5]) }), /x must have rank 5/);
  assert.throws(() => convKernel({ ...ok, bias: contiguous([5]) }), /bias must have shape \[4\]/);
  assert.throws(() => convKernel({ ...ok, tiling: { kind: 'direct', lanes: 8, rows: 8, cols: 6 } }), /multiple of 4/);
  assert.throws(() => convKernel(conv(1, 2, [2, 2, 2], 2, [3, 3, 3], { padding: 'valid' })), /larger than the padded input/);
});

test.run();
