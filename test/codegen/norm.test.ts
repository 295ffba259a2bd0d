import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { groupNormView, normKernel, normLanesFor, normReference, type NormParams } from '../../src/codegen/kernels/norm.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { alongAxes, contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { expectMatches, randomArray } from './ref-check.ts';

type Data = Partial<Record<'x' | 'weight' | 'bias' | 'scale' | 'shift', Float32Array>>;

async function check(p: NormParams, what: string, data: Data = {}) {
  const names = ['x', 'weight', 'bias', 'scale', 'shift'] as const;
  const present = names.filter((k) => p[k]);
  for (const k of present) data[k] ??= randomArray(extent(p[k]!), -2, 2);
  const ref = normReference(p, data as Data & { x: Float32Array });
  const args = [...present.map((k) => data[k]!), extent(p.y)];
  const [y] = await expectMatches(normKernel(p), args, [ref], what);
  // the subgroup variant too, where the adapter has one fixed subgroup size
  const lanes = normLanesFor(await openGpu());
  if (lanes && p.workgroupSize === undefined) await expectMatches(normKernel({ ...p, subgroupLanes: lanes }), args, [ref], `${what} [subgroup ${lanes}]`);
  return { y, ref };
}

test('the references follow the textbook formulas on one row written out by hand', () => {
  const x = [1, 2, 4, 9], w = [1, -2, 0.5, 3], b = [0.1, 0, -1, 2];
  const mean = 4, variance = (9 + 4 + 0 + 25) / 4; // biased, as PyTorch normalises
  const v = contiguous([1, 4]), c = alongAxes([1, 4], [1]), eps = 1e-5;
  const layer = normReference({ kind: 'layer', x: v, y: v, normalizedAxes: 1, eps, weight: c, bias: c },
    { x, weight: w, bias: b });
  x.forEach((xi, i) => assert.ok(Math.abs(layer[i] - ((xi - mean) / Math.sqrt(variance + eps) * w[i] + b[i])) < 1e-12, `layer ${i}`));
  const ms = (1 + 4 + 16 + 81) / 4;
  const rms = normReference({ kind: 'rms', x: v, y: v, normalizedAxes: 1, eps, weight: c }, { x, weight: w });
  x.forEach((xi, i) => assert.ok(Math.abs(rms[i] - (xi / Math.sqrt(ms + eps)) * w[i]) < 1e-12, `rms ${i}`));
  // adaLN: x * (1 + scale) + shift
  const ada = normReference({ kind: 'layer', x: v, y: v, normalizedAxes: 1, eps: 0, scale: c, shift: c },
    { x, scale: w, shift: b });
  x.forEach((xi, i) => assert.ok(Math.abs(ada[i] - (((xi - mean) / Math.sqrt(variance)) * (1 + w[i]) + b[i])) < 1e-12, `adaLN ${i}`));
});

gpuTest('layernorm over the channels of [B, N, C] with weight and bias; rows are independent', async () => {
  const shape = [2, 37, 48];
  const x = Float32Array.from(randomArray(2 * 37 * 48, -2, 2), (v, i) => v * (1 + (i % 5)) + (i % 7)); // uneven rows
  const { ref } = await check({
    kind: 'layer', x: contiguous(shape), y: contiguous(shape), normalizedAxes: 1, eps: 1e-6,
    weight: alongAxes(shape, [2]), bias: alongAxes(shape, [2]),
  }, 'layernorm affine', { x });
  assert.ok(ref.every(Number.isFinite));
});

gpuTest('DiT adaLN: layernorm without affine, then modulate by per-batch scale and shift', async () => {
  const [B, N, C] = [3, 19, 24];
  const shape = [B, N, C];
  const perBatch = (offset: number): View => ({ shape, strides: [6 * C, 0, 1], offset }); // chunks of a [B, 6C] projection
  const projection = randomArray(B * 6 * C);
  await check({
    kind: 'layer', x: contiguous(shape), y: contiguous(shape), normalizedAxes: 1, eps: 1e-6,
    scale: perBatch(C), shift: perBatch(0),
  }, 'adaLN', { scale: projection, shift: projection });
});

gpuTest('groupnorm over (C/G, T, H, W) for each (batch, group), channel-first, with affine', async () => {
  const shape = [2, 12, 3, 5, 7];
  const g = groupNormView(contiguous(shape), 1, 4);
  assert.equal(g.view.shape, [2, 4, 3, 3, 5, 7]);
  const w = g.perChannel(0);
  await check({
    kind: 'group', x: g.view, y: g.view, normalizedAxes: g.normalizedAxes, eps: 1e-5,
    weight: w, bias: g.perChannel(12),
  }, 'groupnorm NCTHW', { weight: randomArray(24), bias: randomArray(24) });
});

gpuTest('groupnorm on a channel-last tensor, where each group is strided in memory', async () => {
  const shape = [2, 3, 4, 5, 8]; // B, T, H, W, C
  const g = groupNormView(contiguous(shape), 4, 2);
  assert.equal(g.view.shape, [2, 2, 4, 3, 4, 5]);
  await check({ kind: 'group', x: g.view, y: g.view, normalizedAxes: g.normalizedAxes, eps: 1e-5, weight: g.perChannel() }, 'groupnorm channel-last');
});

gpuTest('rmsnorm over the channel axis of a channel-first tensor, written into a permuted layout', async () => {
  const [B, C, H, W] = [2, 20, 3, 5];
  const x = permute(contiguous([B, C, H, W]), [0, 2, 3, 1]); // [B, H, W, C] over channel-first memory
  const y = contiguous([B, H, W, C]);
  await check({ kind: 'rms', x, y, normalizedAxes: 1, eps: 1e-6, weight: alongAxes(x.shape, [3]) }, 'rmsnorm permuted');
  await check({ kind: 'rms', x, y, normalizedAxes: 1, eps: 0.5, bias: alongAxes(x.shape, [3]) }, 'rmsnorm large eps');
});

gpuTest('every option together, a row shorter than the workgroup, and a workgroup of 256', async () => {
  const shape = [7, 5];
  const full: NormParams = {
    kind: 'layer', x: contiguous(shape), y: contiguous(shape), normalizedAxes: 1, eps: 1e-3,
    weight: alongAxes(shape, [1]), bias: alongAxes(shape, [1]), scale: alongAxes(shape, [0]), shift: alongAxes(shape, [0]),
  };
  await check(full, 'all options');
  await check({ ...full, workgroupSize: 256, x: contiguous([3, 300]), y: contiguous([3, 300]), weight: undefined, bias: undefined, scale: undefined, shift: undefined }, 'wg 256');
  await check({ ...full, normalizedAxes: 2, weight: alongAxes(shape, [0, 1]), bias: undefined, scale: undefined, shift: undefined }, 'whole tensor one row');
});

gpuTest('a large mean does not destroy the variance (two-pass statistics)', async () => {
  const n = 3 * 333;
  const x = Float32Array.from(randomArray(n), (v) => 1000 + v);
  await check({ kind: 'layer', x: contiguous([3, 333]), y: contiguous([3, 333]), normalizedAxes: 1, eps: 0 }, 'offset rows', { x });
});

gpuTest('more rows than one grid dimension holds', async () => {
  const rows = 70_001;
  const p: NormParams = { kind: 'rms', x: contiguous([rows, 3]), y: contiguous([rows, 3]), normalizedAxes: 1, eps: 1e-6, workgroupSize: 1 };
  assert.ok(normKernel(p).dispatch[1] > 1);
  await check(p, 'many rows');
});

test('bad parameters fail with clear messages', () => {
  const v = contiguous([4, 6]);
  const base: NormParams = { kind: 'layer', x: v, y: v, normalizedAxes: 1, eps: 1e-5 };
  assert.throws(() => groupNormView(contiguous([2, 10, 4]), 1, 3), /3 groups do not divide 10 channels/);
  assert.throws(() => normKernel({ ...base, scale: v }), /both scale and shift/);
  assert.throws(() => normKernel({ ...base, normalizedAxes: 3 }), /normalizedAxes must be between 1 and 2/);
  assert.throws(() => normKernel({ ...base, eps: -1 }), /eps/);
  assert.throws(() => normKernel({ ...base, workgroupSize: 48 }), /power of two/);
  assert.throws(() => normKernel({ ...base, subgroupLanes: 6 }), /subgroupLanes must be a power of two/);
  assert.throws(() => normKernel({ ...base, subgroupLanes: 8, workgroupSize: 8 }), /not both/);
  assert.throws(() => normKernel({ ...base, weight: contiguous([4, 5]) }), /axis 1 has size 5/);
});

test.run();
