// GPU backward of attention (projections, the fused score-recomputing kernel, relative bias,
// windows, shifts, context) against the float64 backward; chained so input gradients count too.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';

gpuTest('full and factorized self-attention, chained through a linear', async () => {
  const g = graphOf(model([
    '  y = linear(x, 8)',
    '  a = attention(y, over: (t, h, w), heads: 2)',
    '  output o = attention(a, over: (h, w), heads: 4) + attention(a, over: t, heads: 2, bias: false)',
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 3, w = 4'));
  await expectGradientsMatch(g, 'self-attention');
});

gpuTest('windows, shifted windows and the relative-position bias', async () => {
  const g = graphOf(model([
    '  y = linear(x, 8)',
    '  a = attention(y, over: (h, w), heads: 2, rel_bias: true)',
    '  output o = attention(a, over: (w, h), heads: 2, window: (h: 2, w: 2), shift: (h: 1, w: 1), rel_bias: true)',
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 4, w = 4'));
  // Each relative-bias entry sums P (dP - D) over every query-key pair at its offset, terms that
  // cancel; with f32 rounding the worst entry reached 1.6e-4 on one seed in eleven: a looser limit.
  await expectGradientsMatch(g, 'windowed attention', 3e-4);
});

gpuTest('cross-attention to a context: gradients reach the context through its projection', async () => {
  const g = graphOf(model([
    '  input ctx : text[b, l=5, c=6]',
    '  k = linear(ctx, 6)',
    '  y = linear(x, 8)',
    '  output o = attention(y, over: (h, w), heads: 2, context: k)',
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 3, w = 2'));
  await expectGradientsMatch(g, 'cross-attention');
});

gpuTest('qkv_bias / out_bias apart and dim_head: self, windowed and cross-attention', async () => {
  const g = graphOf(model([
    '  input ctx : text[b, l=5, c=6]',
    '  y = linear(x, 8)',
    '  a = attention(y, over: (h, w), heads: 3, dim_head: 4, qkv_bias: true, out_bias: false)',
    '  a = attention(a, over: (h, w), heads: 2, dim_head: 3, window: (h: 2, w: 2), shift: (h: 1, w: 1), rel_bias: true, bias: false, out_bias: true)',
    '  output o = attention(a, over: (t, h, w), heads: 2, dim_head: 5, context: ctx, qkv_bias: false)',
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 4, w = 4'));
  await expectGradientsMatch(g, 'attention options', 3e-4);
});

gpuTest('qk_norm "layer" and "rms": norm kernels over the q/k scratch (self with dim_head, shifted windows, cross)', async () => {
  const g = graphOf(model([
    '  input ctx : text[b, l=5, c=6]',
    '  y = linear(x, 8)',
    '  a = attention(y, over: (t, h, w), heads: 2, dim_head: 3, qk_norm: "layer")',
    '  a = attention(a, over: (h, w), heads: 2, qk_norm: "rms", window: (h: 2, w: 2), shift: (h: 1, w: 1), rel_bias: true)',
    '  output o = attention(a, over: (h, w), heads: 2, dim_head: 5, qk_norm: "layer", context: ctx)',
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 4, w = 4'));
  // k_norm.bias adds one vector to every key, a constant per query's scores that the softmax removes
  await expectGradientsMatch(g, 'qk_norm', 3e-4, /k_norm\.bias$/);
});

gpuTest('rope: 3D over (t, h, w) and 1D over t after qk_norm, kernels in place on the q/k scratch', async () => {
  const g = graphOf(model([
    '  y = linear(x, 16)',
    '  output o = attention(y, over: (t, h, w), heads: 1, rope: (t, h, w))',
    '  output p = attention(y, over: (w, h), heads: 2, dim_head: 4, rope: (h, w), rel_bias: true)',
    '  output q = attention(y, over: t, heads: 2, dim_head: 6, rope: t, qk_norm: "layer")',
  ].join('\n'), '', 'b = 2, c = 5, t = 3, h = 4, w = 2'));
  // side by side, not chained: a qk-norm over 6 channels amplifies the f32 error of the layers before
  // it (chained, its weight gradient reached 1.4e-3 on some seeds); turned keys make k_norm.bias count
  await expectGradientsMatch(g, 'rope', 3e-4);
});

gpuTest('causal: over (t, h, w), and over t with rel_bias and rope (forward and backward kernels masked)', async () => {
  const g = graphOf(model([
    '  y = linear(x, 8)',
    '  output o = attention(y, over: (t, h, w), heads: 2, causal: true)',
    '  output p = attention(y, over: t, heads: 2, causal: true, rel_bias: true, rope: t)',
  ].join('\n'), '', 'b = 2, c = 5, t = 3, h = 4, w = 2'));
  await expectGradientsMatch(g, 'causal');
});

gpuTest('key_mask: self over (t, h, w) with rel_bias and causal, cross to a caption [b, l]; sample 1 fully masked', async () => {
  const masked = (m: string) => `concat(relu(slice(${m}, b, 0, 1)), slice(${m}, b, 1, 2) * 0, axis: b)`;
  const g = graphOf(model([
    '  y = linear(x, 8)',
    `  output o = attention(y, over: (t, h, w), heads: 2, rel_bias: true, causal: true, key_mask: ${masked('mean(y, over: c)')})`,
    `  output p = attention(y, over: (h, w), heads: 2, context: txt, key_mask: ${masked('mean(txt, over: c)')})`,
  ].join('\n'), '', 'b = 2, c = 5, t = 3, h = 4, w = 2').replace('input x : video[b, c, t, h, w]', 'input x : video[b, c, t, h, w]\n  input txt : text[b, l=6, c=4]'));
  await expectGradientsMatch(g, 'key_mask');
});

test.run();
