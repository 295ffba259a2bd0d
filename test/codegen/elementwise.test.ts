import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { elementwiseKernel, elementwiseReference, type ElementwiseParams } from '../../src/codegen/kernels/elementwise.ts';
import {
  add, binary, constant, div, evalExpr, input, modulate, mul, sub, unary, where, UNARY_OPS, type Expr,
} from '../../src/codegen/kernels/expr.ts';
import { FUNCTIONS } from '../../src/codegen/kernels/functions.ts';
import { broadcastTo, contiguous, extent, permute, type View } from '../../src/codegen/kernels/view.ts';
import { assertCompilesClean, expectMatches, randomArray, relError } from './ref-check.ts';
import { runKernel } from '../runtime/kernels.ts';

const x = input('x');
const y = input('y');

/** Runs params on random data (or `data`) and checks every output against the float64 evaluator. */
async function check(p: ElementwiseParams, what: string, data: Record<string, Float32Array> = {}) {
  for (const i of p.inputs) data[i.name] ??= randomArray(extent(i.view), -3, 3);
  const refs = elementwiseReference(p, data);
  const args = [...p.inputs.map((i) => data[i.name]), ...p.outputs.map((o) => extent(o.view))];
  return expectMatches(elementwiseKernel(p), args, refs, what);
}

test('the float64 evaluator knows its special functions', () => {
  const at = (e: Expr, v: number) => evalExpr(e, () => v);
  assert.ok(Math.abs(at(unary('gelu', x), 1) - 0.8413447460685429) < 1e-15);
  assert.ok(Math.abs(at(unary('gelu', x), -1) + 0.15865525393145707) < 1e-15);
  assert.ok(Math.abs(at(unary('gelu_tanh', x), 1) - 0.8411919906082768) < 1e-15);
  assert.ok(Math.abs(at(unary('erf', x), 0.5) - 0.5204998778130465) < 1e-15);
  assert.ok(Math.abs(at(unary('silu', x), 2) - 1.7615941559557649) < 1e-15);
  assert.is(at(binary('pow', x, 3), -2), -8);
  assert.ok(Number.isNaN(at(binary('pow', x, 0.5), -2)));
  assert.is(at(modulate(x, constant(0.5), constant(1)), 2), 4);
});

test('every function record: the derivative matches central differences of its float64 value', () => {
  for (const [name, f] of Object.entries(FUNCTIONS)) {
    for (const x of [-2.7, -1.3, -0.4, 0.3, 0.9, 1.7, 3.1]) {
      if ((name === 'log' || name === 'sqrt' || name === 'rsqrt') && x <= 0) continue;
      const h = 1e-5;
      const fd = (f.f64(x + h) - f.f64(x - h)) / (2 * h);
      const d = f.derivative(x, f.f64(x));
      assert.ok(Math.abs(d - fd) < 1e-7 * (1 + Math.abs(fd)), `${name}'(${x}) = ${d}, differences give ${fd}`);
    }
  }
});

gpuTest('every unary op matches float64 over a wide range, in one kernel with one output per op', async () => {
  const shape = [5, 41]; // 205 elements: not a multiple of the workgroup size
  const safe = (op: (typeof UNARY_OPS)[number]): Expr =>
    op === 'log' || op === 'sqrt' || op === 'rsqrt' ? unary(op, add(unary('abs', x), 0.05)) : unary(op, x);
  const ops = [...UNARY_OPS];
  // Kept under the per-stage storage buffer limit: a few outputs per kernel.
  for (let k = 0; k < ops.length; k += 5) {
    const group = ops.slice(k, k + 5);
    await check({
      shape,
      inputs: [{ name: 'x', view: contiguous(shape) }],
      outputs: group.map((op) => ({ name: `o_${op}`, view: contiguous(shape), expr: safe(op) })),
    }, `unary ${group.join(',')}`, { x: randomArray(205, -9, 9) });
  }
});

gpuTest('erf is accurate to well below 1e-6 absolute on a dense grid', async () => {
  const n = 4001;
  const xs = Float32Array.from({ length: n }, (_, i) => -6 + (12 * i) / (n - 1));
  const p: ElementwiseParams = { shape: [n], inputs: [{ name: 'x', view: contiguous([n]) }], outputs: [{ name: 'e', view: contiguous([n]), expr: unary('erf', x) }] };
  const ref = elementwiseReference(p, { x: xs })[0];
  const [gpu] = await expectMatches(elementwiseKernel(p), [xs, n], [ref], 'erf');
  const worst = gpu.reduce((m, g, i) => Math.max(m, Math.abs(g - ref[i])), 0);
  assert.ok(worst < 5e-7, `erf max abs error ${worst}`);
});

gpuTest('tanh, sigmoid, silu and both gelus stay finite and exact in the far tails', async () => {
  const xs = Float32Array.from([-1e30, -1e4, -200, -90, -40, -12, 12, 40, 90, 200, 1e4, 1e30, 0, -0, 1e-30, -1e-6]);
  const n = xs.length;
  const ops = ['tanh', 'sigmoid', 'silu', 'gelu', 'gelu_tanh'] as const;
  const p: ElementwiseParams = {
    shape: [n], inputs: [{ name: 'x', view: contiguous([n]) }],
    outputs: ops.map((op) => ({ name: op, view: contiguous([n]), expr: unary(op, x) })),
  };
  await assertCompilesClean(elementwiseKernel(p));
  const outs = await runKernel(elementwiseKernel(p), [xs, ...ops.map(() => n)]);
  const refs = elementwiseReference(p, { x: xs });
  outs.forEach((o, k) => o.forEach((g, i) => {
    assert.ok(Number.isFinite(g), `${ops[k]}(${xs[i]}) = ${g}`);
    // exact where the reference is representable; |g| below f32's subnormals counts as 0
    const r = refs[k][i];
    assert.ok(Math.abs(g - r) <= 1e-4 * Math.abs(r) + 1e-37, `${ops[k]}(${xs[i]}) = ${g}, expected ${r}`);
  }));
});

gpuTest('binary ops, comparisons and where, with numpy broadcasting', async () => {
  const shape = [3, 5, 7];
  const yView = broadcastTo(contiguous([5, 1]), shape); // y varies along axis 1 only
  const outs: [string, Expr][] = [
    ['sum', add(x, y)], ['diff', sub(x, y)], ['prod', mul(x, y)], ['quot', div(x, add(unary('abs', y), 0.5))],
    ['lo', binary('min', x, y)], ['hi', binary('max', x, y)],
    ['pick', where(binary('gt', x, y), mul(x, 2), sub(y, 1))],
    ['cmp', add(add(binary('lt', x, y), mul(binary('le', x, 0), 2)), add(mul(binary('ge', y, 0), 4), mul(binary('ne', y, 0), 8)))],
  ];
  for (let k = 0; k < outs.length; k += 4) {
    await check({
      shape,
      inputs: [{ name: 'x', view: contiguous(shape) }, { name: 'y', view: yView }],
      outputs: outs.slice(k, k + 4).map(([name, expr]) => ({ name, view: contiguous(shape), expr })),
    }, `binary group ${k}`, { y: Float32Array.from(randomArray(5), (v, i) => (i === 2 ? 0 : v)) }); // y = 0 exactly: ne and ge see both answers
  }
});

gpuTest('eq compares exactly; pow handles integer exponents of negative bases and general exponents', async () => {
  const n = 9;
  const xs = Float32Array.from([-2, -1.5, -0.5, 0, 0.25, 1, 2, 3, 1.5]);
  const ys = Float32Array.from([-2, 1, -0.5, 1, 0.25, 0, 2, 7, 1.5]);
  await check({
    shape: [n], inputs: [{ name: 'x', view: contiguous([n]) }, { name: 'y', view: contiguous([n]) }],
    outputs: [
      { name: 'same', view: contiguous([n]), expr: binary('eq', x, y) },
      { name: 'cube', view: contiguous([n]), expr: binary('pow', x, 3) },
      { name: 'inv2', view: contiguous([n]), expr: binary('pow', add(x, 2.5), -2) },
      { name: 'gen', view: contiguous([n]), expr: binary('pow', add(unary('abs', x), 0.5), add(y, 0.3)) },
    ],
  }, 'eq/pow', { x: xs, y: ys });
});

gpuTest('modulate with per-(batch, channel) scale and shift broadcast over tokens', async () => {
  const [B, N, C] = [2, 13, 6];
  const scaleShift = contiguous([B, 2, C]); // one buffer holding both, as an adaLN projection would
  const scale: View = { shape: [B, 1, C], strides: [2 * C, 0, 1], offset: 0 };
  const shift: View = { shape: [B, 1, C], strides: [2 * C, 0, 1], offset: C };
  assert.is(extent(scaleShift), 2 * 2 * C);
  const data = { x: randomArray(B * N * C), ss: randomArray(2 * 2 * C) };
  await check({
    shape: [B, N, C],
    inputs: [{ name: 'x', view: contiguous([B, N, C]) }, { name: 'scale', view: scale }, { name: 'shift', view: shift }],
    outputs: [{ name: 'y', view: contiguous([B, N, C]), expr: modulate(x, input('scale'), input('shift')) }],
  }, 'modulate', { x: data.x, scale: data.ss, shift: data.ss });
});

gpuTest('permuted input, strided output with an offset, and shared subexpressions computed once', async () => {
  const shape = [4, 3, 11];
  const xv = permute(contiguous([11, 4, 3]), [1, 2, 0]); // logical [4, 3, 11] over a [11, 4, 3] buffer
  const outView: View = { shape, strides: [1, 4, 12], offset: 5 }; // written transposed, after 5 spare slots
  const shared = unary('exp', mul(x, y));
  const p: ElementwiseParams = {
    shape, inputs: [{ name: 'x', view: xv }, { name: 'y', view: contiguous(shape) }],
    outputs: [
      { name: 'a', view: outView, expr: add(shared, 1) },
      { name: 'b', view: contiguous(shape), expr: mul(unary('exp', mul(x, y)), shared) },
    ],
  };
  assert.is(elementwiseKernel(p).wgsl.split('exp(').length - 1, 1, 'exp(x*y) is emitted once');
  const [a] = await check(p, 'permuted/strided');
  assert.ok(a.slice(0, 5).every(Number.isNaN), 'elements before the output offset are left alone');
});

gpuTest('reversed axes: negative strides read and write backwards from an offset at the far end', async () => {
  const shape = [3, 5, 4];
  const xv: View = { shape, strides: [20, -4, 1], offset: 16 }; // axis 1 reversed
  const outView: View = { shape, strides: [-20, 4, -1], offset: 43 }; // axes 0 and 2 reversed
  const p: ElementwiseParams = { shape, inputs: [{ name: 'x', view: xv }], outputs: [{ name: 'y', view: outView, expr: x }] };
  const data = { x: randomArray(60) };
  const [out] = await check(p, 'reversed', data);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 5; j++) for (let k = 0; k < 4; k++) {
    assert.is(out[43 - 20 * i + 4 * j - k], data.x[16 + 20 * i - 4 * j + k]);
  }
  assert.throws(() => elementwiseKernel({ ...p, inputs: [{ name: 'x', view: { ...xv, offset: 15 } }] }), /below element 0/);
});

gpuTest('more workgroups than one grid dimension holds', async () => {
  const n = 70_001;
  const p: ElementwiseParams = {
    shape: [n], inputs: [{ name: 'x', view: contiguous([n]) }],
    outputs: [{ name: 'y', view: contiguous([n]), expr: sub(mul(x, x), 1) }], workgroupSize: 1,
  };
  assert.ok(elementwiseKernel(p).dispatch[1] > 1);
  await check(p, 'large grid');
});

test('malformed expressions and views fail with clear messages', () => {
  const base = { shape: [4], inputs: [{ name: 'x', view: contiguous([4]) }] };
  const bad = (p: ElementwiseParams, msg: RegExp) => assert.throws(() => elementwiseKernel(p), msg);
  bad({ ...base, outputs: [{ name: 'y', view: contiguous([4]), expr: input('z') }] }, /unknown input 'z'/);
  bad({ ...base, outputs: [{ name: 'y', view: contiguous([4]), expr: { op: 'cosh', a: x } as unknown as Expr }] }, /unknown operation 'cosh'/);
  bad({ ...base, outputs: [{ name: 'y', view: contiguous([4]), expr: constant(NaN) }] }, /finite/);
  bad({ ...base, outputs: [{ name: 'y', view: contiguous([4]), expr: constant(1) }] }, /input 'x' is not used/);
  bad({ ...base, outputs: [{ name: 'y', view: contiguous([3]), expr: x }] }, /axis 0 has size 3/);
  bad({ ...base, outputs: [{ name: 'x', view: contiguous([4]), expr: x }] }, /used twice/);
  bad({ ...base, outputs: [{ name: 'my-out', view: contiguous([4]), expr: x }] }, /letters, digits/);
  assert.throws(() => broadcastTo(contiguous([3]), [2, 4]), /cannot broadcast/);
  // the comparison itself: a poisoned (NaN) element or a wrong value must not pass
  assert.is(relError([NaN, 2], [1, 2]), Infinity);
  assert.ok(relError([1, 2], [1, 2.01]) > 1e-3);
  // a sum that cancels to ~0 is judged against its magnitude (sum |term|), and only where that is larger
  assert.ok(relError([1, 2e-4], [1, 1e-4]) > 1e-3);
  assert.ok(relError([1, 2e-4], [1, 1e-4], [1, 10]) < 1e-3);
  assert.ok(relError([1, 0.2], [1, 0.1], [1, 10]) > 1e-3);
  assert.is(relError([1, 2e-4], [1, 1e-4], [1, 1e-6]), relError([1, 2e-4], [1, 1e-4]));
});

test.run();
