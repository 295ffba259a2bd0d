// conv_transpose: the shape rule (PyTorch's output size), the float64 reference against a direct
// scatter loop written from PyTorch's definition, the backward against finite differences, and errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluate, exampleInputs, liveParams } from '../../src/compiler/reference/evaluate.ts';
import { relayout } from '../../src/compiler/ir/named-tensor.ts';
import { expectGradients } from './grad-check.ts';
import { axesOf, check, codes, graphOf, model, nodeAt } from './helpers.ts';

const DIMS = 'b = 2, c = 4, t = 3, h = 3, w = 4';

test('shape: (n - 1) s - 2 p + d (k - 1) + output_padding + 1 per axis; weight [c, out / groups, k...]', () => {
  const g = graphOf(model([
    '  y = conv_transpose(x, over: (h, w), kernel: (h: 4, w: 3), stride: (h: 2, w: 3), padding: (h: 1), output_padding: (w: 2), out: 6, groups: 2)',
    '  output o = conv_transpose(y, over: t, kernel: 3, dilation: 2, bias: false)',
  ].join('\n'), '', DIMS));
  const n = nodeAt(g, 'conv_transpose');
  assert.is(axesOf(n), 'b=2,c=6,t=3,h=6,w=14');
  assert.equal(n.params.map((p) => [p.path, p.shape]), [['conv_transpose.weight', [4, 3, 4, 3]], ['conv_transpose.bias', [6]]]);
  assert.is(axesOf(nodeAt(g, 'conv_transpose_1')), 'b=2,c=6,t=7,h=6,w=14');
  assert.is(n.macs, 2 * 4 * 3 * 3 * 4 * 3 * 4 * 3);
});

/** PyTorch's ConvTranspose over (h, w): y[b, g*og + j, i*s - p + k*d] += x[b, ci, i] W[ci, j, k], + bias. */
function direct(x: Float64Array, W: Float64Array, bias: Float64Array | undefined, o: {
  B: number; C: number; O: number; groups: number; T: number; H: number; Wd: number; K: [number, number];
  S: [number, number]; P: [number, number]; D: [number, number]; Ho: number; Wo: number;
}): Float64Array {
  const y = new Float64Array(o.B * o.O * o.T * o.Ho * o.Wo);
  const cg = o.C / o.groups, og = o.O / o.groups;
  for (let b = 0; b < o.B; b++) for (let ci = 0; ci < o.C; ci++) for (let t = 0; t < o.T; t++) for (let ih = 0; ih < o.H; ih++) for (let iw = 0; iw < o.Wd; iw++) {
    const v = x[(((b * o.C + ci) * o.T + t) * o.H + ih) * o.Wd + iw];
    const g = Math.floor(ci / cg);
    for (let j = 0; j < og; j++) for (let kh = 0; kh < o.K[0]; kh++) for (let kw = 0; kw < o.K[1]; kw++) {
      const yh = ih * o.S[0] - o.P[0] + kh * o.D[0], yw = iw * o.S[1] - o.P[1] + kw * o.D[1];
      if (yh < 0 || yh >= o.Ho || yw < 0 || yw >= o.Wo) continue;
      y[(((b * o.O + g * og + j) * o.T + t) * o.Ho + yh) * o.Wo + yw] += v * W[((ci * og + j) * o.K[0] + kh) * o.K[1] + kw];
    }
  }
  if (bias) for (let i = 0; i < y.length; i++) y[i] += bias[Math.floor(i / (o.T * o.Ho * o.Wo)) % o.O];
  return y;
}

test('float64 against the direct scatter: stride, padding, output padding, dilation, groups', () => {
  const cases = [
    { args: 'kernel: 4, stride: 2, padding: 1, out: 6, groups: 2', K: [4, 4], S: [2, 2], P: [1, 1], D: [1, 1], O: 6, groups: 2, bias: true },
    { args: 'kernel: (h: 3, w: 2), stride: (h: 3, w: 1), padding: (w: 1), output_padding: (h: 2), dilation: (w: 2), out: 3, bias: false', K: [3, 2], S: [3, 1], P: [0, 1], D: [1, 2], O: 3, groups: 1, bias: false },
    { args: 'kernel: 3, padding: 1', K: [3, 3], S: [1, 1], P: [1, 1], D: [1, 1], O: 4, groups: 1, bias: true },
  ] as const;
  for (const cse of cases) {
    const g = graphOf(model(`  output o = conv_transpose(x, over: (h, w), ${cse.args})`, '', DIMS));
    const inputs = exampleInputs(g, 11);
    const params = liveParams(g, 11);
    const y = evaluate(g, inputs, params).outputs.get('o')!;
    const n = nodeAt(g, 'conv_transpose');
    const size = (a: string) => n.axes.find(([m]) => m === a)![1];
    const x = relayout(inputs.get('x')!, [['b', 2], ['c', 4], ['t', 3], ['h', 3], ['w', 4]]).data;
    const want = direct(x, params.get('conv_transpose.weight')!, cse.bias ? params.get('conv_transpose.bias')! : undefined, {
      B: 2, C: 4, O: cse.O, groups: cse.groups, T: 3, H: 3, Wd: 4, K: [...cse.K], S: [...cse.S], P: [...cse.P], D: [...cse.D], Ho: size('h'), Wo: size('w'),
    });
    const got = relayout(y, [['b', 2], ['c', cse.O], ['t', 3], ['h', size('h')], ['w', size('w')]]).data;
    assert.ok(want.some((v) => Math.abs(v) > 0.1), 'non-trivial');
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[i]));
    assert.ok(worst < 1e-12, `${cse.args}: worst ${worst}`);
  }
});

test('the adjoint of conv with the same settings and weight: <conv_transpose(x), y> = <x, conv(y)>', () => {
  const g = graphOf(model([
    '  input y : video[b, c=6, t, h=6, w=12]',
    '  output a = conv_transpose(x, over: (h, w), kernel: (h: 4, w: 3), stride: (h: 2, w: 3), padding: (h: 1, w: 1), output_padding: (w: 2), out: 6, groups: 2, bias: false) as up',
    '  output r = conv(y, over: (h, w), kernel: (h: 4, w: 3), stride: (h: 2, w: 3), padding: (h: 1, w: 1), out: 4, groups: 2, bias: false) as down',
  ].join('\n'), '', DIMS));
  const inputs = exampleInputs(g, 4);
  const params = liveParams(g, 4);
  params.set('down.weight', params.get('up.weight')!);
  const ev = evaluate(g, inputs, params).outputs;
  const dot = (p: { axes: readonly (readonly [string, number])[]; data: Float64Array }, q: { axes: readonly (readonly [string, number])[]; data: Float64Array }) => {
    const r = relayout(q, p.axes).data;
    return p.data.reduce((acc, v, i) => acc + v * r[i], 0);
  };
  const lhs = dot(ev.get('a')!, inputs.get('y')!);
  const rhs = dot(inputs.get('x')!, ev.get('r')!);
  assert.ok(Math.abs(lhs) > 1, `non-trivial: ${lhs}`);
  assert.ok(Math.abs(lhs - rhs) < 1e-9 * Math.abs(lhs), `${lhs} vs ${rhs}`);
});

test('backward against finite differences: strided with groups, output padding and dilation, 3 axes', () => {
  expectGradients(graphOf(model([
    '  y = conv_transpose(x, over: (h, w), kernel: 3, stride: 2, padding: 1, output_padding: 1, out: 6, groups: 2)',
    '  z = conv_transpose(tanh(y), over: t, kernel: 2, dilation: 2, bias: false)',
    '  output o = conv_transpose(z, over: (t, h, w), kernel: (t: 1, h: 2, w: 2), stride: (h: 2, w: 2), out: 2)',
  ].join('\n'), '', 'b = 1, c = 4, t = 2, h = 2, w = 3')), 'conv_transpose', 1e-6, { samples: 30 });
});

test('errors: output_padding not below the stride, padding that leaves nothing, groups, over c', () => {
  const codesOf = (args: string) => codes(check(model(`  output o = conv_transpose(x, over: (h, w), ${args})`, '', DIMS)));
  assert.equal(codesOf('kernel: 3, stride: 2, output_padding: 2'), ['VDM034']);
  assert.equal(codesOf('kernel: 1, padding: 2'), ['VDM034']);
  assert.equal(codesOf('kernel: 2, out: 6, groups: 4'), ['VDM030']);
  assert.equal(codesOf('kernel: 0'), ['VDM034']);
  assert.equal(codes(check(model('  output o = conv_transpose(x, over: (c, h), kernel: 2)', '', DIMS))), ['VDM017']);
});

test.run();
