import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import {
  gatherKernel, gatherReference, positionTableKernel, positionTableReference, sincos1d, sincos2d, sincos3d,
  timestepEmbeddingKernel, timestepEmbeddingReference, type PositionTableParams, type TimestepEmbeddingParams,
} from '../../src/codegen/kernels/embed.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { runKernel } from '../runtime/kernels.ts';
import { assertCompilesClean, expectMatches, rand, randomArray } from './ref-check.ts';

async function checkTimestep(p: TimestepEmbeddingParams, t: Float32Array, what: string) {
  const ref = timestepEmbeddingReference(p, t);
  return (await expectMatches(timestepEmbeddingKernel(p), [t, extent(p.out)], [ref], what))[0];
}

async function checkTable(p: PositionTableParams, what: string) {
  return (await expectMatches(positionTableKernel(p), [extent(p.out)], [positionTableReference(p)], what))[0];
}

gpuTest('timestep embedding, DiT layout cat([cos, sin]): t = 0 gives ones then zeros', async () => {
  const p: TimestepEmbeddingParams = { t: contiguous([2]), dim: 8, out: contiguous([2, 8]) };
  const out = await checkTimestep(p, Float32Array.from([0, 1]), 'known values');
  assert.equal(Array.from(out.slice(0, 8)), [1, 1, 1, 1, 0, 0, 0, 0]);
  // t = 1: frequencies 10000^(-k/4) = 1, 0.1, 0.01, 0.001
  const want = [1, 0.1, 0.01, 0.001].map(Math.cos).concat([1, 0.1, 0.01, 0.001].map(Math.sin));
  want.forEach((w, c) => assert.ok(Math.abs(out[8 + c] - w) < 1e-6, `channel ${c}: ${out[8 + c]} vs ${w}`));
});

gpuTest('timestep embedding of real, integer and negative timesteps up to 1000 stays accurate at dim 256', async () => {
  const n = 7;
  const t = Float32Array.from({ length: n }, (_, i) => (i % 2 ? Math.floor(rand() * 1000) : rand() * 1000));
  t[0] = 999;
  t[1] = -123.5; // negative timesteps are odd in sin, even in cos
  await checkTimestep({ t: contiguous([n]), dim: 256, out: contiguous([n, 256]) }, t, 'dim 256');
});

gpuTest('timestep embedding: odd dim, sin-first order, another period, strided t and transposed out', async () => {
  const n = 5;
  const t = randomArray(2 * n, 0, 1000);
  const tView: View = { shape: [n], strides: [2], offset: 1 };
  const out = await checkTimestep({ t: tView, dim: 33, out: contiguous([n, 33]) }, t, 'odd dim');
  for (let i = 0; i < n; i++) assert.is(out[i * 33 + 32], 0, 'the padding channel of an odd dim is 0');
  await checkTimestep({ t: tView, dim: 20, out: permute(contiguous([20, n]), [1, 0]), order: 'sin_cos', maxPeriod: 100 }, t, 'sin_cos');
});

gpuTest('2D table follows MAE/DiT: first half of channels encodes w, second half h, each [sin | cos]', async () => {
  const out = await checkTable({ ...sincos2d(8, 2, 3), out: contiguous([6, 8]) }, '2D small');
  // row 1 is (h 0, w 1); row 3 is (h 1, w 0). Frequencies per half: 10000^(-k/2) = 1, 0.01.
  const row = (m: number) => Array.from(out.slice(m * 8, m * 8 + 8));
  const enc = (p: number) => [Math.sin(p), Math.sin(p / 100), Math.cos(p), Math.cos(p / 100)];
  const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-6);
  assert.ok(close(row(1), [...enc(1), ...enc(0)]), `row 1: ${row(1)}`);
  assert.ok(close(row(3), [...enc(0), ...enc(1)]), `row 3: ${row(3)}`);
  await checkTable({ ...sincos2d(64, 7, 5), out: contiguous([35, 64]) }, '2D 7x5');
});

gpuTest('1D table with long positions, and the 3D split (t quarter, then w, h) into a strided output', async () => {
  await checkTable({ ...sincos1d(64, 1000), out: contiguous([1000, 64]) }, '1D long');
  const p = { ...sincos3d(32, 3, 4, 5), out: { shape: [60, 32], strides: [40, 1], offset: 8 } };
  assert.equal(p.blocks.map((b) => b.channels), [8, 12, 12]);
  const out = await checkTable(p, '3D');
  assert.ok(out.slice(0, 8).every(Number.isNaN), 'only the view is written');
  // row 20 is (t 1, h 0, w 0): the t block is non-trivial, both spatial blocks encode 0 (sin 0, cos 1)
  const r = out.slice(8 + 20 * 40, 8 + 20 * 40 + 32);
  assert.ok(Math.abs(r[0] - Math.sin(1)) < 1e-6 && r.slice(8, 14).every((v) => v === 0) && r.slice(14, 20).every((v) => v === 1));
});

gpuTest('position table with scaled positions per block (interpolated positions), and scale 1 keeps the kernel', async () => {
  const p = { grid: [3, 4, 5], blocks: [{ axis: 0, channels: 8, scale: 0.25 }, { axis: 2, channels: 12, scale: 2 / 3 }, { axis: 1, channels: 12 }], out: contiguous([60, 32]) };
  const out = await checkTable(p, '3D scaled');
  // row 20 is (t 1, h 0, w 0): the t block encodes position 0.25
  assert.ok(Math.abs(out[20 * 32] - Math.sin(0.25)) < 1e-6, `t block: ${out[20 * 32]}`);
  const plain = { ...sincos2d(8, 2, 3), out: contiguous([6, 8]) };
  assert.is(positionTableKernel({ ...plain, blocks: plain.blocks.map((b) => ({ ...b, scale: 1 })) }).wgsl, positionTableKernel(plain).wgsl);
  assert.throws(() => positionTableKernel({ ...plain, blocks: [{ axis: 1, channels: 4, scale: 0 }, { axis: 0, channels: 4 }] }), /scale must be finite and > 0/);
});

gpuTest('embedding gather: class ids, the null class as a last row, out-of-range ids clamped, strided views', async () => {
  const [classes, dim] = [10, 37];
  const data = randomArray((classes + 1) * dim);
  const table = permute(contiguous([dim, classes + 1]), [1, 0]); // stored transposed
  const ids = Int32Array.from([3, classes, 0, -3, 50, 9, 3]);
  const out: View = { shape: [ids.length, dim], strides: [dim + 2, 1], offset: 2 };
  const p = { table, n: ids.length, out };
  const ref = gatherReference(p, data, ids);
  const [got] = await expectMatches(gatherKernel(p), [data, ids, extent(out)], [ref], 'gather');
  const rowOf = (i: number) => Array.from(got.slice(2 + i * (dim + 2), 2 + i * (dim + 2) + dim));
  const tableRow = (r: number) => Array.from({ length: dim }, (_, c) => data[c * (classes + 1) + r]);
  assert.equal(rowOf(1), tableRow(classes), 'null class row');
  assert.equal(rowOf(3), tableRow(0), 'negative id clamps to row 0');
  assert.equal(rowOf(4), tableRow(classes), 'too large id clamps to the last row');
  const offsetSpec = gatherKernel({ table, n: 2, idsOffset: 5, out: contiguous([2, dim]) });
  await assertCompilesClean(offsetSpec);
  const [offsetIds] = await runKernel(offsetSpec, [data, ids, 2 * dim]);
  assert.equal(Array.from(offsetIds.slice(0, dim)), tableRow(9), 'ids offset');
});

test('bad parameters fail with clear messages', () => {
  assert.throws(() => timestepEmbeddingKernel({ t: contiguous([2]), dim: 8, out: contiguous([2, 9]) }), /expected \[2, 8\]/);
  assert.throws(() => timestepEmbeddingKernel({ t: contiguous([2]), dim: 1, out: contiguous([2, 1]) }), /dim must be an integer >= 2/);
  assert.throws(() => timestepEmbeddingKernel({ t: contiguous([2]), dim: 8, out: contiguous([2, 8]), maxPeriod: 1 }), /maxPeriod/);
  assert.throws(() => positionTableKernel({ ...sincos2d(6, 2, 2), out: contiguous([4, 6]) }), /channels must be even/);
  assert.throws(() => positionTableKernel({ grid: [3], blocks: [{ axis: 1, channels: 4 }], out: contiguous([3, 4]) }), /not a grid axis/);
  assert.throws(() => gatherKernel({ table: contiguous([4]), n: 2, out: contiguous([2, 4]) }), /shape \[rows, dim\]/);
});

test.run();
