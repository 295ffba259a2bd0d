import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import {
  poolKernel, pooledShape, poolReference, resizeKernel, resizeReference, upsampledShape, type PoolParams, type ResizeParams,
} from '../../src/codegen/kernels/resample.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { absolute, expectMatches, randomArray } from './ref-check.ts';

async function checkPool(p: PoolParams, what: string) {
  const x = randomArray(extent(p.x), -2, 2);
  return (await expectMatches(poolKernel(p), [x, extent(p.y)], [poolReference(p, x)], what))[0];
}

async function checkResize(p: ResizeParams, what: string, x = randomArray(extent(p.x), -2, 2)) {
  return (await expectMatches(resizeKernel(p), [x, extent(p.y)], [resizeReference(p, x)], what, 1e-4,
    [resizeReference(p, absolute({ x }).x)]))[0];
}

gpuTest('avg and max pooling over H, W with ragged tails, on channel-first and permuted channel-last views', async () => {
  const factors = [1, 1, 2, 2];
  const y = contiguous(pooledShape([2, 3, 7, 9], factors));
  assert.equal(y.shape, [2, 3, 3, 4]);
  const channelLast = permute(contiguous([2, 7, 9, 3]), [0, 3, 1, 2]); // logical [B, C, H, W]
  for (const op of ['avg', 'max'] as const) {
    await checkPool({ op, x: contiguous([2, 3, 7, 9]), factors, y }, `${op} NCHW`);
    await checkPool({ op, x: channelLast, factors, y }, `${op} NHWC`);
  }
});

gpuTest('3D pooling over T, H, W into a strided output', async () => {
  const factors = [1, 2, 3, 2];
  const shape = pooledShape([2, 5, 6, 4], factors); // [2, 2, 2, 2]
  const y: View = { shape, strides: [1, 2, 4, 8], offset: 3 }; // transposed, after 3 spare slots
  const out = await checkPool({ op: 'avg', x: contiguous([2, 5, 6, 4]), factors, y }, 'avg 3D');
  assert.ok(out.slice(0, 3).every(Number.isNaN));
  await checkPool({ op: 'max', x: contiguous([2, 5, 6, 4]), factors, y }, 'max 3D');
});

gpuTest('linear upsampling matches PyTorch align_corners=false values exactly', async () => {
  const x = Float32Array.from([1, 2, 3, 4]);
  const p: ResizeParams = { mode: 'linear', x: contiguous([1, 4]), y: contiguous([1, 8]) };
  const out = await checkResize(p, 'linear 1D known', x);
  assert.equal(Array.from(out), [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4]);
  const near = await checkResize({ mode: 'nearest', x: contiguous([1, 4]), y: contiguous([1, 8]) }, 'nearest known', x);
  assert.equal(Array.from(near), [1, 1, 2, 2, 3, 3, 4, 4]);
});

gpuTest('nearest: upsample by integer factors and resize to arbitrary sizes (up and down)', async () => {
  const x = contiguous([2, 3, 4, 5]);
  await checkResize({ mode: 'nearest', x, y: contiguous(upsampledShape(x.shape, [1, 2, 2, 3])) }, 'nearest x(2,2,3)');
  await checkResize({ mode: 'nearest', x, y: contiguous([2, 2, 7, 3]) }, 'nearest to size');
});

gpuTest('linear in 1D, 2D (bilinear) and 3D (trilinear), by factors and to non-integer sizes, up and down', async () => {
  await checkResize({ mode: 'linear', x: contiguous([2, 3, 7]), y: contiguous([2, 3, 16]) }, '1D 7->16');
  await checkResize({ mode: 'linear', x: contiguous([1, 2, 5, 6]), y: contiguous([1, 2, 8, 13]) }, '2D');
  const video = contiguous([2, 3, 4, 5]); // C, T, H, W
  await checkResize({ mode: 'linear', x: video, y: contiguous(upsampledShape(video.shape, [1, 2, 2, 2])) }, '3D x2');
  await checkResize({ mode: 'linear', x: video, y: contiguous([2, 2, 9, 3]) }, '3D mixed up/down');
  await checkResize({ mode: 'linear', x: contiguous([3, 9]), y: contiguous([3, 4]) }, '1D down');
});

gpuTest('resizing a permuted view into a strided output; an unchanged shape is a copy', async () => {
  const x = permute(contiguous([6, 4, 3]), [2, 1, 0]); // logical [3, 4, 6]
  const y: View = { shape: [3, 7, 12], strides: [1, 3 * 12, 3], offset: 0 };
  await checkResize({ mode: 'linear', x, y }, 'permuted linear');
  await checkResize({ mode: 'nearest', x, y }, 'permuted nearest');
  const data = randomArray(72);
  const copy = await checkResize({ mode: 'linear', x, y: contiguous([3, 4, 6]) }, 'copy', data);
  assert.equal(Array.from(copy), Array.from({ length: 72 }, (_, i) => data[(i % 6) * 12 + (Math.floor(i / 6) % 4) * 3 + Math.floor(i / 24)]));
});

gpuTest('more outputs than one grid dimension holds', async () => {
  const p: ResizeParams = { mode: 'linear', x: contiguous([1000, 7]), y: contiguous([1000, 71]), workgroupSize: 1 };
  assert.ok(resizeKernel(p).dispatch[1] > 1);
  await checkResize(p, 'large grid');
});

test('bad parameters fail with clear messages', () => {
  const x = contiguous([4, 6]);
  assert.throws(() => poolKernel({ op: 'avg', x, factors: [1, 4], y: contiguous([4, 2]) }), /expected \[4,1\]/);
  assert.throws(() => poolKernel({ op: 'avg', x, factors: [1, 7], y: contiguous([4, 1]) }), /factors \[1,7\] must be integers/);
  assert.throws(() => poolKernel({ op: 'sum' as 'avg', x, factors: [1, 2], y: contiguous([4, 3]) }), /unknown op 'sum'/);
  assert.throws(() => resizeKernel({ mode: 'cubic' as 'linear', x, y: contiguous([4, 12]) }), /unknown mode 'cubic'/);
  assert.throws(() => resizeKernel({ mode: 'linear', x, y: contiguous([12]) }), /rank/);
});

test.run();
