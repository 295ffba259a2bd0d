// GEMM prologue and epilogue fusion (src/codegen/fuse-gemm.ts): gate multiplies, residual adds and
// activations after a dense layer, layer norm and modulate before one, checked node by node against
// the float64 evaluation with perturbed parameters (zero-initialised layers moved off zero), and
// the forms that must not fuse.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest } from '../gpu.ts';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { lowerTraining } from '../../src/codegen/training.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectLoweredMatches } from './lower-check.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';

const families = (g: Graph) => lowerGraph(g).steps.map((s) => s.spec.key.split(/[:|]/)[0]);
const count = (g: Graph, family: string) => families(g).filter((f) => f === family).length;

const EPILOGUES = model([
  '  g = linear(mean(x, over: (t, h, w)), 8)',      // a per-sample gate [b, c]
  '  s = mean(x, over: (b, h, w))',                 // a gate [c, t]: varies along t, a row axis of the GEMM
  '  output o1 = x + g * linear(x, 8)',
  '  output o2 = linear(x, 8) * g + x',
  '  output o3 = gelu(linear(x, 8)) * g',
  '  output o4 = x + linear(x, 8)',
  '  output o5 = x + s * linear(x, 8)',
  '  output o6 = x + x * linear(x, 8)',             // a gate over every axis: the GEMM has M = 1
  '  output o7 = sincos(x, over: (h, w)) + linear(x, 8)', // a residual [h, w, c] broadcast over b and t
].join('\n'), '', 'b = 2, c = 8, t = 3, h = 4, w = 5');

gpuTest('epilogue: residual add, gate multiply and activation after a linear are its GEMM', async () => {
  const g = graphOf(EPILOGUES);
  // g: mean, GEMM; s: mean; each output: one GEMM; o7's table: one kernel
  assert.equal(families(g).filter((f) => f === 'gemm').length, 8);
  assert.is(count(g, 'elementwise'), 0);
  for (const layout of ['node', 'channels-last'] as const) await expectLoweredMatches(g, `epilogues (${layout})`, 1e-4, layout);
});

const PROLOGUES = model([
  '  sc = linear(mean(x, over: (t, h, w)), 8)',
  '  sh = linear(mean(x, over: (t, h, w)), 8)',
  '  st = mean(x, over: (c, h, w))',                // [b, t]: a scale along t for a layer along t
  '  output p1 = linear(layernorm(x, affine: false) * (1 + sc) + sh, 6)',
  '  output p2 = linear(layernorm(x, affine: false, eps: 0.001), 6)',
  '  output p3 = linear(sh + layernorm(x, affine: false), 6)',
  '  output p4 = linear((sc + 1) * layernorm(x, affine: false), 6)',
  '  output p5 = linear(layernorm(x, affine: false, axis: t) * (1 + st), 5, axis: t)',
  '  output p6 = x + sc * linear(gelu(linear(layernorm(x, affine: false) * (1 + sc) + sh, 16)), 8)',
].join('\n'), '', 'b = 2, c = 8, t = 3, h = 4, w = 5');

gpuTest('prologue: layer norm without affine, then modulate, folded into the linear that reads it', async () => {
  const g = graphOf(PROLOGUES);
  assert.is(count(g, 'norm'), 0);
  assert.is(count(g, 'elementwise'), 0);
  // sc, sh: GEMM each; p1-p5: one each; p6: two (gelu the first's epilogue, gate and residual the second's)
  assert.is(count(g, 'gemm'), 9);
  for (const layout of ['node', 'channels-last'] as const) await expectLoweredMatches(g, `prologues (${layout})`, 1e-4, layout);
});

const ADALN = model([
  '  c0 = linear(mean(x, over: (t, h, w)), 16)',
  '  z = linear(patchify(x, (t: 1, h: 2, w: 2)), 16)',
  '  z = dit_block(z, c0, 2, over: (h, w))',
  '  z = dit_block(z, c0, 2, over: t)',
  '  output o = final_layer(z, c0, 8)',
].join('\n'), 'import "std/dit.vdm"', 'b = 2, c = 2, t = 3, h = 8, w = 8');

gpuTest('DiT blocks: adaLN modulate in the qkv and fc1 prologues, gate and residual in the proj and fc2 epilogues', async () => {
  const g = graphOf(ADALN);
  // mean, linear, patchify, linear, silu (shared by the blocks); per block: ada GEMM, qkv GEMM,
  // attention, proj GEMM, fc1 GEMM, fc2 GEMM (the split's parts are read in place); the final
  // layer: ada GEMM, linear
  assert.is(lowerGraph(g).steps.length, 5 + 2 * 6 + 2);
  assert.is(count(g, 'norm'), 0);
  for (const layout of ['node', 'channels-last'] as const) await expectLoweredMatches(g, `DiT blocks (${layout})`, 1e-4, layout);
});

gpuTest('attention with a context: the modulate of x in the q projection, gate and residual in the output projection', async () => {
  const g = graphOf(model([
    '  input ctx : text[c=12, l=5, b]',
    '  sc = linear(mean(x, over: (t, h, w)), 8)',
    '  y = layernorm(x, affine: false) * (1 + sc) + sc',
    '  output o = x + sc * attention(y, over: (h, w), heads: 2, context: ctx)',
  ].join('\n'), '', 'b = 2, c = 8, t = 2, h = 3, w = 4'));
  assert.is(count(g, 'norm') + count(g, 'elementwise'), 0);
  await expectLoweredMatches(g, 'cross-attention');
});

test('what does not fuse: a value read twice, an affine layer norm, a norm along another axis, a non-gate product', () => {
  const g = graphOf(model([
    '  y = linear(x, 8)',
    '  output a = x + y',
    '  output b2 = y * 2 + x',                                   // y read twice: stored
    '  output n1 = linear(layernorm(x), 6)',                     // affine: a norm kernel of its own
    '  output n2 = linear(layernorm(x, affine: false, axis: t), 6)', // normalised along t, contracted along c
    '  output m = linear(layernorm(x, affine: false) * 2, 6)',   // x * 2 is not x * (1 + scale)
  ].join('\n'), '', 'b = 2, c = 8, t = 3, h = 4, w = 5'));
  assert.is(count(g, 'norm'), 3);
  assert.is(count(g, 'elementwise'), 3);
  // a split part read by an elementwise kernel too: the parts are copied (one kernel), not read in place
  const s = graphOf(model([
    '  (p, q) = split(linear(mean(x, over: (t, h, w)), 16), 2)',
    '  output u = linear(layernorm(x, affine: false) * (1 + p) + q, 6)',
    '  output v = q * 2',
  ].join('\n'), '', 'b = 2, c = 8, t = 3, h = 4, w = 5'));
  assert.equal(families(s), ['reduce', 'gemm', 'elementwise', 'gemm', 'elementwise']);
});

test('a training step keeps the values its backward reads: GEMMs fuse only activations there', () => {
  const g = graphOf(`${ADALN}\ndiffusion {\n  schedule linear(beta_start: 1e-4, beta_end: 0.02, steps: 10)\n  predict epsilon\n  loss mse\n}\n`
    .replace('output o = final_layer(z, c0, 8)', 'output o = unpatchify(final_layer(z, c0, 8), (t: 1, h: 2, w: 2))')
    .replace('c0 = linear(mean(x, over: (t, h, w)), 16)', 'input s : timestep[b]\n  c0 = timestep_embedder(s, 16)'));
  const program = lowerTraining(g);
  // the forward's layer norms (two per block, one in the final layer) run as kernels of their own
  const forwardNorms = program.lowered.steps.filter((s) => s.spec.key.startsWith('norm') && !s.label.startsWith('d ') && s.label.includes('(layernorm, node'));
  assert.is(forwardNorms.length, 5);
});

test.run();
