// The rotary position embedding kernel (kernels/rope.ts) on the adapter against its float64
// reference: known angles, 1D and 3D splits of the head dim over permuted and offset views,
// large positions, and the inverse undoing the forward.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest } from '../gpu.ts';
import { ropeKernel, ropeReference, type RopeParams } from '../../src/codegen/kernels/rope.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Program } from '../../src/runtime/program.ts';
import { assertCompilesClean, randomArray, relError, seed } from './ref-check.ts';

/** Runs the in-place kernel on `x` and returns the buffer after it. */
async function run(p: RopeParams, x: Float32Array): Promise<Float32Array> {
  const spec = ropeKernel(p);
  await assertCompilesClean(spec);
  const prog = new Program(await openGpu());
  try {
    const t = prog.input('x', x);
    prog.step(spec, [t]);
    await prog.run();
    return (await prog.read([t]))[0] as Float32Array;
  } finally {
    prog.release();
  }
}

async function check(p: RopeParams, what: string, tol = 1e-4): Promise<Float32Array> {
  const x = randomArray(extent(p.x) + 3);
  const got = await run(p, x);
  const err = relError(got, ropeReference(p, x));
  assert.ok(err < tol, `${what}: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
  return got;
}

test('reference: position 0 is the identity, position 1 of a width-2 part turns by 1 rad, pairs interleaved', () => {
  // [t=2, heads=1, dh=4]: one axis over dh, pairs (0, 1) at frequency 1 and (2, 3) at 10000^(-1/2)
  const p: RopeParams = { x: contiguous([2, 1, 4]), axes: [{ axis: 0, width: 4 }], theta: 10000 };
  const x = [1, 2, 3, 4, 1, 2, 3, 4];
  const y = ropeReference(p, x);
  assert.equal(Array.from(y.slice(0, 4)), [1, 2, 3, 4]);
  const c = Math.cos(1), s = Math.sin(1), c2 = Math.cos(0.01), s2 = Math.sin(0.01);
  const want = [c - 2 * s, 2 * c + s, 3 * c2 - 4 * s2, 4 * c2 + 3 * s2];
  want.forEach((w, i) => assert.ok(Math.abs(y[4 + i] - w) < 1e-12, `element ${i}`));
  // the inverse turns back
  const back = ropeReference({ ...p, inverse: true }, y);
  back.forEach((v, i) => assert.ok(Math.abs(v - x[i]) < 1e-12));
});

gpuTest('1D over t (Open-Sora temporal): q of [b, h, w, t, heads, dh] with a packed qkv stride', async () => {
  // a part of a packed [b, t, 3, heads, dh] buffer (q at offset 0, k at heads * dh), tokens over t
  const packed = contiguous([2, 7, 3, 2, 8]);
  const part = (i: number): View => ({ shape: [2, 7, 2, 8], strides: [packed.strides[0], packed.strides[1], 8, 1], offset: i * 16 });
  await check({ x: part(0), axes: [{ axis: 1, width: 8 }], theta: 10000 }, 'q');
  await check({ x: part(1), axes: [{ axis: 1, width: 8 }], theta: 10000 }, 'k');
});

gpuTest('3D (t, h, w) split 4 / 6 / 6 of dh 16 (CogVideoX rule), permuted storage, and the inverse', async () => {
  const v = permute(contiguous([2, 3, 16, 5, 4, 3]), [0, 1, 3, 4, 5, 2]); // [b, t, h, w, heads, dh] with dh not last in memory
  const p: RopeParams = { x: { ...v, offset: 2 }, axes: [{ axis: 1, width: 4 }, { axis: 2, width: 6 }, { axis: 3, width: 6 }], theta: 10000 };
  const x = randomArray(extent(p.x));
  const y = await run(p, x);
  assert.ok(relError(y, ropeReference(p, x)) < 1e-4, `forward (replay: VDM_TEST_SEED=${seed})`);
  // a kernel that turned the other way, or split the head dim otherwise, would not match
  assert.ok(relError(y, ropeReference({ ...p, inverse: true }, x)) > 1e-2);
  assert.ok(relError(y, ropeReference({ ...p, axes: [{ axis: 1, width: 6 }, { axis: 2, width: 4 }, { axis: 3, width: 6 }] }, x)) > 1e-2);
  const back = await run({ ...p, inverse: true }, y);
  assert.ok(relError(back, x) < 1e-4, 'inverse');
});

gpuTest('large positions stay accurate (t = 600, theta 10000)', async () => {
  await check({ x: contiguous([600, 1, 4]), axes: [{ axis: 0, width: 4 }], theta: 10000 }, 'long axis');
});

test('validation: widths must be even and fill dh; axes are grid axes', () => {
  assert.throws(() => ropeKernel({ x: contiguous([4, 1, 8]), axes: [{ axis: 0, width: 6 }], theta: 10000 }), /add to 6/);
  assert.throws(() => ropeKernel({ x: contiguous([4, 1, 8]), axes: [{ axis: 0, width: 3 }, { axis: 0, width: 5 }], theta: 10000 }), /even/);
  assert.throws(() => ropeKernel({ x: contiguous([4, 1, 8]), axes: [{ axis: 1, width: 8 }], theta: 10000 }), /not a grid axis/);
});

test.run();
