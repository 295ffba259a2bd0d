// patchify / unpatchify `order:`: which patch axis is outermost in the channel. std/swin.vdm's
// patch_merging uses order (w, h), Video Swin's PatchMerging (x0..x3 = (h, w) offsets (0, 0),
// (1, 0), (0, 1), (1, 1) concatenated along C). Reference against that concatenation written out,
// unpatchify as its inverse, gradients against finite differences, and the attributes (none where
// the order is the default, so other specs lower as before).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gaussian, prng } from '../../src/compiler/reference/evaluate.ts';
import type { AxisPair } from '../../src/compiler/ir/graph.ts';
import { numelOf, stridesOf, type NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import { expectGradients } from './grad-check.ts';
import { check, codes, graphOf, model, nodeAt } from './helpers.ts';

const patchify = PRIMITIVES.get('patchify')!;
const unpatchify = PRIMITIVES.get('unpatchify')!;

function get(t: NamedTensor, at: Record<string, number>): number {
  const s = stridesOf(t.axes);
  return t.data[t.axes.reduce((o, [n], i) => o + at[n] * s[i], 0)];
}

const draw = (axes: readonly AxisPair[], seed: number): NamedTensor => {
  const normal = gaussian(prng(seed));
  return { axes, data: Float64Array.from({ length: numelOf(axes) }, () => normal()) };
};

test('order (w, h) is the official PatchMerging concatenation [x0, x1, x2, x3], padded odd sizes included', () => {
  // h = 5, w = 3: F.pad adds one zero row and column, as pad: true does
  const g = graphOf(model('  output o = patchify(x, patch: (h: 2, w: 2), order: (w, h), pad: true) as p', '', 'b = 2, c = 3, t = 2, h = 5, w = 3'));
  const node = nodeAt(g, 'p', 'patchify');
  assert.equal(node.attrs, { patch: { h: 2, w: 2 }, pad: true, order: ['w', 'h'] });
  const x = draw(g.nodes[node.inputs[0]].axes, 5);
  const y = patchify.reference!({ inputs: [x], params: new Map(), attrs: node.attrs, axes: node.axes });
  const C = 3;
  const offsets = [[0, 0], [1, 0], [0, 1], [1, 1]]; // x0..x3 as (dh, dw)
  let nonzero = 0;
  for (let b = 0; b < 2; b++) for (let t = 0; t < 2; t++) for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) {
    offsets.forEach(([dh, dw], k) => {
      for (let c = 0; c < C; c++) {
        const h = 2 * i + dh, w = 2 * j + dw;
        const want = h < 5 && w < 3 ? get(x, { b, c, t, h, w }) : 0;
        assert.is(get(y, { b, c: k * C + c, t, h: i, w: j }), want, `b=${b} t=${t} (${i}, ${j}) x${k} c=${c}`);
        if (want !== 0) nonzero++;
      }
    });
  }
  assert.ok(nonzero > 100);
  // the default order differs: x1 (dh = 1, dw = 0) is its third block, not its second
  const plain = nodeAt(graphOf(model('  output o = patchify(x, patch: (h: 2, w: 2)) as p', '', 'b = 1, c = 2, t = 1, h = 2, w = 2')), 'p');
  const x1 = { axes: [['b', 1], ['c', 2], ['t', 1], ['h', 2], ['w', 2]] as AxisPair[], data: Float64Array.from({ length: 8 }, (_, i) => i) };
  const yd = patchify.reference!({ inputs: [x1], params: new Map(), attrs: plain.attrs, axes: plain.axes });
  const yo = patchify.reference!({ inputs: [x1], params: new Map(), attrs: { ...plain.attrs, order: ['w', 'h'] }, axes: plain.axes });
  // x[c, h, w] = c * 4 + h * 2 + w; channel 2 (c = 0 of the second block): (0, 1) by default, (1, 0) with order (w, h)
  assert.is(yd.data[2], 1);
  assert.is(yo.data[2], 2);
});

test('unpatchify with the same order is the inverse; the default order given explicitly adds no attribute', () => {
  const g = graphOf(model([
    '  p = patchify(x, patch: (t: 2, h: 2, w: 2), order: (h, w, t)) as p',
    '  output o = unpatchify(p, patch: (t: 2, h: 2, w: 2), order: (h, w, t)) as u',
    '  output d = patchify(x, patch: (h: 2, w: 2), order: (h, w)) as d',
  ].join('\n'), '', 'b = 1, c = 3, t = 4, h = 4, w = 6'));
  const p = nodeAt(g, 'p', 'patchify'), u = nodeAt(g, 'u', 'unpatchify');
  assert.equal(p.attrs.order, ['h', 'w', 't']);
  assert.equal(u.attrs.order, ['h', 'w', 't']);
  assert.equal(nodeAt(g, 'd', 'patchify').attrs, { patch: { h: 2, w: 2 } });
  const x = draw(g.nodes[p.inputs[0]].axes, 9);
  const y = patchify.reference!({ inputs: [x], params: new Map(), attrs: p.attrs, axes: p.axes });
  // channel ((dh * 2 + dw) * 2 + dt) * C + c
  assert.is(get(y, { b: 0, c: ((1 * 2 + 0) * 2 + 1) * 3 + 2, t: 1, h: 0, w: 2 }), get(x, { b: 0, c: 2, t: 3, h: 1, w: 4 }));
  const back = unpatchify.reference!({ inputs: [y], params: new Map(), attrs: u.attrs, axes: u.axes });
  assert.equal(Array.from(back.data), Array.from(x.data));
});

test('an order that is not the patch axes once each is VDM017 with a hint', () => {
  for (const order of ['(h)', '(w, t)', '(h, w, t)']) {
    const r = check(model(`  output o = patchify(x, patch: (h: 2, w: 2), order: ${order})`));
    assert.equal(codes(r), ['VDM017'], order);
    assert.match(r.diagnostics[0].message, /'order' must list each patch axis once \(h, w\)/);
    assert.match(r.diagnostics[0].hint ?? '', /order: \(h, w\)/);
  }
  assert.equal(codes(check(model('  output o = unpatchify(x, patch: (h: 2, w: 2), order: (w))'))), ['VDM017']);
  assert.equal(codes(check(model('  output o = patchify(x, patch: (h: 2, w: 2), order: (h, h))'))), ['VDM022']);
});

test('gradients through patchify and unpatchify with an order (padded, then a linear)', () => {
  const g = graphOf(model([
    '  p = patchify(x, patch: (h: 2, w: 2), order: (w, h), pad: true)',
    '  y = linear(p, 8)',
    '  output o = tanh(unpatchify(y, patch: (h: 2, w: 2), order: (w, h)))',
  ].join('\n'), '', 'b = 1, c = 2, t = 2, h = 3, w = 5'));
  expectGradients(g, 'patch order', 1e-6, { samples: 40 });
});

test.run();
