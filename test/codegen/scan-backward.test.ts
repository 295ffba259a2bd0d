// The GRU scan's backward kernel (backprop through time) against its float64 reference, and the
// reference against central finite differences of the forward scan's reference.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import type { KernelSpec } from '../../src/codegen/kernels/kernel.ts';
import { gruInputProjection, gruReference, type GruScanParams } from '../../src/codegen/kernels/scan.ts';
import { gruScanBackwardKernel, gruScanBackwardReference, type GruScanBackwardParams } from '../../src/codegen/kernels/scan-backward.ts';
import { contiguous, extent, forEachIndex, permute, type View } from '../../src/codegen/kernels/view.ts';
import { expectMatches, randomArray as uniform, relError, seed } from './ref-check.ts';

const randomArray = (n: number, amp = 1) => uniform(n, -amp, amp);
const offsetOf = (v: View, idx: readonly number[]) => idx.reduce((o, x, i) => o + x * v.strides[i], v.offset);

interface Data { xp: Float32Array; whh: Float32Array; bhh: Float32Array; h0?: Float32Array; dy: Float32Array }

/**
 * Each step's starting state (the forward reference's saved hPrev, scan order per batch row) in
 * `hv`'s layout, NaN where it does not reach: what the lowering builds from the node's value.
 */
function statesBefore(p: GruScanParams, hv: View, d: { xp: ArrayLike<number>; whh: ArrayLike<number>; bhh: ArrayLike<number>; h0?: ArrayLike<number> }): Float64Array {
  const { saved } = gruReference(p, d);
  const H = p.hidden, lead = p.xp.shape.slice(0, -1), T = lead[p.axis];
  const out = new Float64Array(extent(hv)).fill(NaN);
  const batchSizes = lead.filter((_, i) => i !== p.axis);
  forEachIndex(lead, (idx) => {
    const row = idx.filter((_, i) => i !== p.axis).reduce((r, c, i) => r * batchSizes[i] + c, 0);
    const t = idx[p.axis], s = p.reverse ? T - 1 - t : t;
    for (let i = 0; i < H; i++) out[offsetOf(hv, [...idx, i])] = saved.hPrev[(row * T + s) * H + i];
  });
  return out;
}

/** Random inputs for `rows` (row, step) pairs: xp from a real input projection, weights large enough to matter. */
function gruData(n: number, H: number, I: number, h0: number | undefined, dyExtent: number): Data {
  const x = randomArray(n * I, 2);
  const xp = Float32Array.from(gruInputProjection(x, randomArray(3 * H * I, 0.6), randomArray(3 * H, 0.3), n, I));
  return { xp, whh: randomArray(3 * H * H, 0.6), bhh: randomArray(3 * H, 0.3), h0: h0 === undefined ? undefined : randomArray(h0), dy: randomArray(dyExtent) };
}

/** The forward parameters the backward ones mirror. */
const forwardOf = (p: GruScanBackwardParams, h0?: View): GruScanParams =>
  ({ hidden: p.hidden, xp: p.xp, axis: p.axis, out: p.dy, h0, reverse: p.reverse });

async function check(p: GruScanBackwardParams, data: Data, h0: View | undefined, what: string, spec = gruScanBackwardKernel(p)) {
  const hprev = Float32Array.from(statesBefore(forwardOf(p, h0), p.hprev, data));
  const ref = gruScanBackwardReference(p, { ...data, hprev });
  const refs = [ref.dxp, ref.dhp, ...(ref.dh0 ? [ref.dh0] : [])];
  return expectMatches(spec, [data.xp, data.whh, data.bhh, hprev, data.dy, ...refs.map((r) => r.length)], refs, what);
}

/** [B, T, 3H] contiguous, scanning t, with an initial state. */
function simple(B: number, T: number, H: number, reverse: boolean, workgroupSize?: number) {
  const p: GruScanBackwardParams = {
    hidden: H, axis: 1, reverse, workgroupSize, xp: contiguous([B, T, 3 * H]), hprev: contiguous([B, T, H]), dy: contiguous([B, T, H]),
    dxp: contiguous([B, T, 3 * H]), dhp: contiguous([B, T, 3 * H]), dh0: contiguous([B, H]),
  };
  return { p, h0: contiguous([B, H]), data: gruData(B * T, H, 5, B * H, B * T * H) };
}

test('the reference is the gradient of the forward reference (central differences), forward and reverse', () => {
  for (const reverse of [false, true]) {
    const B = 2, T = 4, H = 3;
    const { p, h0, data } = simple(B, T, H, reverse);
    const f = forwardOf(p, h0);
    const d64 = { xp: Float64Array.from(data.xp), whh: Float64Array.from(data.whh), bhh: Float64Array.from(data.bhh), h0: Float64Array.from(data.h0!) };
    const loss = () => gruReference(f, d64).out.reduce((s, y, i) => s + y * data.dy[i], 0);
    const hp = statesBefore(f, p.hprev, d64);
    const ref = gruScanBackwardReference(p, { ...d64, hprev: hp, dy: data.dy });
    // the parameter gradients as the lowering forms them: sums over (row, step) of dhp^T hprev and dhp
    const rows = B * T;
    const dwhh = new Float64Array(3 * H * H), dbhh = new Float64Array(3 * H);
    for (let r = 0; r < rows; r++) for (let g = 0; g < 3 * H; g++) {
      dbhh[g] += ref.dhp[r * 3 * H + g];
      for (let k = 0; k < H; k++) dwhh[g * H + k] += ref.dhp[r * 3 * H + g] * hp[r * H + k];
    }
    const eps = 1e-6;
    for (const [name, arr, grad] of [['xp', d64.xp, ref.dxp], ['whh', d64.whh, dwhh], ['bhh', d64.bhh, dbhh], ['h0', d64.h0, ref.dh0!]] as const) {
      const fd = new Float64Array(arr.length);
      for (let i = 0; i < arr.length; i++) {
        const keep = arr[i];
        arr[i] = keep + eps; const up = loss();
        arr[i] = keep - eps; const down = loss();
        arr[i] = keep;
        fd[i] = (up - down) / (2 * eps);
      }
      const err = relError(grad, fd);
      assert.ok(err < 1e-6, `reverse ${reverse}: d ${name}: relative error ${err} against central differences (replay: VDM_TEST_SEED=${seed})`);
    }
  }
});

gpuTest('[b, t, 3H], hidden 7 with a workgroup smaller than H, initial state gradient', async () => {
  const { p, h0, data } = simple(3, 6, 7, false, 4);
  await check(p, data, h0, 'forward scan');
});

gpuTest('reverse scan: dh0 is the gradient reaching the state before the last step', async () => {
  const { p, h0, data } = simple(2, 5, 6, true);
  await check(p, data, h0, 'reverse scan');
});

gpuTest('scan over t of a video grid [b, t, h, w, 3H] with permuted layouts, rows (b, h, w), no initial state', async () => {
  const b = 2, T = 4, hh = 2, ww = 3, H = 5;
  const xp = permute(contiguous([T, b, hh, ww, 3 * H]), [1, 0, 2, 3, 4]);
  const hv = permute(contiguous([H, b, hh, ww, T]), [1, 4, 2, 3, 0]);
  const dy = permute(contiguous([b, hh, ww, T, H]), [0, 3, 1, 2, 4]);
  const dxp = permute(contiguous([3 * H, T, b, hh, ww]), [2, 1, 3, 4, 0]);
  for (const reverse of [false, true]) {
    const p: GruScanBackwardParams = { hidden: H, axis: 1, reverse, xp, hprev: hv, dy, dxp, dhp: contiguous([b, T, hh, ww, 3 * H]), workgroupSize: 8 };
    const data = gruData(b * T * hh * ww, H, 4, undefined, extent(dy));
    await check(p, data, undefined, `video grid, reverse ${reverse}`);
  }
  // and with an initial state laid out [H, b, h, w]
  const p: GruScanBackwardParams = { hidden: H, axis: 1, xp, hprev: hv, dy, dxp, dhp: contiguous([b, T, hh, ww, 3 * H]), dh0: permute(contiguous([H, b, hh, ww]), [1, 2, 3, 0]) };
  const h0 = permute(contiguous([H, b, hh, ww]), [1, 2, 3, 0]);
  await check(p, gruData(b * T * hh * ww, H, 4, b * hh * ww * H, extent(dy)), h0, 'video grid, permuted h0');
});

gpuTest('one step: nothing carried, dh0 = dy z + W_hh^T dhp', async () => {
  const { p, h0, data } = simple(3, 1, 4, false);
  await check(p, data, h0, 'single step');
});

gpuTest('deliberately wrong kernels fail the comparison', async () => {
  const { p, h0, data } = simple(2, 4, 5, false);
  const spec = gruScanBackwardKernel(p);
  const wrong = (from: string, to: string): KernelSpec => {
    // each mutant its own key: the runtime caches pipelines by key
    const w = { ...spec, key: `wrong ${from} ${spec.key}`, wgsl: spec.wgsl.replace(from, to) };
    assert.is.not(w.wgsl, spec.wgsl);
    return w;
  };
  const rejected = (spec: KernelSpec, what: string) => check(p, data, h0, what, spec).then(() => false, (e: Error) => /relative error/.test(e.message));
  assert.ok(await rejected(wrong('(1.0 - n * n)', '(1.0 - n)'), 'tanh derivative'), 'a wrong tanh derivative passed');
  assert.ok(await rejected(wrong('whh[g * H + k] * dg[g]', 'whh[k * 3u * H + g] * dg[g]'), 'W_hh not transposed'), 'an untransposed W_hh passed');
  assert.ok(await rejected(wrong('var acc = carry[k];', 'var acc = 0.0;'), 'no direct path'), 'a carry without d z passed');
});

test('bad parameters give clear messages', () => {
  const { p } = simple(2, 3, 4, false);
  assert.throws(() => gruScanBackwardKernel({ ...p, hidden: 5 }), /last axis must be 3 \* hidden = 15/);
  assert.throws(() => gruScanBackwardKernel({ ...p, axis: 2 }), /axis 2 is not a lead axis/);
  assert.throws(() => gruScanBackwardKernel({ ...p, dy: contiguous([2, 3, 5]) }), /dy has shape/);
  assert.throws(() => gruScanBackwardKernel({ ...p, dh0: contiguous([3, 4]) }), /dh0 has shape/);
  assert.throws(() => gruScanBackwardKernel({ ...p, workgroupSize: 0 }), /workgroupSize/);
});

test.run();
