// `pad: true` on windowed attention and patchify (Video Swin's padding): shape rules, the float64
// reference against an implementation written from the official recipe (F.pad after the norm,
// get_window_size, roll, window partition, the -100 mask computed on the padded grid,
// relative_position_index[:N, :N] of the configured window, crop), backward rules against central
// finite differences, and the diagnostics that remain without padding.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gaussian, prng } from '../../src/compiler/reference/evaluate.ts';
import type { AxisPair } from '../../src/compiler/ir/graph.ts';
import { numelOf, relayout, sizeIn, stridesOf, type NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import { expectGradients } from './grad-check.ts';
import { check, codes, graphOf, model, nodeAt, paramShape } from './helpers.ts';

const attention = PRIMITIVES.get('attention')!;
const patchify = PRIMITIVES.get('patchify')!;

// t=3 pads to 4 (window 2), h=5 to 6 (window 3, shifted by 1), w=2 clamps the window 4 to 2 (no
// shift there, bias table still of window 4: an inner axis, so relative_position_index[:N, :N]
// differs from the clamped window's own index).
const DIMS = 'b = 2, c = 4, t = 3, h = 5, w = 2';
const CALL = 'attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 3, w: 4), shift: (t: 1, h: 1, w: 2), rel_bias: true, pad: true)';

test('shape rule: padded sizes, the clamped window and shift, the configured table, MACs over the padded tokens', () => {
  const g = graphOf(model(`  output o = ${CALL} as attn`, '', DIMS));
  const n = nodeAt(g, 'attn', 'attention');
  assert.equal(n.axes, [['b', 2], ['c', 4], ['t', 3], ['h', 5], ['w', 2]]);
  assert.equal(n.attrs.window, { t: 2, h: 3, w: 2 });
  assert.equal(n.attrs.shift, { t: 1, h: 1, w: 0 });
  assert.equal(n.attrs.padded, { t: 4, h: 6, w: 2 });
  assert.equal(n.attrs.bias_window, { t: 2, h: 3, w: 4 });
  // (2*2-1)(2*3-1)(2*4-1) rows whatever the input size, as in PyTorch
  assert.equal(paramShape(g, 'attn.rel_bias'), [3 * 5 * 7, 2]);
  const small = graphOf(model(`  output o = ${CALL} as attn`, '', 'b = 2, c = 4, t = 1, h = 2, w = 1'));
  assert.equal(paramShape(small, 'attn.rel_bias'), [3 * 5 * 7, 2]);
  // qkv and attention over 2 * 4*6*2 padded tokens (windows of 12), proj over the 2 * 30 real ones
  const padded = 2 * 4 * 6 * 2, real = 2 * 3 * 5 * 2;
  assert.is(n.macs, padded * 4 * 12 + 2 * padded * 12 * 4 + real * 4 * 4);
  // without pad nothing changes: the same call at dividing sizes has no pad attributes
  const plain = nodeAt(graphOf(model('  output o = attention(x, over: (h, w), window: (h: 2, w: 2)) as attn', '', 'b = 1, c = 4, t = 1, h = 4, w = 4')), 'attn');
  assert.equal(Object.keys(plain.attrs).sort(), ['bias', 'context_over', 'heads', 'over', 'rel_bias', 'shift', 'window']);
});

test('without pad a window that does not divide its axis is still VDM032, with a hint; pad needs a window', () => {
  const r = check(model('  output o = attention(x, over: (t, h, w), window: (t: 2, h: 3, w: 4))', '', DIMS));
  assert.equal(codes(r), ['VDM032']);
  assert.match(r.diagnostics[0].message, /window t=2 does not divide t=3/);
  assert.match(r.diagnostics[0].hint ?? '', /pad: true/);
  assert.equal(codes(check(model('  output o = attention(x, over: (h, w), pad: true)', '', DIMS))), ['VDM032']);
  assert.equal(codes(check(model('  output o = patchify(x, patch: (t: 2, h: 2))', '', DIMS))), ['VDM031']);
});

// ------------------------------------------------------------------ the official recipe

/** Element of `t` at named coordinates. */
function get(t: NamedTensor, at: Record<string, number>): number {
  const s = stridesOf(t.axes);
  return t.data[t.axes.reduce((o, [n], i) => o + at[n] * s[i], 0)];
}

/** row @ W + b for W [in, out] row-major. */
const linearRow = (row: number[], w: Float64Array, b: Float64Array | undefined, out: number) =>
  Array.from({ length: out }, (_, o) => row.reduce((acc, v, i) => acc + v * w[i * out + o], b ? b[o] : 0));

/**
 * Video Swin's block part 1 after norm1, for x [b, c, t, h, w] and over (t, h, w), from the
 * definition: window and shift from get_window_size (an axis no longer than the window: the whole
 * axis, no shift); x padded with zeros after the end to whole windows; torch.roll by -shift;
 * windows; q k^T / sqrt(dh) + table[relative_position_index[:N, :N]] (the index of the configured
 * window) + the mask (-100 between different img_mask slices, labelled on the padded grid); softmax;
 * proj; roll back; crop.
 */
function official(x: NamedTensor, P: Map<string, Float64Array>, o: { heads: number; window: number[]; shift: number[] }): NamedTensor {
  const axes = ['t', 'h', 'w'];
  const n = axes.map((a) => sizeIn(x.axes, a));
  const B = sizeIn(x.axes, 'b'), d = sizeIn(x.axes, 'c'), dh = d / o.heads;
  const ws = o.window.map((w, i) => (n[i] <= w ? n[i] : w));
  const ss = o.shift.map((s, i) => (n[i] <= o.window[i] ? 0 : s));
  const np = n.map((v, i) => Math.ceil(v / ws[i]) * ws[i]);
  // the configured window's relative_position_index, N x N over row-major window positions
  const W = o.window;
  const Nfull = W[0] * W[1] * W[2];
  const posIn = (i: number, sizes: number[]) => [Math.floor(i / (sizes[1] * sizes[2])), Math.floor(i / sizes[2]) % sizes[1], i % sizes[2]];
  const index = (i: number, j: number) => {
    const a = posIn(i, W), b = posIn(j, W);
    return ((a[0] - b[0] + W[0] - 1) * (2 * W[1] - 1) + (a[1] - b[1] + W[1] - 1)) * (2 * W[2] - 1) + (a[2] - b[2] + W[2] - 1);
  };
  const N = ws[0] * ws[1] * ws[2];
  assert.ok(N <= Nfull);
  // img_mask on the padded grid: slices (0, -w), (-w, -s), (-s, None) per axis, numbered in order
  const slice = (a: number, r: number) => (r < np[a] - ws[a] ? 0 : r < np[a] - ss[a] ? 1 : 2);
  const label = (r: number[]) => (slice(0, r[0]) * 3 + slice(1, r[1])) * 3 + slice(2, r[2]);
  const out: NamedTensor = { axes: x.axes, data: new Float64Array(numelOf(x.axes)) };
  const os = stridesOf(x.axes);
  for (let b = 0; b < B; b++) {
    // padded and rolled: rolled[r] = padded[(r + s) % np]
    const qkvAt = new Map<string, number[]>();
    const qkv = (r: number[]) => {
      const src = r.map((c, i) => (c + ss[i]) % np[i]);
      const k = src.join(',');
      if (!qkvAt.has(k)) {
        const inside = src.every((c, i) => c < n[i]);
        const row = Array.from({ length: d }, (_, c) => (inside ? get(x, { b, c, t: src[0], h: src[1], w: src[2] }) : 0));
        qkvAt.set(k, linearRow(row, P.get('qkv.weight')!, P.get('qkv.bias'), 3 * d));
      }
      return qkvAt.get(k)!;
    };
    for (let r0 = 0; r0 < np[0]; r0++) for (let r1 = 0; r1 < np[1]; r1++) for (let r2 = 0; r2 < np[2]; r2++) {
      const r = [r0, r1, r2];
      const home = r.map((c, i) => Math.floor(c / ws[i]) * ws[i]);
      const qi = ((r0 - home[0]) * ws[1] + (r1 - home[1])) * ws[2] + (r2 - home[2]);
      const q = qkv(r);
      const att = new Array<number>(d).fill(0);
      for (let h = 0; h < o.heads; h++) {
        const logits: number[] = [], values: number[][] = [];
        for (let j = 0; j < N; j++) {
          const kp = posIn(j, ws).map((c, i) => home[i] + c);
          const kv = qkv(kp);
          let l = 0;
          for (let e = 0; e < dh; e++) l += q[h * dh + e] * kv[d + h * dh + e];
          l = l / Math.sqrt(dh) + P.get('rel_bias')![index(qi, j) * o.heads + h];
          if (ss.some((s) => s > 0) && label(kp) !== label(r)) l += -100;
          logits.push(l);
          values.push(kv.slice(2 * d + h * dh, 2 * d + (h + 1) * dh));
        }
        const m = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - m));
        const z = e.reduce((s, v) => s + v, 0);
        for (let k = 0; k < dh; k++) att[h * dh + k] = values.reduce((s, v, j) => s + (e[j] / z) * v[k], 0);
      }
      const y = linearRow(att, P.get('proj.weight')!, P.get('proj.bias'), d);
      const at = r.map((c, i) => (c + ss[i]) % np[i]);
      if (at.some((c, i) => c >= n[i])) continue; // cropped
      for (let c = 0; c < d; c++) out.data[b * os[0] + c * os[1] + at[0] * os[2] + at[1] * os[3] + at[2] * os[4]] = y[c];
    }
  }
  return out;
}

function draw(axes: readonly AxisPair[], normal: () => number, sd = 1): NamedTensor {
  return { axes, data: Float64Array.from({ length: numelOf(axes) }, () => sd * normal()) };
}

function maxRel(a: NamedTensor, b: NamedTensor): number {
  const r = relayout(a, b.axes);
  let diff = 0, scale = 0;
  for (let i = 0; i < r.data.length; i++) { diff = Math.max(diff, Math.abs(r.data[i] - b.data[i])); scale = Math.max(scale, Math.abs(b.data[i])); }
  assert.ok(scale > 0.1);
  return diff / scale;
}

for (const [dims, window, shift] of [
  [DIMS, [2, 3, 4], [1, 1, 2]],
  ['b = 1, c = 4, t = 5, h = 4, w = 3', [2, 7, 2], [1, 3, 1]], // h clamped (inner), t and w padded, shifted
  ['b = 1, c = 4, t = 2, h = 7, w = 5', [8, 3, 3], [0, 0, 0]], // t clamped (outer), no shift
] as const) {
  test(`reference = the official recipe: ${dims}, window (${window}), shift (${shift})`, () => {
    const call = `attention(x, over: (t, h, w), heads: 2, window: (t: ${window[0]}, h: ${window[1]}, w: ${window[2]}), shift: (t: ${shift[0]}, h: ${shift[1]}, w: ${shift[2]}), rel_bias: true, pad: true)`;
    const g = graphOf(model(`  output o = ${call} as attn`, '', dims));
    const node = nodeAt(g, 'attn', 'attention');
    const normal = gaussian(prng(11));
    const x = draw(g.nodes[node.inputs[0]].axes, normal);
    const params = new Map(node.params.map((p) => [p.path.slice(node.path.length + 1),
      draw(p.shape.map((s, i) => [`p${i}`, s] as AxisPair), normal, p.path.endsWith('rel_bias') ? 1 : 0.5).data]));
    const got = attention.reference!({ inputs: [x], params, attrs: node.attrs, axes: node.axes });
    const want = official(x, params, { heads: 2, window: [...window], shift: [...shift] });
    // the mask's exp(-100) against exact exclusion: far below 1e-12
    assert.ok(maxRel(got, want) < 1e-12, `relative error ${maxRel(got, want)}`);
  });
}

test('patchify with pad: ceil sizes, zeros after the end, the data where it was', () => {
  const g = graphOf(model('  output o = patchify(x, patch: (t: 2, h: 4, w: 4), pad: true) as p', '', 'b = 1, c = 2, t = 3, h = 6, w = 4'));
  const node = nodeAt(g, 'p', 'patchify');
  assert.equal(node.axes, [['b', 1], ['c', 2 * 32], ['t', 2], ['h', 2], ['w', 1]]);
  assert.equal(node.attrs.pad, true);
  const x = draw(g.nodes[node.inputs[0]].axes, gaussian(prng(3)));
  const y = patchify.reference!({ inputs: [x], params: new Map(), attrs: node.attrs, axes: node.axes });
  const C = 2;
  for (let t = 0; t < 4; t++) for (let h = 0; h < 8; h++) for (let w = 0; w < 4; w++) for (let c = 0; c < C; c++) {
    const ch = (((t % 2) * 4 + (h % 4)) * 4 + (w % 4)) * C + c;
    const v = get(y, { b: 0, c: ch, t: Math.floor(t / 2), h: Math.floor(h / 4), w: Math.floor(w / 4) });
    assert.is(v, t < 3 && h < 6 ? get(x, { b: 0, c, t, h, w }) : 0);
  }
  // dividing sizes: no pad attribute, the same node as without pad
  const plain = nodeAt(graphOf(model('  output o = patchify(x, patch: (h: 2, w: 2), pad: true) as p', '', 'b = 1, c = 2, t = 3, h = 6, w = 4')), 'p');
  assert.equal(plain.attrs, { patch: { h: 2, w: 2 } });
});

// ------------------------------------------------------------------ backward rules

/** tanh(layer) times x, so x reaches the loss both through the layer and around it. */
const around = (call: string) => `  a = ${call} as attn\n  output o = tanh(a) * x`;

test('padded, shifted, clamped windows with the configured table: gradients of x, qkv, proj and rel_bias', () => {
  const g = graphOf(model(around(CALL), '', DIMS));
  expectGradients(g, 'padded windows', 1e-6, { samples: 60 });
});

test('padded windows over (w, h) in reverse order, no shift, no biases', () => {
  const g = graphOf(model(around('attention(x, over: (w, h), heads: 1, window: (h: 2, w: 3), rel_bias: true, bias: false, pad: true)'), '', 'b = 1, c = 4, t = 2, h = 3, w = 4'));
  expectGradients(g, 'padded windows, reversed', 1e-6, { samples: 40 });
});

test('patchify with pad: the gradient is the output gradient unpatchified, the padding dropped', () => {
  const g = graphOf(model('  p = patchify(x, patch: (t: 2, h: 2, w: 3), pad: true)\n  output o = tanh(linear(p, 5))', '', 'b = 1, c = 2, t = 3, h = 3, w = 4'));
  expectGradients(g, 'padded patchify', 1e-6, { samples: 40 });
});

test.run();
