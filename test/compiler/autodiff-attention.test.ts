// attention's backward rule against central finite differences: full, factorized, windowed with a
// shift mask, relative-position bias, cross-attention to a text context (its gradient too), no biases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { VjpCall, VjpResult } from '../../src/compiler/primitives/types.ts';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import { expectGradients, gradientCheck } from './grad-check.ts';
import { graphOf, model, nodeAt } from './helpers.ts';

const SMALL = 'b = 2, c = 4, t = 2, h = 3, w = 2'; // h != w

/** tanh(attention) times x, so x reaches the loss both through attention and around it. */
const around = (call: string, extra = '') => `${extra}  a = ${call} as attn\n  output o = tanh(a) * x`;

test('full attention over (t, h, w), 2 heads', () => {
  const g = graphOf(model(around('attention(x, over: (t, h, w), heads: 2)'), '', SMALL));
  expectGradients(g, 'full', 1e-6, { samples: 30 });
});

test('factorized over t (b, h, w batch), and over (w, h) in reverse order (t batch)', () => {
  const t = graphOf(model(around('attention(x, over: t, heads: 2)'), '', SMALL));
  expectGradients(t, 'temporal', 1e-6, { samples: 30 });
  const s = graphOf(model(around('attention(x, over: (w, h), heads: 2)'), '', SMALL));
  expectGradients(s, 'spatial, reversed', 1e-6, { samples: 30 });
});

test('windows dividing the grid with a shift (h != w): masked pairs get no gradient', () => {
  const dims = 'b = 1, c = 4, t = 2, h = 4, w = 6';
  const g = graphOf(model(around('attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 2, w: 3), shift: (h: 1, w: 1))'), '', dims));
  assert.equal(nodeAt(g, 'attn', 'attention').attrs.shift, { t: 0, h: 1, w: 1 });
  expectGradients(g, 'shifted windows', 1e-6, { samples: 40 });
  const plain = graphOf(model(around('attention(x, over: (h, w), heads: 1, window: (h: 2, w: 3))'), '', dims));
  expectGradients(plain, 'windows, no shift', 1e-6, { samples: 30 });
});

test('rel_bias: the table gradient sums every (query, key) pair reading a row', () => {
  const dims = 'b = 1, c = 4, t = 2, h = 4, w = 6';
  const g = graphOf(model(around('attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 2, w: 3), shift: (h: 1, w: 1), rel_bias: true)'), '', dims));
  // 3 * 3 * 5 rows of 2 heads: sample all of them
  expectGradients(g, 'rel_bias, shifted windows', 1e-6, { samples: 100 });
  const t = graphOf(model(around('attention(x, over: t, heads: 2, rel_bias: true)'), '', 'b = 2, c = 4, t = 3, h = 2, w = 1'));
  expectGradients(t, 'rel_bias, temporal', 1e-6, { samples: 40 });
  const wh = graphOf(model(around('attention(x, over: (w, h), heads: 2, rel_bias: true)'), '', SMALL));
  expectGradients(wh, 'rel_bias, over (w, h)', 1e-6, { samples: 40 });
});

test('cross-attention to a text context: gradients of x, the context, q and kv', () => {
  const ctx = '  input ctx : text[b, l = 3, c = 6]\n';
  // over (h, w): t is a batch axis the context lacks, so its gradient sums over t
  const g = graphOf(model(around('attention(x, over: (h, w), heads: 2, context: ctx)', ctx), '', SMALL));
  const n = nodeAt(g, 'attn', 'attention');
  assert.is(n.inputs.length, 2);
  assert.ok(g.inputs.some((i) => i.name === 'ctx' && i.dtype === 'f32'), 'the context is an f32 input, so it is checked');
  expectGradients(g, 'cross', 1e-6, { samples: 40 });
  const all = graphOf(model(around('attention(x, over: (t, h, w), heads: 1, context: ctx, bias: false)', ctx), '', SMALL));
  expectGradients(all, 'cross, no bias', 1e-6, { samples: 40 });
});

test('bias: false', () => {
  const g = graphOf(model(around('attention(x, over: (h, w), heads: 2, bias: false)'), '', SMALL));
  assert.equal(nodeAt(g, 'attn', 'attention').params.map((p) => p.path).sort(), ['attn.proj.weight', 'attn.qkv.weight']);
  expectGradients(g, 'no bias', 1e-6, { samples: 30 });
});

test('qkv_bias / out_bias apart, and dim_head (self, windowed, cross): gradients of every parameter and input', () => {
  const g = graphOf(model(around('attention(x, over: (h, w), heads: 2, qkv_bias: true, out_bias: false)'), '', SMALL));
  assert.equal(nodeAt(g, 'attn', 'attention').params.map((p) => p.path).sort(), ['attn.proj.weight', 'attn.qkv.bias', 'attn.qkv.weight']);
  expectGradients(g, 'qkv bias only', 1e-6, { samples: 30 });
  const dh = graphOf(model(around('attention(x, over: (t, h, w), heads: 3, dim_head: 2, bias: false, out_bias: true)'), '', SMALL));
  assert.equal(nodeAt(dh, 'attn', 'attention').params.find((p) => p.path === 'attn.proj.weight')!.shape, [6, 4]);
  expectGradients(dh, 'dim_head 2 x 3 heads over c 4', 1e-6, { samples: 40 });
  const win = graphOf(model(around('attention(x, over: (h, w), heads: 2, dim_head: 3, window: (h: 2, w: 3), shift: (h: 1, w: 1), rel_bias: true)'), '', 'b = 1, c = 4, t = 2, h = 4, w = 6'));
  expectGradients(win, 'dim_head, shifted windows', 1e-6, { samples: 40 });
  const ctx = '  input ctx : text[b, l = 3, c = 6]\n';
  const cross = graphOf(model(around('attention(x, over: (h, w), heads: 2, dim_head: 3, context: ctx, qkv_bias: false)', ctx), '', SMALL));
  expectGradients(cross, 'dim_head, cross', 1e-6, { samples: 40 });
});

test('qk_norm "layer" and "rms" (self, windowed with dim_head, cross): gradients of the norms\' parameters, x and the context', () => {
  const g = graphOf(model(around('attention(x, over: (t, h, w), heads: 2, qk_norm: "layer")'), '', SMALL));
  expectGradients(g, 'qk_norm layer', 1e-6, { samples: 60 });
  const win = graphOf(model(around('attention(x, over: (h, w), heads: 2, dim_head: 3, qk_norm: "rms", window: (h: 2, w: 3), shift: (h: 1, w: 1))'), '', 'b = 1, c = 4, t = 2, h = 4, w = 6'));
  expectGradients(win, 'qk_norm rms, dim_head, shifted windows', 1e-6, { samples: 60 });
  const ctx = '  input ctx : text[b, l = 3, c = 6]\n';
  const cross = graphOf(model(around('attention(x, over: (h, w), heads: 2, qk_norm: "layer", context: ctx)', ctx), '', SMALL));
  expectGradients(cross, 'qk_norm layer, cross', 1e-6, { samples: 60 });
});

test('rope (3D, and 1D after qk_norm "layer" with rel_bias): gradients through the rotation', () => {
  const g = graphOf(model(around('attention(x, over: (t, h, w), heads: 1, rope: (t, h, w))'), '', 'b = 1, c = 16, t = 2, h = 3, w = 2'));
  expectGradients(g, 'rope 3D', 1e-6, { samples: 60 });
  const t = graphOf(model(around('attention(x, over: t, heads: 2, dim_head: 4, rope: t, qk_norm: "layer", rel_bias: true)'), '', 'b = 2, c = 4, t = 4, h = 2, w = 1'));
  expectGradients(t, 'rope 1D, qk_norm, rel_bias', 1e-6, { samples: 60 });
});

test('causal (over (t, h, w), and over t with rel_bias, rope and qk_norm): masked pairs get no gradient', () => {
  const g = graphOf(model(around('attention(x, over: (t, h, w), heads: 2, causal: true)'), '', SMALL));
  expectGradients(g, 'causal', 1e-6, { samples: 40 });
  const t = graphOf(model(around('attention(x, over: t, heads: 2, causal: true, rel_bias: true, rope: t, qk_norm: "rms")'), '', 'b = 2, c = 4, t = 4, h = 2, w = 1'));
  expectGradients(t, 'causal temporal, rel_bias, rope, qk_norm', 1e-6, { samples: 60 });
});

test('key_mask (self over (t, h, w) with rel_bias, and cross to a caption): masked keys and fully masked rows get no gradient', () => {
  // relu masks about half the keys of sample 0; sample 1's mask is all zeros (every row fully masked)
  const masked = (m: string) => `concat(relu(slice(${m}, b, 0, 1)), slice(${m}, b, 1, 2) * 0, axis: b)`;
  const g = graphOf(model(around(`attention(x, over: (t, h, w), heads: 2, rel_bias: true, key_mask: ${masked('mean(x, over: c)')})`), '', SMALL));
  assert.is(nodeAt(g, 'attn', 'attention').inputs.length, 2);
  expectGradients(g, 'key_mask self', 1e-6, { samples: 60 });
  const ctx = '  input ctx : text[b, l = 4, c = 6]\n';
  const c = graphOf(model(around(`attention(x, over: (h, w), heads: 2, context: ctx, qk_norm: "rms", key_mask: ${masked('mean(ctx, over: c)')})`, ctx), '', SMALL));
  expectGradients(c, 'key_mask cross', 1e-6, { samples: 60 });
});

test('the check fails when the rule is wrong (one rel_bias row, or the context)', () => {
  const prim = PRIMITIVES.get('attention')! as { vjp?: (c: VjpCall) => VjpResult };
  const right = prim.vjp!;
  const table = graphOf(model(around('attention(x, over: t, heads: 2, rel_bias: true)'), '', 'b = 2, c = 4, t = 3, h = 2, w = 1'));
  const ctx = '  input ctx : text[b, l = 3, c = 6]\n';
  const cross = graphOf(model(around('attention(x, over: (h, w), heads: 2, context: ctx)', ctx), '', SMALL));
  try {
    prim.vjp = (c) => {
      const r = right(c);
      const dTable = r.params?.get('rel_bias');
      if (dTable) dTable[2] += 0.01 * (1 + Math.abs(dTable[2]));
      const dCtx = r.inputs[1];
      if (dCtx) dCtx.data[0] += 0.01 * (1 + Math.abs(dCtx.data[0]));
      return r;
    };
    assert.ok(gradientCheck(table, { samples: 40 }).worst > 1e-5, 'a wrong table row is caught');
    assert.ok(gradientCheck(cross, { samples: 200 }).worst > 1e-5, 'a wrong context gradient is caught');
  } finally {
    prim.vjp = right;
  }
  assert.ok(gradientCheck(table, { samples: 40 }).worst < 1e-6);
});

test('the check fails when the qk_norm rule is wrong (a norm weight, or the raw q it passes back)', () => {
  const prim = PRIMITIVES.get('attention')! as { vjp?: (c: VjpCall) => VjpResult };
  const right = prim.vjp!;
  const g = graphOf(model(around('attention(x, over: (t, h, w), heads: 2, qk_norm: "rms")'), '', SMALL));
  for (const wrong of ['k_norm.weight', 'qkv.weight']) {
    try {
      prim.vjp = (c) => {
        const r = right(c);
        const d = r.params!.get(wrong)!;
        d[1] += 0.01 * (1 + Math.abs(d[1]));
        return r;
      };
      assert.ok(gradientCheck(g, { samples: 200 }).worst > 1e-5, `a wrong ${wrong} gradient is caught`);
    } finally {
      prim.vjp = right;
    }
  }
  assert.ok(gradientCheck(g, { samples: 200 }).worst < 1e-6);
});

test.run();
