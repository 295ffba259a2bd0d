// The standard-library options of test/compiler/std-fidelity.test.ts lowered onto the adapter:
// stdit_block (the shared t0 plus each block's scale_shift_table, ungated cross-attention),
// resblock with per-frame GroupNorm, mlp with an absolute hidden width and cross_attention without
// its norm, forward against the float64 evaluation and backward against the float64 backward.
import { gpuTest } from '../gpu.ts';
import { test } from 'uvu';
import { graphOf } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';
import { expectLoweredMatches } from './lower-check.ts';

const SPEC = `import "std/dit.vdm"
import "std/conv.vdm"
import "std/attention.vdm"
import "std/layers.vdm"
model Fidelity {
  dims b = 2, c = 4, t = 3, h = 4, w = 4
  input x   : video[b, c, t, h, w]
  input s   : timestep[b]
  input txt : text[b, l=3, c=16]
  temb = timestep_embedder(s, 16, freq: 32)
  t0 = linear(silu(temb), 6 * 16) as t_block
  z = resblock(x, temb, out: 16, groups: 4, per_frame: true) as res
  z = stdit_block(z, t0, txt, 2) as spatial
  z = stdit_block(z, t0, txt, 2, over: t) as temporal
  z = cross_attention(z, txt, 2, norm: false) as cross
  z = z + mlp(layernorm(z), hidden: 24)
  output out = linear(z, c)
}
`;

gpuTest('stdit_block, per-frame resblock, mlp hidden and cross_attention without norm match float64', async () => {
  await expectLoweredMatches(graphOf(SPEC), 'std fidelity');
});

gpuTest('backward: the same spec against the float64 backward (the table, t_block and per-frame norms included)', async () => {
  await expectGradientsMatch(graphOf(SPEC), 'std fidelity', 3e-4);
});

test.run();
