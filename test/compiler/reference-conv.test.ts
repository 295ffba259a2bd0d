// Float64 references of conv, pool, upsample, patchify and unpatchify: hand-worked values, direct
// loops, agreement with the kernel library's references (src/codegen) and independence of layout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convReference } from '../../src/codegen/kernels/conv.ts';
import { poolReference, resizeReference } from '../../src/codegen/kernels/resample.ts';
import { contiguous, permute, type View } from '../../src/codegen/kernels/view.ts';
import { evaluate, fansOf, gaussian, initParams, prng } from '../../src/compiler/reference/evaluate.ts';
import type { AxisPair, Graph, GraphNode } from '../../src/compiler/ir/graph.ts';
import { numelOf, relayout, stridesOf, tensor, type NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import type { Json } from '../../src/compiler/ir/json.ts';
import { graphOf, model, nodeAt } from './helpers.ts';

const SLOT: Record<string, number> = { t: 0, h: 1, w: 2 };

const randomData = (n: number, seed: number) => Float64Array.from({ length: n }, gaussian(prng(seed)));
const randomTensor = (axes: readonly AxisPair[], seed: number) => tensor(axes, randomData(numelOf(axes), seed));
const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);

/** A fixed shuffle of the axes (reversed, then the first two swapped): never the identity for rank >= 2. */
function shuffled(axes: readonly AxisPair[]): AxisPair[] {
  const r = [...axes].reverse();
  if (r.length > 2) [r[0], r[1]] = [r[1], r[0]];
  return r;
}

/** Value of `t` at an index given by axis name, whatever the layout. */
function at(t: NamedTensor, idx: Record<string, number>): number {
  let flat = 0;
  for (const [name, size] of t.axes) flat = flat * size + idx[name];
  return t.data[flat];
}

const inputOf = (g: Graph, n: GraphNode) => g.nodes[n.inputs[0]];

/** The node's reference on `x` (laid out as given), relayouted to the node's axes. */
function run(n: GraphNode, x: NamedTensor, params: ReadonlyMap<string, Float64Array> = new Map()): NamedTensor {
  const y = PRIMITIVES.get(n.op)!.reference!({ inputs: [x], params, attrs: n.attrs, axes: n.axes });
  return relayout(y, n.axes);
}

/** Random values for the node's parameters, by leaf name (the bias too, so that it counts). */
function randomParams(n: GraphNode, seed: number): Map<string, Float64Array> {
  return new Map(n.params.map((p, i) => [p.path.slice(n.path.length + 1),
    randomData(p.shape.reduce((a, b) => a * b, 1), seed + i)]));
}

/** |actual - expected| <= 1e-12 (|expected| + magnitude), magnitude: sum |term| where given. */
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, magnitude?: ArrayLike<number>) {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-12 * (Math.abs(expected[i]) + (magnitude?.[i] ?? 0)) + 1e-300;
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}: element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

// ---------------------------------------------------------------- conv

test('conv hand-worked: cross-correlation (no flip), zero "same" padding, bias', () => {
  const g = graphOf(model('  output o = conv(x, over: (h, w), kernel: 3)', '', 'b = 1, c = 1, t = 1, h = 3, w = 3'));
  const n = nodeAt(g, 'conv');
  const x = tensor(inputOf(g, n).axes, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const ones = run(n, x, new Map([['weight', new Float64Array(9).fill(1)], ['bias', new Float64Array([0])]]));
  assert.equal(Array.from(ones.data), [12, 21, 16, 27, 45, 33, 24, 39, 28]);
  // Only the tap (kh=0, kw=2): y[i, j] = x[i - 1, j + 1] (a flipped kernel would read x[i + 1, j - 1]).
  const w = new Float64Array(9);
  w[2] = 1;
  const shifted = run(n, x, new Map([['weight', w], ['bias', new Float64Array([0.5])]]));
  assert.equal(Array.from(shifted.data), [0.5, 0.5, 0.5, 2.5, 3.5, 0.5, 5.5, 6.5, 0.5]);
});

test('conv matches a direct loop: groups, stride, dilation, explicit padding, h != w', () => {
  const g = graphOf(model(
    '  output o = conv(x, over: (h, w), kernel: (h: 3, w: 2), out: 6, stride: (h: 2, w: 1), padding: (h: 1, w: 2), dilation: (h: 2, w: 1), groups: 2)',
    '', 'b = 2, c = 4, t = 2, h = 7, w = 5'));
  const n = nodeAt(g, 'conv');
  const x = randomTensor(inputOf(g, n).axes, 11);
  const params = randomParams(n, 12);
  const y = run(n, x, params);
  assert.equal(n.axes, [['b', 2], ['c', 6], ['t', 2], ['h', 3], ['w', 8]]);
  const W = params.get('weight')!, bias = params.get('bias')!;
  for (let b = 0; b < 2; b++) for (let co = 0; co < 6; co++) for (let t = 0; t < 2; t++) {
    for (let i = 0; i < 3; i++) for (let j = 0; j < 8; j++) {
      let want = bias[co];
      const grp = Math.floor(co / 3);
      for (let ci = 0; ci < 2; ci++) for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 2; kw++) {
        const hi = i * 2 + kh * 2 - 1, wi = j + kw - 2;
        if (hi < 0 || hi >= 7 || wi < 0 || wi >= 5) continue;
        want += W[((co * 2 + ci) * 3 + kh) * 2 + kw] * at(x, { b, c: grp * 2 + ci, t, h: hi, w: wi });
      }
      const got = at(y, { b, c: co, t, h: i, w: j });
      assert.ok(Math.abs(got - want) <= 1e-12 * (1 + Math.abs(want)), `(${b}, ${co}, ${t}, ${i}, ${j}): ${got} vs ${want}`);
    }
  }
});

/** convReference on the graph node: x given in a shuffled layout (a strided view), weight's over axes onto (t, h, w). */
function convViaKernel(n: GraphNode, x: NamedTensor, params: ReadonlyMap<string, Float64Array>, abs = false) {
  const over = n.attrs.over as string[];
  const per = (key: string, absent: number) => [0, 1, 2].map((s) => {
    const ax = over.find((a) => SLOT[a] === s);
    return ax === undefined ? absent : Number((n.attrs[key] as Record<string, Json>)[ax]);
  });
  // Batch axes outermost (so that they flatten into one stride), c and the over axes shuffled.
  const batch = x.axes.filter(([a]) => a !== 'c' && !over.includes(a));
  const layout = [...batch, ...shuffled(x.axes.filter(([a]) => a === 'c' || over.includes(a)))];
  const xs = relayout(x, layout);
  const st = stridesOf(layout);
  const strideOf = (a: string) => st[layout.findIndex(([m]) => m === a)];
  const sizeOf = (axes: readonly AxisPair[], a: string) => axes.find(([m]) => m === a)?.[1] ?? 1;
  const B = numelOf(batch);
  const slotAxis = (s: number) => over.find((a) => SLOT[a] === s);
  const xView: View = {
    shape: [B, sizeOf(x.axes, 'c'), ...[0, 1, 2].map((s) => sizeOf(x.axes, slotAxis(s) ?? '-'))],
    strides: [batch.length ? st[batch.length - 1] : 0, strideOf('c'), ...[0, 1, 2].map((s) => (slotAxis(s) ? strideOf(slotAxis(s)!) : 0))],
    offset: 0,
  };
  const wShape = n.params[0].shape;
  const ws = stridesOf(wShape.map((s): AxisPair => ['', s]));
  const wView: View = {
    shape: [wShape[0], wShape[1], ...[0, 1, 2].map((s) => (slotAxis(s) ? wShape[2 + over.indexOf(slotAxis(s)!)] : 1))],
    strides: [ws[0], ws[1], ...[0, 1, 2].map((s) => (slotAxis(s) ? ws[2 + over.indexOf(slotAxis(s)!)] : 0))],
    offset: 0,
  };
  const outShape = [B, Number(n.attrs.out), ...[0, 1, 2].map((s) => sizeOf(n.axes, slotAxis(s) ?? '-'))];
  const f = (a: Float64Array) => (abs ? Float64Array.from(a, Math.abs) : a);
  const bias = params.get('bias');
  const out = convReference({
    x: xView, weight: wView, out: contiguous(outShape), bias: bias && contiguous([bias.length]),
    stride: per('stride', 1), dilation: per('dilation', 1), padding: per('padding', 0), groups: Number(n.attrs.groups),
  }, { x: f(xs.data), weight: f(params.get('weight')!), bias: bias && f(bias) });
  // out is contiguous over [batch..., c, over axes by slot]: size-1 slots do not change the strides.
  const outAxes: AxisPair[] = [...batch, ['c', Number(n.attrs.out)], ...[0, 1, 2].flatMap((s): AxisPair[] => {
    const a = slotAxis(s);
    return a ? [[a, sizeOf(n.axes, a)]] : [];
  })];
  return relayout({ axes: outAxes, data: out }, n.axes).data;
}

const CONV_CASES: [string, string][] = [
  ['2D 3x3 "same", out 6, h != w', 'conv(x, over: (h, w), kernel: 3, out: 6)'],
  ['2D stride 2 "same"', 'conv(x, over: (h, w), kernel: 3, stride: 2)'],
  ['depthwise temporal', 'conv(x, over: t, kernel: 3, groups: 4)'],
  ['3D, per-axis kernel, stride, dilation, padding, groups',
    'conv(x, over: (t, h, w), kernel: (t: 3, h: 1, w: 3), out: 6, stride: (t: 2, h: 1, w: 2), dilation: (t: 1, h: 1, w: 2), padding: (t: 1, h: 0, w: 2), groups: 2)'],
  ['over (w, h): weight [out, c, kw, kh], no bias', 'conv(x, over: (w, h), kernel: (w: 3, h: 2), stride: (w: 2, h: 1), padding: "valid", bias: false)'],
  ['over (h, t): a 2D conv with t', 'conv(x, over: (h, t), kernel: (h: 3, t: 2), padding: (h: 1, t: 1), out: 2)'],
];

test('conv agrees with the kernel library\'s convReference on random data, in any input layout', () => {
  CONV_CASES.forEach(([what, call], k) => {
    const g = graphOf(model(`  output o = ${call}`, '', 'b = 2, c = 4, t = 5, h = 6, w = 9'));
    const n = nodeAt(g, 'conv');
    const x = randomTensor(inputOf(g, n).axes, 100 + k);
    const params = randomParams(n, 200 + k);
    const y = run(n, x, params);
    const magnitude = convViaKernel(n, x, params, true);
    close(y.data, convViaKernel(n, x, params), `${what}: vs convReference`, magnitude);
    close(run(n, relayout(x, shuffled(x.axes)), params).data, y.data, `${what}: shuffled input`, magnitude);
  });
});

test('conv fans are PyTorch\'s: fan_in = c/groups * prod(k), fan_out = out * prod(k); init draws within 1/sqrt(fan_in)', () => {
  assert.equal(fansOf('conv', 'weight', [16, 4, 3, 3]), [36, 144]);
  assert.equal(fansOf('conv', 'weight', [8, 2, 3, 1, 5]), [30, 120]);
  const g = graphOf(model('  output o = conv(x, over: (h, w), kernel: 3, out: 16)'));
  const w = initParams(g, 5).get('conv.weight')!; // [16, 8, 3, 3]: fan_in 72
  const largest = Math.max(...abs(w));
  assert.ok(largest <= 1 / Math.sqrt(72) && largest > 0.9 / Math.sqrt(72), `max |w| = ${largest}`);
});

// ---------------------------------------------------------------- pool

test('pool hand-worked: 2x2 avg and max windows', () => {
  for (const [mode, want] of [['avg', [3.5, 5.5]], ['max', [6, 8]]] as const) {
    const g = graphOf(model(`  output o = pool(x, kernel: (h: 2, w: 2), mode: "${mode}")`, '', 'b = 1, c = 1, t = 1, h = 2, w = 4'));
    const n = nodeAt(g, 'pool');
    assert.equal(Array.from(run(n, tensor(inputOf(g, n).axes, [1, 2, 3, 4, 5, 6, 7, 8])).data), want);
  }
});

test('pool matches a direct loop and poolReference on random data, in any layout (h != w)', () => {
  for (const mode of ['avg', 'max']) {
    for (const [kernel, kt, kh, kw] of [['(t: 2, h: 3, w: 3)', 2, 3, 3], ['(w: 9)', 1, 1, 9], ['2', 2, 2, 2]] as const) {
      const what = `${mode} ${kernel}`;
      const dims = kernel === '2' ? 'b = 2, c = 3, t = 4, h = 6, w = 8' : 'b = 2, c = 3, t = 4, h = 6, w = 9';
      const g = graphOf(model(`  output o = pool(x, kernel: ${kernel}, mode: "${mode}")`, '', dims));
      const n = nodeAt(g, 'pool');
      const x = randomTensor(inputOf(g, n).axes, 300);
      const y = run(n, x);
      const [, , T, H, W] = n.axes.map(([, s]) => s);
      for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
        let acc = mode === 'max' ? -Infinity : 0;
        for (let i = 0; i < kt; i++) for (let j = 0; j < kh; j++) for (let l = 0; l < kw; l++) {
          const v = at(x, { b, c, t: t * kt + i, h: h * kh + j, w: w * kw + l });
          acc = mode === 'max' ? Math.max(acc, v) : acc + v;
        }
        const want = mode === 'max' ? acc : acc / (kt * kh * kw);
        const got = at(y, { b, c, t, h, w });
        assert.ok(Math.abs(got - want) <= 1e-12 * (1 + Math.abs(want)), `${what}: ${got} vs ${want}`);
      }
      // The kernel gets x in a shuffled layout through a permuted view, its factors in x's axis order.
      const layout = shuffled(x.axes);
      const perm = x.axes.map(([a]) => layout.findIndex(([m]) => m === a));
      const factors = x.axes.map(([a]) => Number((n.attrs.kernel as Record<string, Json>)[a] ?? 1));
      const p = { op: mode as 'avg' | 'max', x: permute(contiguous(layout.map(([, s]) => s)), perm), factors, y: contiguous(n.axes.map(([, s]) => s)) };
      const xs = relayout(x, layout);
      close(y.data, poolReference(p, xs.data), `${what}: vs poolReference`, poolReference(p, abs(xs.data)));
      close(run(n, xs).data, y.data, `${what}: shuffled input`);
    }
  }
});

// ---------------------------------------------------------------- upsample

test('upsample hand-worked: nearest repeats, linear is align_corners=false', () => {
  let g = graphOf(model('  output o = upsample(x, factor: (w: 2))', '', 'b = 1, c = 1, t = 1, h = 2, w = 3'));
  let n = nodeAt(g, 'upsample');
  assert.equal(Array.from(run(n, tensor(inputOf(g, n).axes, [1, 2, 3, 4, 5, 6])).data), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
  g = graphOf(model('  output o = upsample(x, factor: (w: 2), mode: "linear")', '', 'b = 1, c = 1, t = 1, h = 1, w = 2'));
  n = nodeAt(g, 'upsample');
  // sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last element)
  assert.equal(Array.from(run(n, tensor(inputOf(g, n).axes, [1, 3])).data), [1, 1.5, 2.5, 3]);
  g = graphOf(model('  output o = upsample(x, factor: (h: 2, w: 2), mode: "linear")', '', 'b = 1, c = 1, t = 1, h = 2, w = 2'));
  n = nodeAt(g, 'upsample');
  // Bilinear: row weights (1, 0), (0.75, 0.25), ... times column weights; corner (1, 1) = 0.75^2 x00 + ...
  const y = run(n, tensor(inputOf(g, n).axes, [0, 4, 8, 16]));
  assert.is(at(y, { b: 0, c: 0, t: 0, h: 1, w: 1 }), 0.5625 * 0 + 0.1875 * 4 + 0.1875 * 8 + 0.0625 * 16);
  assert.is(at(y, { b: 0, c: 0, t: 0, h: 3, w: 0 }), 8);
});

test('upsample matches a direct loop (nearest) and resizeReference (nearest, linear, like:) in any layout', () => {
  const cases: [string, string][] = [
    ['nearest (t: 2, h: 3, w: 2)', 'upsample(x, factor: (t: 2, h: 3, w: 2))'],
    ['linear (t: 2, h: 3, w: 2)', 'upsample(x, factor: (t: 2, h: 3, w: 2), mode: "linear")'],
    ['nearest bare 2', 'upsample(x, factor: 2)'],
    ['linear like: y', 'upsample(x, like: y, mode: "linear")'],
    ['linear (w: 4)', 'upsample(x, factor: (w: 4), mode: "linear")'],
  ];
  cases.forEach(([what, call], k) => {
    const g = graphOf(model(`  input y : video[b, c, t=6, h=9, w=10]\n  output o = ${call}`, '', 'b = 2, c = 3, t = 3, h = 3, w = 5'));
    const n = nodeAt(g, 'upsample');
    const x = randomTensor(inputOf(g, n).axes, 400 + k);
    const y = run(n, x);
    const [, , T, H, W] = n.axes.map(([, s]) => s);
    if (n.attrs.mode === 'nearest') {
      const [ft, fh, fw] = [T / 3, H / 3, W / 5];
      for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) {
        assert.is(at(y, { b, c, t, h, w }), at(x, { b, c, t: Math.floor(t / ft), h: Math.floor(h / fh), w: Math.floor(w / fw) }), what);
      }
    }
    const layout = shuffled(x.axes);
    const perm = x.axes.map(([a]) => layout.findIndex(([m]) => m === a));
    const p = { mode: n.attrs.mode as 'nearest' | 'linear', x: permute(contiguous(layout.map(([, s]) => s)), perm), y: contiguous(n.axes.map(([, s]) => s)) };
    const xs = relayout(x, layout);
    close(y.data, resizeReference(p, xs.data), `${what}: vs resizeReference`, resizeReference(p, abs(xs.data)));
    close(run(n, xs).data, y.data, `${what}: shuffled input`);
  });
});

// ---------------------------------------------------------------- patchify, unpatchify

test('patchify hand-worked: channel ((dh * pw) + dw) * C + c, patch offsets outer, c inner, whatever the patch order', () => {
  for (const patch of ['(h: 2, w: 2)', '(w: 2, h: 2)']) {
    const g = graphOf(model(`  output o = patchify(x, patch: ${patch})`, '', 'b = 1, c = 2, t = 1, h = 2, w = 4'));
    const n = nodeAt(g, 'patchify');
    const xAxes = inputOf(g, n).axes;
    const x = tensor(xAxes, Array.from({ length: 16 }, (_, i) => 100 * Math.floor(i / 8) + 10 * Math.floor((i % 8) / 4) + (i % 4)));
    const y = run(n, relayout(x, shuffled(xAxes)));
    assert.equal(n.axes, [['b', 1], ['c', 8], ['t', 1], ['h', 1], ['w', 2]]);
    // x[c, h, w] = 100c + 10h + w; output (c', w') holds x[c, dh, 2w' + dw] with c' = (dh * 2 + dw) * 2 + c.
    const col = (j: number) => Array.from({ length: 8 }, (_, k) => at(y, { b: 0, c: k, t: 0, h: 0, w: j }));
    assert.equal(col(0), [0, 100, 1, 101, 10, 110, 11, 111], patch);
    assert.equal(col(1), [2, 102, 3, 103, 12, 112, 13, 113], patch);
    // unpatchify puts every value back.
    const back = PRIMITIVES.get('unpatchify')!.reference!({ inputs: [y], params: new Map(), attrs: n.attrs, axes: xAxes });
    assert.equal(Array.from(relayout(back, xAxes).data), Array.from(x.data));
  }
});

test('patchify: a patch axis other than t, h, w comes after them, in the order of the patch attribute', () => {
  const xAxes: AxisPair[] = [['b', 1], ['f', 2], ['c', 1], ['h', 2]];
  const x = tensor(xAxes, [0, 1, 10, 11]); // x[f, h] = 10f + h
  const outAxes: AxisPair[] = [['b', 1], ['f', 1], ['c', 4], ['h', 1]];
  const y = PRIMITIVES.get('patchify')!.reference!({ inputs: [x], params: new Map(), attrs: { patch: { f: 2, h: 2 } }, axes: outAxes });
  // channel dh * 2 + df
  assert.equal(Array.from(relayout(y, outAxes).data), [0, 10, 1, 11]);
});

test('unpatchify(patchify(x)) == x and patchify(unpatchify(y)) == y on random data, in any layout', () => {
  const patch = '(t: 2, h: 3, w: 4)';
  let g = graphOf(model(`  output o = unpatchify(patchify(x, patch: ${patch}), patch: ${patch})`, '', 'b = 2, c = 3, t = 4, h = 6, w = 8'));
  const x = randomTensor(g.inputs[0].axes, 500);
  for (const input of [x, relayout(x, shuffled(x.axes))]) {
    const out = evaluate(g, new Map([['x', input]]), new Map()).outputs.get('o')!;
    assert.equal(Array.from(relayout(out, x.axes).data), Array.from(x.data));
  }
  const p = evaluate(g, new Map([['x', x]]), new Map()).values[nodeAt(g, 'patchify').id];
  assert.not.equal(Array.from(p.data), Array.from(x.data), 'patchify moves values');
  g = graphOf(model(`  output o = patchify(unpatchify(x, patch: ${patch}), patch: ${patch})`, '', 'b = 2, c = 72, t = 2, h = 2, w = 2'));
  const y = randomTensor(g.inputs[0].axes, 501);
  for (const input of [y, relayout(y, shuffled(y.axes))]) {
    const out = evaluate(g, new Map([['x', input]]), new Map()).outputs.get('o')!;
    assert.equal(Array.from(relayout(out, y.axes).data), Array.from(y.data));
  }
});

test('patchify then linear equals conv with kernel = stride = patch, weight[o, c, kt, kh, kw] at row ((kt ph + kh) pw + kw) C + c', () => {
  const patch = '(t: 2, h: 2, w: 4)';
  const g = graphOf(model([
    `  output a = linear(patchify(x, patch: ${patch}), 5)`,
    `  output q = conv(x, over: (t, h, w), kernel: ${patch}, stride: ${patch}, padding: "valid", out: 5)`,
  ].join('\n'), '', 'b = 2, c = 3, t = 4, h = 4, w = 8'));
  const params = initParams(g, 9);
  const conv = params.get('conv.weight')!; // [5, 3, 2, 2, 4]
  const convBias = randomData(5, 10);
  params.set('conv.bias', convBias);
  params.set('linear.bias', convBias);
  const arranged = (channelOf: (kt: number, kh: number, kw: number, c: number) => number) => {
    const lin = new Float64Array(48 * 5); // [in = 3 * 16, out = 5]
    for (let o = 0; o < 5; o++) for (let c = 0; c < 3; c++) for (let kt = 0; kt < 2; kt++) for (let kh = 0; kh < 2; kh++) for (let kw = 0; kw < 4; kw++) {
      lin[channelOf(kt, kh, kw, c) * 5 + o] = conv[(((o * 3 + c) * 2 + kt) * 2 + kh) * 4 + kw];
    }
    return lin;
  };
  const x = randomTensor(g.inputs[0].axes, 600);
  const outputs = () => evaluate(g, new Map([['x', relayout(x, shuffled(x.axes))]]), params).outputs;
  params.set('linear.weight', arranged((kt, kh, kw, c) => ((kt * 2 + kh) * 4 + kw) * 3 + c));
  let out = outputs();
  assert.equal(out.get('a')!.axes, out.get('q')!.axes);
  const magnitude = (() => {
    const m = new Map(params);
    for (const [k, v] of m) m.set(k, abs(v));
    return evaluate(g, new Map([['x', tensor(x.axes, abs(x.data))]]), m).outputs.get('q')!.data;
  })();
  close(out.get('a')!.data, out.get('q')!.data, 'patchify + linear vs conv', magnitude);
  // The torchvision-style order (c outermost) is a different layer: the comparison has teeth.
  params.set('linear.weight', arranged((kt, kh, kw, c) => ((c * 2 + kt) * 2 + kh) * 4 + kw));
  out = outputs();
  assert.ok(out.get('a')!.data.some((v, i) => Math.abs(v - out.get('q')!.data[i]) > 1e-3));
});

test.run();
