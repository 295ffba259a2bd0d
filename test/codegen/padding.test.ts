// `pad: true` lowered onto the adapter: windowed attention padded to whole windows (a clamped
// inner window with the configured bias table, shifted windows) and patchify padded to whole
// patches, node by node against the float64 evaluation and backward against the float64 backward.
// The spec-level check of Video Swin at odd sizes is in test/runtime/video-swin.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest } from '../gpu.ts';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { TARGET_TRAITS } from '../../src/pipeline.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';
import { expectLoweredMatches } from './lower-check.ts';

const DIMS = 'b = 2, c = 5, t = 3, h = 5, w = 2';
const SWIN = 'attention(y, over: (t, h, w), heads: 2, window: (t: 2, h: 3, w: 4), shift: (t: 1, h: 1, w: 2), rel_bias: true, pad: true)';

gpuTest('padded, shifted windows with a clamped inner window and the configured table match float64', async () => {
  const g = graphOf(model(['  y = linear(x, 8)', `  output o = ${SWIN} as attn`].join('\n'), '', DIMS));
  await expectLoweredMatches(g, 'padded windows');
});

gpuTest('a parameter-free layernorm before padded attention is not folded into its GEMM (the padding follows the norm)', async () => {
  const g = graphOf(model([
    '  y = linear(x, 8)',
    '  n = layernorm(y, affine: false)',
    `  output o = ${SWIN.replace('(y,', '(n,')} as attn`,
    '  output p = attention(n, over: (h, w), heads: 2) as plain',
  ].join('\n'), '', DIMS));
  await expectLoweredMatches(g, 'norm before padded attention');
});

gpuTest('padded patchify (every axis), then padded patch merging (odd h and w) match float64', async () => {
  const g = graphOf(model([
    '  p = patchify(x, patch: (t: 2, h: 2, w: 4), pad: true)',
    '  y = linear(p, 6)',
    '  output o = linear(patchify(y, patch: (h: 2, w: 2), pad: true), 3)',
  ].join('\n'), '', 'b = 1, c = 3, t = 3, h = 6, w = 9'));
  await expectLoweredMatches(g, 'padded patchify');
});

gpuTest('patch merging in Video Swin\'s order (order: (w, h), padded) and unpatchify with an order match float64, forward and backward', async () => {
  const g = graphOf(model([
    '  y = linear(x, 4)',
    '  p = patchify(y, patch: (h: 2, w: 2), order: (w, h), pad: true)',
    '  z = linear(p, 8)',
    '  output o = unpatchify(z, patch: (t: 1, h: 2, w: 2), order: (w, t, h))',
  ].join('\n'), '', 'b = 1, c = 3, t = 2, h = 5, w = 7'));
  await expectLoweredMatches(g, 'patch order');
  await expectGradientsMatch(g, 'patch order');
});

gpuTest('backward: padded windows (x, qkv, proj, the table) and padded patchify', async () => {
  const a = graphOf(model(['  y = linear(x, 8)', `  output o = ${SWIN} as attn`].join('\n'), '', DIMS));
  await expectGradientsMatch(a, 'padded windows', 3e-4);
  const p = graphOf(model(['  p = patchify(x, patch: (t: 2, h: 2, w: 4), pad: true)', '  output o = linear(p, 6)'].join('\n'), '', 'b = 1, c = 3, t = 3, h = 5, w = 6'));
  await expectGradientsMatch(p, 'padded patchify');
});

test('without padding the kernels are those of before: no pad or crop copies, no bias window', () => {
  const g = graphOf(model('  output o = attention(x, over: (h, w), heads: 2, window: (h: 2, w: 2), shift: 1, rel_bias: true)', '', 'b = 1, c = 8, t = 2, h = 4, w = 4'));
  const lowered = lowerGraph(g, TARGET_TRAITS.software);
  assert.equal(lowered.steps.map((s) => s.spec.key.split(/[:|]/)[0]), ['gemm', 'attention', 'gemm']);
  const padded = graphOf(model('  output o = attention(x, over: (h, w), heads: 2, window: (h: 3, w: 3), shift: 1, rel_bias: true, pad: true)', '', 'b = 1, c = 8, t = 2, h = 4, w = 4'));
  // zeros, x copied in, qkv, attention, o cropped, proj
  assert.equal(lowerGraph(padded, TARGET_TRAITS.software).steps.map((s) => s.spec.key.split(/[:|]/)[0]),
    ['elementwise', 'elementwise', 'gemm', 'attention', 'elementwise', 'gemm']);
});

test.run();
