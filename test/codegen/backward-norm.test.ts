// GPU backward of the normalisations (layernorm, rmsnorm, groupnorm) and of adaLN modulation,
// against the float64 backward rules. A linear before each norm puts a parameter upstream, so dx is
// checked through it; a norm of the input x itself has no dx (the row kernel writes statistics only).
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';

// Rows that send dx upstream hold at least 5 values or use eps 0.01: a short row of nearly equal
// values has a huge 1 / std, which amplifies the f32 forward's rounding past the tolerance.
const DIMS = 'b = 2, c = 6, t = 3, h = 3, w = 5';
/** x projected, then with t moved last ([b, c, h, w, t]): an operand in another axis order. */
const tLast = '  e = expand(mean(linear(x, 6) as pe, over: t), sizes: (t: 3)) * linear(x, 6) as pf';

gpuTest('layernorm along c, t and w, rmsnorm along w and c, affine and not, on x, on a linear and on a [.., t] last operand', async () => {
  const g = graphOf(model([
    tLast,
    '  y = linear(x, 6) as proj',
    '  output a = layernorm(y) + layernorm(y, axis: t, eps: 0.01, affine: false)',
    '  output r = rmsnorm(y, axis: w, eps: 0.01) * rmsnorm(e, affine: false)',
    '  output n = layernorm(e, axis: w, eps: 0.01) - rmsnorm(e)',
    '  output i = layernorm(x, axis: t) + rmsnorm(x, axis: w)',
  ].join('\n'), '', DIMS));
  await expectGradientsMatch(g, 'axis norms');
});

gpuTest('groupnorm: default over, over (w, h) with t a batch row, over (w, t) on a [.., t] last operand, on x', async () => {
  const g = graphOf(model([
    tLast,
    '  y = linear(x, 6) as proj',
    '  output a = groupnorm(y, groups: 2, eps: 0.01)',
    '  output b2 = groupnorm(y, groups: 3, over: (w, h), eps: 0.01) * groupnorm(e, groups: 3, over: (w, t), affine: false)',
    '  output i = groupnorm(x, groups: 3, eps: 0.01)',
  ].join('\n'), '', DIMS));
  await expectGradientsMatch(g, 'groupnorm');
});

// One block only: a second normalisation of the block's output compounds the f32 forward's rounding
// to near the tolerance.
gpuTest('adaLN: a DiT block without attention, modulate(layernorm(affine: false)) with shift, scale and gate from linear(silu(cond))', async () => {
  const g = graphOf(model([
    '  cond = mean(x, over: (t, h, w))',
    '  h0 = linear(x, 8) as proj',
    '  (shift, scale, gate) = split(linear(silu(cond), 24) as ada, 3)',
    '  output o = h0 + gate * linear(modulate(layernorm(h0, affine: false, eps: 1e-6), shift, scale), 8) as mix',
  ].join('\n'), 'import "std/layers.vdm"', 'b = 2, c = 8, t = 2, h = 3, w = 5'));
  assert.ok(g.nodes.some((n) => n.op === 'layernorm' && n.attrs.affine === false && n.params.length === 0));
  await expectGradientsMatch(g, 'adaLN');
});

test.run();
