import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { pooledShape, poolReference, resizeReference, upsampledShape } from '../../src/codegen/kernels/resample.ts';
import {
  poolBackwardKernel, poolBackwardReference, resizeBackwardKernel, resizeBackwardReference, type PoolBackwardParams, type ResizeBackwardParams,
} from '../../src/codegen/kernels/resample-backward.ts';
import { contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import type { KernelSpec } from '../../src/codegen/kernels/kernel.ts';
import { expectMatches, rand, randomArray } from './ref-check.ts';

const dotOf = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i]) && !Number.isNaN(b[i])) s += a[i] * b[i];
  return s;
};
const random64 = (n: number) => Float64Array.from({ length: n }, () => rand() - 0.5);
const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);

function pool(op: 'avg' | 'max', shape: number[], factors: number[], x: View = contiguous(shape)): PoolBackwardParams {
  return { op, x, factors, dy: contiguous(pooledShape(shape, factors)), dx: x };
}
function resize(mode: 'nearest' | 'linear', shape: number[], target: number[], dx: View = contiguous(shape)): ResizeBackwardParams {
  return { mode, dy: contiguous(target), dx };
}

const POOLS: [string, number[], number[]][] = [
  ['(h: 2, w: 3)', [2, 3, 2, 4, 6], [1, 1, 1, 2, 3]],
  ['2x2x2', [1, 2, 4, 4, 6], [1, 1, 2, 2, 2]],
  ['t alone, a ragged tail along w', [2, 2, 3, 2, 5], [1, 1, 3, 1, 2]],
];
const RESIZES: [string, number[], number[]][] = [
  ['(h, w) x2', [1, 2, 1, 3, 4], [1, 2, 1, 6, 8]],
  ['(t, h, w) x (2, 3, 2)', [1, 2, 2, 3, 3], [1, 2, 4, 9, 6]],
  ['w x3, t x2', [2, 1, 2, 2, 3], [2, 1, 4, 2, 9]],
  ['5 -> 7 and 6 -> 4 (not whole factors)', [1, 1, 2, 5, 6], [1, 1, 2, 7, 4]],
  ['one to many', [1, 2, 1, 1, 2], [1, 2, 1, 4, 2]],
];

test('the references are adjoints of the forward references', () => {
  for (const [what, shape, factors] of POOLS) {
    for (const op of ['avg', 'max'] as const) {
      const p = pool(op, shape, factors);
      const x = random64(extent(p.x)), dy = random64(extent(p.dy));
      const y = poolReference({ op, x: p.x, factors, y: p.dy }, x);
      // max is linear in x for a fixed arg-max: <pool(x), dy> = <x, dx>
      const dx = poolBackwardReference(p, x, dy);
      assert.ok(Math.abs(dotOf(y, dy) - dotOf(x, dx)) < 1e-10, `pool ${op} ${what}`);
    }
  }
  for (const [what, shape, target] of RESIZES) {
    for (const mode of ['nearest', 'linear'] as const) {
      const p = resize(mode, shape, target);
      const x = random64(extent(p.dx)), dy = random64(extent(p.dy));
      const y = resizeReference({ mode, x: p.dx, y: p.dy }, x);
      assert.ok(Math.abs(dotOf(y, dy) - dotOf(x, resizeBackwardReference(p, dy))) < 1e-10, `resize ${mode} ${what}`);
    }
  }
});

gpuTest('pool backward, avg and max', async () => {
  for (const [what, shape, factors] of POOLS) {
    for (const op of ['avg', 'max'] as const) {
      const p = pool(op, shape, factors);
      const x = randomArray(extent(p.x)), dy = randomArray(extent(p.dy));
      const args = op === 'max' ? [x, dy, extent(p.dx)] : [dy, extent(p.dx)];
      await expectMatches(poolBackwardKernel(p), args, [poolBackwardReference(p, x, dy)], `pool ${op} ${what}`);
    }
  }
});

gpuTest('max pool: ties go to the first element of the window; permuted and offset views', async () => {
  const shape = [1, 2, 2, 4, 4];
  const p = pool('max', shape, [1, 1, 2, 2, 2]);
  const x = Float32Array.from({ length: extent(p.x) }, (_, i) => Math.floor(i / 37) % 2); // long runs of equal values
  const dy = randomArray(extent(p.dy));
  await expectMatches(poolBackwardKernel(p), [x, dy, extent(p.dx)], [poolBackwardReference(p, x, dy)], 'max ties');
  // x and dx channels-last, dy inside a wider buffer
  const xv = permute(contiguous([1, 2, 4, 4, 2]), [0, 4, 1, 2, 3]);
  const wide = contiguous([1, 5, 1, 2, 2]);
  const q: PoolBackwardParams = { op: 'max', x: xv, factors: [1, 1, 2, 2, 2], dy: { ...wide, shape: [1, 2, 1, 2, 2], offset: 3 * wide.strides[1] }, dx: xv };
  const x2 = randomArray(extent(q.x)), dy2 = randomArray(extent(q.dy));
  await expectMatches(poolBackwardKernel(q), [x2, dy2, extent(q.dx)], [poolBackwardReference(q, x2, dy2)], 'max permuted');
});

gpuTest('resize backward, nearest and linear', async () => {
  for (const [what, shape, target] of RESIZES) {
    for (const mode of ['nearest', 'linear'] as const) {
      const p = resize(mode, shape, target);
      const dy = randomArray(extent(p.dy));
      await expectMatches(resizeBackwardKernel(p), [dy, extent(p.dx)], [resizeBackwardReference(p, dy)], `resize ${mode} ${what}`, 1e-4,
        [resizeBackwardReference(p, abs(dy))]);
    }
  }
  // a permuted dx
  const dx = permute(contiguous([1, 3, 4, 2, 2]), [0, 4, 1, 2, 3]);
  const p: ResizeBackwardParams = { mode: 'linear', dy: contiguous(upsampledShape([1, 2, 3, 4, 3], [1, 1, 2, 2, 1])), dx };
  const dy = randomArray(extent(p.dy));
  await expectMatches(resizeBackwardKernel(p), [dy, extent(p.dx)], [resizeBackwardReference(p, dy)], 'resize permuted', 1e-4, [resizeBackwardReference(p, abs(dy))]);
});

gpuTest('deliberately wrong kernels fail the comparison', async () => {
  const fails = (spec: KernelSpec, args: (Float32Array | number)[], ref: Float64Array, what: string) =>
    expectMatches(spec, args, [ref], what).then(() => false, (e: Error) => /relative error/.test(e.message));
  const wrong = (spec: KernelSpec, from: string | RegExp, to: string) => {
    const w = { ...spec, key: `wrong ${spec.key}`, wgsl: spec.wgsl.replace(from, to) };
    assert.is.not(w.wgsl, spec.wgsl);
    return w;
  };
  // linear: the reading range starts at first(i) instead of first(i - 1)
  const r = resize('linear', [1, 1, 1, 4, 5], [1, 1, 1, 8, 10]);
  const dy = randomArray(extent(r.dy));
  assert.ok(await fails(wrong(resizeBackwardKernel(r), /first_reader\(i32\((i\d)\) - 1i/g, 'first_reader(i32($1) + 0i'),
    [dy, extent(r.dx)], resizeBackwardReference(r, dy), 'linear range'), 'the short range passed');
  // max: every element of a window gets the gradient
  const p = pool('max', [1, 2, 1, 4, 6], [1, 1, 1, 2, 3]);
  const x = randomArray(extent(p.x)), g = randomArray(extent(p.dy));
  assert.ok(await fails(wrong(poolBackwardKernel(p), /select\(0\.0, g, arg == [^;]*\)/, 'g'), [x, g, extent(p.dx)], poolBackwardReference(p, x, g), 'max spread'),
    'the spread max passed');
});

test('clear errors', () => {
  assert.throws(() => poolBackwardKernel({ ...pool('avg', [2, 4], [1, 2]), dy: contiguous([2, 3]) }), /dy has shape \[2,3\], expected \[2,2\]/);
  assert.throws(() => poolBackwardKernel({ ...pool('avg', [2, 4], [1, 2]), dx: { shape: [2, 4], strides: [0, 1], offset: 0 } }), /dx must not broadcast/);
  assert.throws(() => resizeBackwardKernel({ mode: 'cubic' as never, dy: contiguous([2, 4]), dx: contiguous([2, 2]) }), /unknown mode/);
  assert.throws(() => resizeBackwardKernel({ mode: 'linear', dy: contiguous([2, 4, 1]), dx: contiguous([2, 2]) }), /rank 2/);
});

test.run();
