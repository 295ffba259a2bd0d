import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { gruInputProjection, gruReference, gruScanKernel, type GruScanParams } from '../../src/codegen/kernels/scan.ts';
import { contiguous, permute } from '../../src/codegen/kernels/view.ts';
import { runKernel } from '../runtime/kernels.ts';
import { assertCompilesClean, randomArray as uniform, relError, seed } from './ref-check.ts';

/** Symmetric uniform inputs in [-amp, amp). */
const randomArray = (n: number, amp = 1) => uniform(n, -amp, amp);

/** Random GRU weights for hidden size H and input size I, xp = W_ih x + b_ih laid out [rows, 3H]. */
function gruData(rows: number, H: number, I: number) {
  const x = randomArray(rows * I, 2);
  const wih = randomArray(3 * H * I, 0.6), bih = randomArray(3 * H, 0.3);
  return { xp: Float32Array.from(gruInputProjection(x, wih, bih, rows, I)), whh: randomArray(3 * H * H, 0.6), bhh: randomArray(3 * H, 0.3) };
}

async function check(p: GruScanParams, data: { xp: Float32Array; whh: Float32Array; bhh: Float32Array; h0?: Float32Array }, what: string) {
  const spec = gruScanKernel(p);
  await assertCompilesClean(spec);
  const ref = gruReference(p, data).out;
  const [gpu] = await runKernel(spec, [data.xp, data.whh, data.bhh, ...(data.h0 ? [data.h0] : []), ref.length]);
  const err = relError(gpu, ref);
  assert.ok(err < 1e-4, `${what}: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
  return { gpu, ref };
}

test('one step of the reference follows the PyTorch gate equations', () => {
  // H = 1, I = 1: every term written out by hand
  const [x, h0] = [0.7, -0.4];
  const [wir, wiz, win, bir, biz, bin] = [0.5, -1.1, 0.9, 0.1, 0.2, -0.3];
  const [whr, whz, whn, bhr, bhz, bhn] = [-0.6, 0.8, 1.3, 0.05, -0.15, 0.25];
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const r = sig(wir * x + bir + whr * h0 + bhr);
  const z = sig(wiz * x + biz + whz * h0 + bhz);
  const n = Math.tanh(win * x + bin + r * (whn * h0 + bhn));
  const expected = (1 - z) * n + z * h0;
  const xp = gruInputProjection([x], [wir, wiz, win], [bir, biz, bin], 1, 1);
  const p: GruScanParams = { hidden: 1, xp: contiguous([1, 1, 3]), axis: 1, out: contiguous([1, 1, 1]), h0: contiguous([1, 1]) };
  const { out } = gruReference(p, { xp, whh: [whr, whz, whn], bhh: [bhr, bhz, bhn], h0: [h0] });
  assert.ok(Math.abs(out[0] - expected) < 1e-12, `${out[0]} vs ${expected}`);
});

gpuTest('GRU forward over t in [b, t, 3H], hidden 7 with a workgroup smaller than H, initial state', async () => {
  const B = 3, T = 6, H = 7, I = 5;
  const data = gruData(B * T, H, I);
  const p: GruScanParams = { hidden: H, xp: contiguous([B, T, 3 * H]), axis: 1, out: contiguous([B, T, H]), h0: contiguous([B, H]), workgroupSize: 4 };
  await check(p, { ...data, h0: randomArray(B * H) }, 'forward');
});

gpuTest('GRU reverse: each step depends on the later one, and differs from the forward scan', async () => {
  const B = 2, T = 5, H = 6, I = 3;
  const data = gruData(B * T, H, I);
  const p: GruScanParams = { hidden: H, xp: contiguous([B, T, 3 * H]), axis: 1, out: contiguous([B, T, H]), reverse: true };
  const { gpu } = await check(p, data, 'reverse');
  const forward = gruReference({ ...p, reverse: false }, data).out;
  assert.ok(relError(gpu, forward) > 1e-2, 'the reverse scan must not equal the forward one');
});

gpuTest('scan over t of a video grid [b, t, h, w, 3H] stored time-major, output permuted, rows (b, h, w)', async () => {
  const b = 2, T = 4, hh = 2, ww = 3, H = 5, I = 4;
  const data = gruData(b * T * hh * ww, H, I);
  // xp buffer laid out [t, b, h, w, 3H]; logical [b, t, h, w, 3H]
  const xp = permute(contiguous([T, b, hh, ww, 3 * H]), [1, 0, 2, 3, 4]);
  // out buffer laid out [H, b, h, w, t]
  const out = permute(contiguous([H, b, hh, ww, T]), [1, 4, 2, 3, 0]);
  const h0 = permute(contiguous([H, b, hh, ww]), [1, 2, 3, 0]);
  await check({ hidden: H, xp, axis: 1, out, h0, workgroupSize: 8 }, { ...data, h0: randomArray(b * hh * ww * H) }, 'video grid');
  await check({ hidden: H, xp, axis: 1, out, reverse: true }, data, 'video grid, reverse');
});

test('bad parameters give clear messages', () => {
  const p: GruScanParams = { hidden: 4, xp: contiguous([2, 3, 12]), axis: 1, out: contiguous([2, 3, 4]) };
  assert.throws(() => gruScanKernel({ ...p, hidden: 5 }), /last axis must be 3 \* hidden = 15/);
  assert.throws(() => gruScanKernel({ ...p, axis: 2 }), /axis 2 is not a lead axis/);
  assert.throws(() => gruScanKernel({ ...p, out: contiguous([2, 3, 5]) }), /out has shape/);
  assert.throws(() => gruScanKernel({ ...p, h0: contiguous([3, 4]) }), /h0 has shape/);
});

test.run();
