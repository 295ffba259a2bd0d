import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { convKernel, convReference } from '../../src/codegen/kernels/conv.ts';
import { convOutShape, type ConvParams, type ConvTiling } from '../../src/codegen/kernels/conv-plan.ts';
import {
  convBackwardDataKernel, convBackwardDataReference, convBackwardWeightKernel, convBackwardWeightReference,
  chooseConvWeightTiling, convFlipWeightKernel, convFlipWeightReference, convTransposedParams, convTransposedPhases, flippedShape, type ConvBackwardParams,
} from '../../src/codegen/kernels/conv-backward.ts';
import { chooseConvWeightLanesTiling, convBackwardWeightLanesKernel, convWeightGradientKernel } from '../../src/codegen/kernels/conv-backward-lanes.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { expectMatches, rand, randomArray } from './ref-check.ts';

/** NCTHW views: x [B, Cin, ...size], weight [Cout, Cin / groups, ...k], out as the settings imply. */
function conv(B: number, Cin: number, size: number[], Cout: number, k: number[], rest: Partial<ConvParams> = {}): ConvBackwardParams {
  const base = { x: contiguous([B, Cin, ...size]), weight: contiguous([Cout, Cin / (rest.groups ?? 1), ...k]), ...rest };
  return { ...base, out: rest.out ?? contiguous(convOutShape(base)) };
}

const CASES: [string, ConvBackwardParams][] = [
  ['3x3x3 same', conv(2, 3, [3, 4, 5], 4, [3, 3, 3], { padding: 'same' })],
  ['stride, asymmetric padding, dilation', conv(1, 3, [7, 6, 9], 2, [3, 2, 3], { stride: [2, 1, 3], padding: [[1, 0], 1, [2, 1]], dilation: [1, 2, 2] })],
  ['(h, w) then t: 1x3x3 and 3x1x1', conv(2, 4, [3, 5, 6], 3, [1, 3, 3], { padding: [0, 1, 1] })],
  ['temporal 3x1x1', conv(2, 3, [5, 3, 4], 4, [3, 1, 1], { padding: [1, 0, 0] })],
  ['groups 2, stride 2 with a dropped tail', conv(1, 4, [2, 7, 8], 6, [1, 3, 2], { groups: 2, stride: [1, 2, 2], padding: [0, 1, 0] })],
  ['depthwise', conv(2, 5, [3, 4, 6], 5, [3, 3, 3], { groups: 5, padding: 1 })],
  ['depthwise, channel multiplier 2, dilation 2', conv(1, 3, [2, 6, 7], 6, [1, 3, 3], { groups: 3, padding: [0, 2, 2], dilation: [1, 2, 2] })],
  ['valid, padding beyond the reach', conv(1, 2, [4, 5, 3], 3, [2, 2, 1], { padding: [[0, 2], [3, 0], 0] })],
];

const dotOf = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i]) && !Number.isNaN(b[i])) s += a[i] * b[i];
  return s;
};
const data = (p: ConvBackwardParams) => ({ x: randomArray(extent(p.x)), weight: randomArray(extent(p.weight)), dy: randomArray(extent(p.out)) });
const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);

test('the references are the adjoints of the forward reference: <conv(x, w), dy> = <x, dx> = <w, dw>', () => {
  for (const [what, p] of CASES) {
    const d = { x: Float64Array.from({ length: extent(p.x) }, () => rand() - 0.5), weight: Float64Array.from({ length: extent(p.weight) }, () => rand() - 0.5) };
    const dy = Float64Array.from({ length: extent(p.out) }, () => rand() - 0.5);
    const y = convReference(p, d);
    const lhs = dotOf(y, dy);
    const dx = convBackwardDataReference(p, dy, d.weight);
    const dw = convBackwardWeightReference(p, d.x, dy);
    assert.ok(Math.abs(lhs - dotOf(d.x, dx)) < 1e-10, `${what}: dx: ${lhs} vs ${dotOf(d.x, dx)}`);
    assert.ok(Math.abs(lhs - dotOf(d.weight, dw)) < 1e-10, `${what}: dw: ${lhs} vs ${dotOf(d.weight, dw)}`);
  }
});

gpuTest('data gradient, gather kernel: every case', async () => {
  for (const [what, p] of CASES) {
    const d = data(p);
    const ref = convBackwardDataReference(p, d.dy, d.weight);
    const mag = convBackwardDataReference(p, abs(d.dy), abs(d.weight));
    await expectMatches(convBackwardDataKernel(p), [d.dy, d.weight, extent(p.x)], [ref], `dx ${what}`, 1e-4, [mag]);
  }
});

gpuTest('data gradient for stride 1: the flipped weight through the forward kernel (its default tiling; tiles once)', async () => {
  const gpu = await openGpu();
  const tilings: (ConvTiling | undefined)[] = [undefined, { kind: 'tiles', tileM: 16, tileN: 32, tileK: 8, threadRows: 2, threadCols: 4 }];
  let used = 0;
  for (const [what, p] of CASES) {
    const flipped = contiguous(flippedShape(p));
    const t = convTransposedParams(p, flipped);
    if (p.stride !== undefined && p.stride !== 1) { assert.is(t, null, `${what}: a strided conv has no transposed form`); continue; }
    assert.ok(t, `${what}: stride 1 has a transposed form`);
    used++;
    const d = data(p);
    const flip = { weight: p.weight, flipped, groups: p.groups };
    const [w2] = await expectMatches(convFlipWeightKernel(flip), [d.weight, extent(flipped)], [convFlipWeightReference(flip, d.weight)], `flip ${what}`, 1e-7);
    const ref = convBackwardDataReference(p, d.dy, d.weight);
    const mag = convBackwardDataReference(p, abs(d.dy), abs(d.weight));
    for (const tiling of used === 1 ? tilings : tilings.slice(0, 1)) {
      await expectMatches(convKernel({ ...t!, tiling, adapter: gpu }), [d.dy, w2, extent(p.x)], [ref], `dx by the forward kernel ${what} ${tiling?.kind ?? 'default'}`, 1e-4, [mag]);
    }
  }
  assert.ok(used >= 5);
});

const STRIDED: [string, ConvBackwardParams][] = [
  ['stride 2 in h and w, 3x3 same (a U-Net downsample)', conv(2, 3, [2, 8, 8], 4, [1, 3, 3], { stride: [1, 2, 2], padding: [0, 1, 1] })],
  ['stride 2, odd sizes, kernel 4 (phases of 2 taps)', conv(1, 2, [3, 7, 9], 3, [1, 4, 4], { stride: [1, 2, 2], padding: [0, 1, 2] })],
  ['stride 3 with kernel 3, valid (one tap a phase)', conv(1, 2, [2, 9, 10], 2, [1, 3, 3], { stride: [1, 3, 3] })],
  ['stride 2 in t, dilation 2 in w, groups 2', conv(1, 4, [5, 4, 7], 4, [3, 2, 3], { stride: [2, 1, 1], dilation: [1, 1, 2], padding: [1, [1, 0], 2], groups: 2 })],
  ['stride = kernel = 2 (a patch embedding)', conv(2, 3, [2, 6, 8], 5, [1, 2, 2], { stride: [1, 2, 2] })],
];

test('strided data gradient by phases: each phase is a stride-1 conv of dy with a sub-kernel, the phases cover dx once (float64)', () => {
  let used = 0;
  for (const [what, p] of [...CASES, ...STRIDED]) {
    const flipped = contiguous(flippedShape(p));
    const phases = convTransposedPhases(p, flipped);
    if (!phases) continue;
    used++;
    const d = data(p);
    const w2 = convFlipWeightReference({ weight: p.weight, flipped, groups: p.groups }, d.weight);
    const want = convBackwardDataReference(p, d.dy, d.weight);
    const got = new Float64Array(extent(p.x)).fill(NaN);
    for (const t of phases) {
      const part = convReference(t, { x: d.dy, weight: w2 });
      part.forEach((v, i) => {
        if (Number.isNaN(v)) return;
        assert.ok(Number.isNaN(got[i]), `${what}: element ${i} written by two phases`);
        got[i] = v;
      });
    }
    want.forEach((v, i) => {
      if (Number.isNaN(v)) return;
      assert.ok(Math.abs(got[i] - v) < 1e-12, `${what}: dx[${i}] ${got[i]} vs ${v}`);
    });
  }
  assert.ok(used >= CASES.length - 2 + STRIDED.length - 1, `phases found for ${used} cases`);
  // no phase form: a kernel shorter than its stride leaves positions no tap reaches
  assert.is(convTransposedPhases(conv(1, 2, [1, 6, 6], 2, [1, 1, 1], { stride: [1, 2, 2] }), contiguous([2, 2, 1, 1, 1])), null);
});

gpuTest('strided data gradient by phases on the adapter: the forward kernel per phase', async () => {
  const gpu = await openGpu();
  for (const [what, p] of STRIDED.slice(0, 2)) {
    const flipped = contiguous(flippedShape(p));
    const d = data(p);
    const w2 = Float32Array.from(convFlipWeightReference({ weight: p.weight, flipped, groups: p.groups }, d.weight));
    const want = convBackwardDataReference(p, d.dy, d.weight);
    const mag = convBackwardDataReference(p, abs(d.dy), abs(d.weight));
    for (const t of convTransposedPhases(p, flipped)!) {
      const mine = convReference(t, { x: d.dy, weight: w2 });
      const ref = Float64Array.from(want, (v, i) => (i >= mine.length || Number.isNaN(mine[i]) ? NaN : v));
      await expectMatches(convKernel({ ...t, adapter: gpu }), [d.dy, w2, extent(p.x)], [ref], `dx phase ${what}`, 1e-4, [mag]);
    }
  }
});

gpuTest('weight gradient: every case', async () => {
  for (const [what, p] of CASES) {
    const d = data(p);
    const ref = convBackwardWeightReference(p, d.x, d.dy);
    const mag = convBackwardWeightReference(p, abs(d.x), abs(d.dy));
    await expectMatches(convBackwardWeightKernel(p), [d.x, d.dy, extent(p.weight)], [ref], `dw ${what}`, 1e-4, [mag]);
  }
});

gpuTest('weight gradient tilings: rows past a group\'s end, tap chunks of one and of whole trailing axes', async () => {
  const p = conv(2, 4, [3, 4, 5], 6, [3, 3, 3], { groups: 2, padding: 1, stride: [1, 2, 1] }); // 3 output channels per group
  const d = data(p);
  const ref = convBackwardWeightReference(p, d.x, d.dy);
  const mag = convBackwardWeightReference(p, abs(d.x), abs(d.dy));
  assert.equal(chooseConvWeightTiling(p), { rows: 3, taps: 9 });
  for (const tiling of [{ rows: 2, taps: 9 }, { rows: 1, taps: 27 }, { rows: 3, taps: 3 }, { rows: 2, taps: 1 }]) {
    await expectMatches(convBackwardWeightKernel({ ...p, tiling }), [d.x, d.dy, extent(p.weight)], [ref], `dw ${tiling.rows}x${tiling.taps}`, 1e-4, [mag]);
  }
  assert.throws(() => convBackwardWeightKernel({ ...p, tiling: { rows: 1, taps: 6 } }), /weight tiling/);
  assert.throws(() => convBackwardWeightKernel({ ...p, tiling: { rows: 4, taps: 1 } }), /weight tiling/);
});

gpuTest('weight gradient, lanes kernel (SIMD software adapters): every case, ragged channel blocks, rows beyond a subgroup', async () => {
  const gpu = await openGpu();
  const L = gpu.features.has('subgroups') && gpu.info.subgroupMinSize === gpu.info.subgroupMaxSize ? gpu.info.subgroupMinSize ?? 0 : 0;
  // the software adapter CI runs on is where the kernel is chosen: there the test must run
  if (gpu.software) assert.ok(L > 0, 'a software adapter with fixed-size subgroups');
  if (!L) return; // the kernel needs one subgroup size; chooseConvWeightLanesTiling never picks it otherwise
  const cases: [string, ConvBackwardParams][] = [...CASES,
    ['12 -> 20 channels, 3x3x3 same', conv(2, 12, [3, 4, 5], 20, [3, 3, 3], { padding: 'same' })],
    ['groups 2 of 10 -> 6, 1x3x3 stride 2', conv(1, 20, [2, 7, 6], 12, [1, 3, 3], { groups: 2, stride: [1, 2, 2], padding: [0, 1, 1] })]];
  for (const [what, p] of cases) {
    const d = data(p);
    const ref = convBackwardWeightReference(p, d.x, d.dy);
    const mag = convBackwardWeightReference(p, abs(d.x), abs(d.dy));
    const coutG = p.weight.shape[0] / (p.groups ?? 1);
    const taps = p.weight.shape.slice(3).reduce((a, b) => a * b, 1);
    for (const rows of new Set([1, Math.min(coutG, 3), Math.min(coutG, L + 3)])) {
      await expectMatches(convBackwardWeightLanesKernel({ ...p, tiling: { lanes: L, rows, taps } }), [d.x, d.dy, extent(p.weight)], [ref],
        `dw lanes ${what} rows ${rows}`, 1e-4, [mag]);
    }
  }
  // the choice: lanes where half the subgroup has a channel, taps in chunks of at most 9
  const wide = conv(1, 16, [2, 4, 4], 32, [3, 3, 3], { padding: 1 });
  if (gpu.software) {
    assert.equal(chooseConvWeightLanesTiling(gpu, wide), { lanes: L, rows: Math.min(32, 2 * L, Math.floor(160 / 9)), taps: 9 });
    if (2 * 3 < L) assert.is(chooseConvWeightLanesTiling(gpu, conv(1, 3, [2, 4, 4], 8, [1, 3, 3])), undefined, 'most lanes idle');
    assert.match(convWeightGradientKernel({ ...wide, adapter: gpu }).key, /^conv-backward-weight-lanes:/);
  }
  assert.is(chooseConvWeightLanesTiling({ software: false, features: new Set(['subgroups']), info: { subgroupMinSize: 32, subgroupMaxSize: 32 } }, wide), undefined);
  assert.match(convWeightGradientKernel(wide).key, /^conv-backward-weight:/);
  assert.throws(() => convBackwardWeightLanesKernel({ ...wide, tiling: { lanes: 8, rows: 4, taps: 6 } }), /lanes tiling/);
});

gpuTest('permuted and offset views: channels-last x and dx, a [kt, kh, kw, Cin, Cout] weight, dy inside a wider buffer', async () => {
  const [B, C, T, H, W, Co] = [2, 3, 3, 4, 5, 4];
  const x = permute(contiguous([B, T, H, W, C]), [0, 4, 1, 2, 3]);
  const weight = permute(contiguous([3, 3, 3, C, Co]), [4, 3, 0, 1, 2]);
  const big = contiguous([B, Co + 3, T, H, W]);
  const out: View = { ...big, shape: [B, Co, T, H, W], offset: 2 * big.strides[1] };
  const p: ConvBackwardParams = { x, weight, out, padding: 'same' };
  const d = data(p);
  await expectMatches(convBackwardDataKernel(p), [d.dy, d.weight, extent(p.x)], [convBackwardDataReference(p, d.dy, d.weight)], 'permuted dx', 1e-4,
    [convBackwardDataReference(p, abs(d.dy), abs(d.weight))]);
  await expectMatches(convBackwardWeightKernel(p), [d.x, d.dy, extent(p.weight)], [convBackwardWeightReference(p, d.x, d.dy)], 'permuted dw', 1e-4,
    [convBackwardWeightReference(p, abs(d.x), abs(d.dy))]);
  const gpu = await openGpu();
  if (gpu.features.has('subgroups') && gpu.info.subgroupMinSize === gpu.info.subgroupMaxSize && gpu.info.subgroupMinSize) {
    await expectMatches(convBackwardWeightLanesKernel({ ...p, tiling: { lanes: gpu.info.subgroupMinSize, rows: 3, taps: 9 } }), [d.x, d.dy, extent(p.weight)],
      [convBackwardWeightReference(p, d.x, d.dy)], 'permuted dw, lanes', 1e-4, [convBackwardWeightReference(p, abs(d.x), abs(d.dy))]);
  }
});

gpuTest('a many-position reduction (several rounds per lane and a partial last round)', async () => {
  const p = { ...conv(3, 2, [5, 9, 11], 2, [3, 3, 3], { padding: 1 }), workgroupSize: 48 };
  const d = data(p);
  await expectMatches(convBackwardWeightKernel(p), [d.x, d.dy, extent(p.weight)], [convBackwardWeightReference(p, d.x, d.dy)], 'long dw', 1e-4,
    [convBackwardWeightReference(p, abs(d.x), abs(d.dy))]);
});

gpuTest('deliberately wrong kernels fail the comparison', async () => {
  const p = CASES[1][1];
  const d = data(p);
  const rejects = (spec: ReturnType<typeof convKernel>, args: (Float32Array | number)[], ref: Float64Array, what: string) =>
    expectMatches(spec, args, [ref], what).then(() => false, (e: Error) => /relative error/.test(e.message));
  // the data gradient stepping through every tap: taps between strides read dy too
  const dx = convBackwardDataKernel(p);
  const wrongDx = { ...dx, key: `wrong ${dx.key}`, wgsl: dx.wgsl.replace(/k(\w) \+= \d+u/g, 'k$1++') };
  assert.is.not(wrongDx.wgsl, dx.wgsl);
  assert.ok(await rejects(wrongDx, [d.dy, d.weight, extent(p.x)], convBackwardDataReference(p, d.dy, d.weight), 'dx without stride test'), 'wrong dx passed');
  // the weight gradient reading the clamped edge of x instead of the zero padding
  const dw = convBackwardWeightKernel(p);
  const wrongDw = { ...dw, key: `wrong ${dw.key}`, wgsl: dw.wgsl.replace(/select\(0\.0, (x_buf\[[^\]]*\]), [^;]*\);/g, '$1;') };
  assert.is.not(wrongDw.wgsl, dw.wgsl);
  assert.ok(await rejects(wrongDw, [d.x, d.dy, extent(p.weight)], convBackwardWeightReference(p, d.x, d.dy), 'dw short range'), 'wrong dw passed');
  // an unflipped weight through the forward kernel
  const q = CASES[0][1];
  const e = data(q);
  const t = convTransposedParams(q, contiguous(flippedShape(q)))!;
  const [, , ...k] = q.weight.shape;
  const unflipped = Float32Array.from({ length: extent(t.weight) }, (_, i) => {
    const [c, j, ...r] = unravel(flippedShape(q), i);
    return e.weight[((j * q.weight.shape[1] + c) * k[0] + r[0]) * k[1] * k[2] + r[1] * k[2] + r[2]];
  });
  assert.ok(await rejects(convKernel(t), [e.dy, unflipped, extent(q.x)], convBackwardDataReference(q, e.dy, e.weight), 'unflipped'), 'unflipped weight passed');
});

test('clear errors', () => {
  const p = CASES[0][1];
  assert.throws(() => convBackwardDataKernel({ ...p, x: { ...p.x, strides: [0, ...p.x.strides.slice(1)] } }), /dx must not broadcast/);
  assert.throws(() => convBackwardWeightKernel({ ...p, workgroupSize: 300 }), /between 1 and 256/);
  assert.throws(() => convFlipWeightKernel({ weight: p.weight, flipped: contiguous([4, 3, 3, 3, 3]) }), /flipped must have shape \[3,4,3,3,3\]/);
  assert.throws(() => convBackwardDataKernel({ ...p, out: contiguous([2, 4, 3, 4, 6]) }), /out must have shape/);
});

function unravel(shape: readonly number[], flat: number): number[] {
  const idx = shape.map(() => 0);
  for (let a = shape.length - 1; a >= 0; a--) { idx[a] = flat % shape[a]; flat = Math.floor(flat / shape[a]); }
  return idx;
}

test.run();
