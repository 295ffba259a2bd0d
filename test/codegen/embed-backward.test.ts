import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { gatherReference } from '../../src/codegen/kernels/embed.ts';
import {
  embedBackwardKernel, embedBackwardReference, embedChainSumKernel, embedLinksKernel, embedLinksLength, type EmbedBackwardParams,
} from '../../src/codegen/kernels/embed-backward.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { runKernel } from '../runtime/kernels.ts';
import { expectMatches, rand, randomArray, seed } from './ref-check.ts';

/** Both paths against the reference; their sums must also agree bit for bit (same terms, same order). */
async function check(p: EmbedBackwardParams, ids: Int32Array, what: string) {
  const dy = randomArray(extent(p.dy));
  const ref = embedBackwardReference(p, ids, dy);
  const [scan] = await expectMatches(embedBackwardKernel(p), [ids, dy, extent(p.dtable)], [ref], `${what} scan`);
  // links come back through a float readback: reinterpret the bits as i32
  const [raw] = await runKernel(embedLinksKernel(p), [ids, embedLinksLength(p)]);
  const links = new Int32Array(raw.buffer, raw.byteOffset, raw.length);
  assert.equal([...links], linksReference(p, ids), `${what}: links`);
  const [chain] = await expectMatches(embedChainSumKernel(p), [links, dy, extent(p.dtable)], [ref], `${what} chain`);
  assert.ok(scan.every((v, i) => Object.is(v, chain[i])), `${what}: the two paths differ (replay: VDM_TEST_SEED=${seed})`);
  return { ref, scan };
}

function linksReference(p: EmbedBackwardParams, ids: Int32Array): number[] {
  const rows = p.dtable.shape[0];
  const links = new Array(rows + p.n).fill(-1);
  const last = new Array(rows).fill(-1);
  for (let i = 0; i < p.n; i++) {
    const r = Math.min(Math.max(ids[(p.idsOffset ?? 0) + i], 0), rows - 1);
    if (last[r] < 0) links[r] = i; else links[rows + last[r]] = i;
    last[r] = i;
  }
  return links;
}

test('the reference is the adjoint of the gather: <gather(table), dy> = <table, dtable>', () => {
  const [rows, dim, n] = [6, 5, 9];
  const ids = Int32Array.from({ length: n }, () => Math.floor(rand() * (rows + 4)) - 2); // some out of range
  const table = Float64Array.from({ length: rows * dim }, () => rand() - 0.5);
  const dy = Float64Array.from({ length: n * dim }, () => rand() - 0.5);
  const out = gatherReference({ table: contiguous([rows, dim]), n, out: contiguous([n, dim]) }, table, ids);
  const dtable = embedBackwardReference({ dtable: contiguous([rows, dim]), n, dy: contiguous([n, dim]) }, ids, dy);
  const lhs = out.reduce((s, v, i) => s + v * dy[i], 0);
  const rhs = table.reduce((s, v, i) => s + v * dtable[i], 0);
  assert.ok(Math.abs(lhs - rhs) < 1e-12, `${lhs} vs ${rhs}`);
});

gpuTest('class labels with repeats, the null class, clamped out-of-range ids and unused rows (written 0)', async () => {
  const [classes, dim] = [10, 37];
  const ids = Int32Array.from([3, classes, 0, -3, 50, 9, 3, 3, classes, 7, 0]);
  const p: EmbedBackwardParams = { dtable: contiguous([classes + 1, dim]), n: ids.length, dy: contiguous([ids.length, dim]) };
  const { scan } = await check(p, ids, 'labels');
  for (const unused of [1, 2, 4, 5, 6, 8]) assert.ok(scan.slice(unused * dim, (unused + 1) * dim).every((v) => v === 0), `row ${unused} is zero`);
});

gpuTest('many ids (not a workgroup multiple), a transposed dtable, strided dy and an ids offset', async () => {
  const [rows, dim, n] = [23, 13, 301];
  const ids = Int32Array.from({ length: n + 4 }, () => Math.floor(rand() * rows));
  const dtable = permute(contiguous([dim, rows]), [1, 0]); // stored transposed
  const dy: View = { shape: [n, dim], strides: [dim + 3, 1], offset: 2 };
  const { scan } = await check({ dtable, n, idsOffset: 4, dy }, ids, 'tokens');
  // dtable row r, channel c sits at c * rows + r
  assert.ok(scan.every(Number.isFinite), 'every element of the transposed view is written');
});

gpuTest('a deliberately wrong kernel fails the comparison', async () => {
  const [rows, dim] = [5, 7];
  const ids = Int32Array.from([0, 4, 9, 2, 2]); // 9 clamps to row 4
  const p: EmbedBackwardParams = { dtable: contiguous([rows, dim]), n: ids.length, dy: contiguous([ids.length, dim]) };
  const dy = randomArray(extent(p.dy));
  const ref = embedBackwardReference(p, ids, dy);
  const spec = embedBackwardKernel(p);
  // no clamp: id 9 is dropped instead of counted in row 4 (new key: the runtime caches pipelines by key)
  const wrong = { ...spec, key: `wrong ${spec.key}`, wgsl: spec.wgsl.replace(/clamp\((b_ids\[[^\]]*\]), 0, \d+\)/, '$1') };
  assert.is.not(wrong.wgsl, spec.wgsl);
  const rejected = await expectMatches(wrong, [ids, dy, extent(p.dtable)], [ref], 'unclamped').then(() => false, (e: Error) => /relative error/.test(e.message));
  assert.ok(rejected, 'the unclamped kernel passed');
});

test('bad parameters fail with clear messages', () => {
  const dy = contiguous([3, 4]);
  assert.throws(() => embedBackwardKernel({ dtable: contiguous([4]), n: 3, dy }), /shape \[rows, dim\]/);
  assert.throws(() => embedBackwardKernel({ dtable: contiguous([5, 4]), n: 2, dy }), /expected \[2, 4\]/);
  assert.throws(() => embedBackwardKernel({ dtable: { shape: [5, 4], strides: [0, 1], offset: 0 }, n: 3, dy }), /cannot broadcast/);
  assert.throws(() => embedLinksKernel({ dtable: contiguous([5, 4]), n: 0, dy }), /positive integer/);
});

test.run();
