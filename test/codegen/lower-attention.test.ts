// Lowering of attention (qkv GEMM, one attention kernel, output projection GEMM), checked node by
// node against the float64 evaluation: full, factorized, windowed and shifted, relative-position
// bias, cross-attention to text, no biases, and node axis orders other than [b, c, t, h, w].
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectLoweredMatches } from './lower-check.ts';

/** A model whose video input is declared with the given axis order. */
const modelWith = (axes: string, body: string, dims: string) =>
  `model M {\n  dims ${dims}\n  input x : video[${axes}]\n${body}\n}\n`;

gpuTest('full attention over (t, h, w) with 2 heads: qkv GEMM, one attention kernel, proj GEMM', async () => {
  const g = graphOf(model('  output o = attention(x, over: (t, h, w), heads: 2)', '', 'b = 2, c = 8, t = 2, h = 3, w = 5'));
  const lowered = lowerGraph(g);
  assert.equal(lowered.steps.length, 3);
  assert.equal([...lowered.buffers.values()].filter((b) => b.role === 'scratch').length, 2);
  await expectLoweredMatches(g, 'full attention');
});

gpuTest('factorized: over t (4 heads), then over (h, w); over listed against the node order (w, t)', async () => {
  const g = graphOf(model([
    '  a = attention(x, over: t, heads: 4)',
    '  output o = attention(a, over: (h, w), heads: 2)',
    '  output p = attention(x, over: (w, t))',
  ].join('\n'), '', 'b = 2, c = 8, t = 3, h = 2, w = 5'));
  await expectLoweredMatches(g, 'factorized attention');
});

gpuTest('node axes with c last and permuted ([w, b, c, h, t]), tokens in another order than the node, context [c, l, b]', async () => {
  const g = graphOf(modelWith('b, t, h, w, c', '  output o = attention(x, over: (w, h), heads: 2)', 'b = 2, c = 8, t = 2, h = 3, w = 5'));
  await expectLoweredMatches(g, 'c last');
  const p = graphOf(modelWith('w, b, c, h, t', '  output o = attention(x, over: (t, w), heads: 2, rel_bias: true)', 'b = 2, c = 8, t = 3, h = 2, w = 4'));
  await expectLoweredMatches(p, 'permuted axes, rel_bias');
  const c = graphOf(modelWith('w, b, c, h, t', '  input ctx : text[c=12, l=5, b]\n  output o = attention(x, over: (t, w), heads: 2, context: ctx)',
    'b = 2, c = 8, t = 3, h = 2, w = 4'));
  await expectLoweredMatches(c, 'permuted axes, permuted context');
});

gpuTest('windowed attention (h != w, windows dividing the grid), without and with shift', async () => {
  const g = graphOf(model([
    '  a = attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 2, w: 3))',
    '  output o = attention(a, over: (t, h, w), heads: 2, window: (t: 2, h: 2, w: 3), shift: (t: 0, h: 1, w: 1))',
  ].join('\n'), '', 'b = 1, c = 8, t = 2, h = 4, w = 6'));
  await expectLoweredMatches(g, 'windows');
});

gpuTest('relative-position bias: full over (h, w), and shifted windows over (w, h) with the table', async () => {
  const g = graphOf(model([
    '  a = attention(x, over: (h, w), heads: 2, rel_bias: true)',
    '  output o = attention(a, over: (w, h), heads: 2, window: (h: 2, w: 3), shift: (h: 1, w: 2), rel_bias: true)',
  ].join('\n'), '', 'b = 2, c = 8, t = 2, h = 4, w = 6'));
  await expectLoweredMatches(g, 'rel_bias');
});

gpuTest('cross-attention to text with another channel size, broadcast over t; and over (t, h, w)', async () => {
  const g = graphOf(model([
    '  input ctx : text[b, l=5, c=12]',
    '  a = attention(x, over: (h, w), heads: 2, context: ctx)',
    '  output o = attention(a, over: (t, h, w), heads: 4, context: ctx)',
  ].join('\n'), '', 'b = 2, c = 8, t = 3, h = 2, w = 3'));
  const lowered = lowerGraph(g);
  assert.equal(lowered.steps.length, 8); // per node: q GEMM, kv GEMM, attention, proj GEMM
  await expectLoweredMatches(g, 'cross-attention');
});

gpuTest('bias: false, self- and cross-attention', async () => {
  const g = graphOf(model([
    '  input ctx : text[b, l=5, c=12]',
    '  a = attention(x, over: (t, h, w), heads: 2, bias: false)',
    '  output o = attention(a, over: (h, w), context: ctx, bias: false)',
  ].join('\n'), '', 'b = 2, c = 8, t = 2, h = 2, w = 3'));
  await expectLoweredMatches(g, 'no biases');
});

gpuTest('qkv_bias / out_bias apart and dim_head (heads * dim_head != c): self, windowed, cross', async () => {
  const g = graphOf(model([
    '  input ctx : text[b, l=5, c=6]',
    '  a = attention(x, over: (t, h, w), heads: 3, dim_head: 4, qkv_bias: true, out_bias: false)',
    '  a = attention(a, over: (h, w), heads: 2, dim_head: 3, window: (h: 2, w: 2), shift: (h: 1, w: 1), rel_bias: true, bias: false, out_bias: true)',
    '  output o = attention(a, over: (h, w), heads: 2, dim_head: 6, context: ctx, qkv_bias: false)',
  ].join('\n'), '', 'b = 2, c = 8, t = 2, h = 4, w = 4'));
  await expectLoweredMatches(g, 'attention options');
});

gpuTest('qk_norm "layer" and "rms": norm kernels over the q/k scratch (self with dim_head, shifted windows, cross)', async () => {
  const g = graphOf(model([
    '  input ctx : text[b, l=5, c=6]',
    '  y = linear(x, 8)',
    '  a = attention(y, over: (t, h, w), heads: 2, dim_head: 3, qk_norm: "layer")',
    '  a = attention(a, over: (h, w), heads: 2, qk_norm: "rms", window: (h: 2, w: 2), shift: (h: 1, w: 1), rel_bias: true)',
    '  output o = attention(a, over: (h, w), heads: 2, dim_head: 5, qk_norm: "layer", context: ctx)',
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 4, w = 4'));
  await expectLoweredMatches(g, 'qk_norm');
});

gpuTest('rope: 3D over (t, h, w) and 1D over t after qk_norm, kernels in place on the q/k scratch', async () => {
  const g = graphOf(model([
    '  y = linear(x, 16)',
    '  a = attention(y, over: (t, h, w), heads: 1, rope: (t, h, w))',
    '  a = attention(a, over: (w, h), heads: 2, dim_head: 4, rope: (h, w), rel_bias: true)',
    '  output o = attention(a, over: t, heads: 2, dim_head: 6, rope: t, qk_norm: "layer")',
  ].join('\n'), '', 'b = 2, c = 5, t = 3, h = 4, w = 2'));
  await expectLoweredMatches(g, 'rope');
});

gpuTest('causal: over (t, h, w), and over t with rel_bias and rope (forward and backward kernels masked)', async () => {
  const g = graphOf(model([
    '  y = linear(x, 8)',
    '  output o = attention(y, over: (t, h, w), heads: 2, causal: true)',
    '  output p = attention(y, over: t, heads: 2, causal: true, rel_bias: true, rope: t)',
  ].join('\n'), '', 'b = 2, c = 5, t = 3, h = 4, w = 2'));
  await expectLoweredMatches(g, 'causal');
});

gpuTest('key_mask: self over (t, h, w) with rel_bias, cross to a caption [b, l]; sample 1 fully masked', async () => {
  const masked = (m: string) => `concat(relu(slice(${m}, b, 0, 1)), slice(${m}, b, 1, 2) * 0, axis: b)`;
  const g = graphOf(model([
    '  y = linear(x, 8)',
    `  output o = attention(y, over: (t, h, w), heads: 2, rel_bias: true, key_mask: ${masked('mean(y, over: c)')})`,
    `  output p = attention(y, over: (h, w), heads: 2, context: txt, key_mask: ${masked('mean(txt, over: c)')})`,
  ].join('\n'), '', 'b = 2, c = 5, t = 3, h = 4, w = 2').replace('input x : video[b, c, t, h, w]', 'input x : video[b, c, t, h, w]\n  input txt : text[b, l=6, c=4]'));
  await expectLoweredMatches(g, 'key_mask');
});

test.run();
