import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import {
  defaultPartials, l2FinishKernel, l2NormReference, l2PartialsKernel, reduceKernel, reduceReference, type ReduceParams,
} from '../../src/codegen/kernels/reduce.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { runKernel } from '../runtime/kernels.ts';
import { assertCompilesClean, expectMatches, randomArray, relError, seed } from './ref-check.ts';

async function check(p: ReduceParams, what: string, x = randomArray(extent(p.x), -2, 2)) {
  const ref = reduceReference(p, x);
  const [y] = await expectMatches(reduceKernel(p), [x, extent(p.y)], [ref], what);
  return { y, ref };
}

const strategies = ['thread', 'workgroup'] as const;

gpuTest('mean over two non-adjacent axes of a permuted view, both strategies', async () => {
  const x = permute(contiguous([6, 3, 5, 4]), [1, 2, 3, 0]); // logical [3, 5, 4, 6]
  for (const strategy of strategies) {
    await check({ op: 'mean', x, axes: [3, 1], y: contiguous([3, 4]), strategy }, `mean ${strategy}`);
  }
});

gpuTest('sum over every axis into a scalar, both strategies (2100 elements: not a workgroup multiple)', async () => {
  const x = contiguous([2, 3, 50, 7]);
  const y: View = { shape: [], strides: [], offset: 0 };
  for (const strategy of strategies) await check({ op: 'sum', x, axes: [0, 1, 2, 3], y, strategy }, `total ${strategy}`);
});

gpuTest('spatial mean of [B, C, T, H, W] into [B, C]; the default strategy picks the workgroup tree', async () => {
  const p: ReduceParams = { op: 'mean', x: contiguous([2, 3, 3, 9, 11]), axes: [2, 3, 4], y: contiguous([2, 3]) };
  assert.match(reduceKernel(p).wgsl, /workgroup_sum/);
  assert.not.match(reduceKernel({ ...p, x: contiguous([2, 3, 1, 2, 3]) }).wgsl, /workgroup_sum/);
  await check(p, 'spatial mean');
});

gpuTest('sum over the leading axis into a strided output with an offset', async () => {
  const y: View = { shape: [4, 5], strides: [10, 2], offset: 1 };
  const { y: out } = await check({ op: 'sum', x: contiguous([7, 4, 5]), axes: [0], y }, 'strided y');
  assert.ok(Number.isNaN(out[0]) && Number.isNaN(out[2]), 'gaps of the output view are left alone');
});

gpuTest('more outputs than one grid dimension holds (thread strategy)', async () => {
  const p: ReduceParams = { op: 'mean', x: contiguous([70_001, 2]), axes: [1], y: contiguous([70_001]), strategy: 'thread', workgroupSize: 1 };
  assert.ok(reduceKernel(p).dispatch[1] > 1);
  await check(p, 'many outputs');
});

/** Runs both L2 stages on one buffer and returns the GPU norm. */
async function l2(x: Float32Array, n: number, offset: number, partials?: number) {
  const stage1 = l2PartialsKernel({ n, offset, partials });
  const count = partials ?? defaultPartials(n);
  const [parts] = await expectMatches(stage1, [x, count], [partialRef(x, n, offset, count)], 'l2 partials');
  const [norm] = await expectMatches(l2FinishKernel(count), [parts, 1], [[l2NormReference(x, n, offset)]], 'l2 finish');
  return norm[0];
}

/** What each stage-1 workgroup must produce: sums of squares over its grid-strided share. */
function partialRef(x: Float32Array, n: number, offset: number, parts: number, wg = 64): Float64Array {
  const out = new Float64Array(parts);
  for (let i = 0; i < n; i++) out[Math.floor(i / wg) % parts] += x[offset + i] ** 2;
  return out;
}

gpuTest('global L2 norm: two stages, default and explicit partial counts, an offset, a tiny buffer', async () => {
  const x = randomArray(40_000, -3, 3);
  for (const [n, offset, partials] of [[40_000, 0, undefined], [10_007, 123, 7], [5, 2, undefined], [39_000, 1000, 1]] as const) {
    const ref = l2NormReference(x, n, offset);
    const got = await l2(x, n, offset, partials);
    assert.ok(relError([got], [ref]) < 1e-5, `n=${n}: ${got} vs ${ref} (replay: VDM_TEST_SEED=${seed})`);
  }
});

gpuTest('L2 norm over several buffers sharing one partials buffer', async () => {
  const a = randomArray(3000), b = randomArray(777, -5, 5);
  const pa = l2PartialsKernel({ n: a.length, partials: 4 });
  const pb = l2PartialsKernel({ n: b.length, partials: 3, partialOffset: 4 });
  assert.match(pb.wgsl, /b_partials\[4u \+ g\]/);
  for (const spec of [pa, pb]) await assertCompilesClean(spec);
  const [partsA] = await runKernel(pa, [a, 4]);
  const [partsB] = await runKernel(pb, [b, 7]);
  assert.ok(partsB.slice(0, 4).every(Number.isNaN), 'the second buffer writes only its own slots');
  const combined = Float32Array.from([...partsA, ...partsB.slice(4)]);
  const [norm] = await runKernel(l2FinishKernel(7), [combined, 1]);
  const ref = Math.hypot(l2NormReference(a, a.length), l2NormReference(b, b.length));
  assert.ok(relError(norm, [ref]) < 1e-5, `${norm[0]} vs ${ref} (replay: VDM_TEST_SEED=${seed})`);
});

test('bad parameters fail with clear messages', () => {
  const x = contiguous([2, 3]);
  assert.throws(() => reduceKernel({ op: 'sum', x, axes: [1, 1], y: contiguous([2]) }), /distinct axes/);
  assert.throws(() => reduceKernel({ op: 'sum', x, axes: [2], y: contiguous([2]) }), /distinct axes/);
  assert.throws(() => reduceKernel({ op: 'sum', x, axes: [1], y: contiguous([3]) }), /expected the kept axes \[2\]/);
  assert.throws(() => reduceKernel({ op: 'max' as 'sum', x, axes: [1], y: contiguous([2]) }), /unknown op 'max'/);
  assert.throws(() => l2PartialsKernel({ n: 0 }), /positive integer/);
  assert.throws(() => reduceKernel({ op: 'sum', x, axes: [1], y: contiguous([2]), strategy: 'workgroup', workgroupSize: 3 }), /power of two/);
});

test.run();
