// specs/cogvideox-2b.vdm against diffusers' CogVideoXTransformer3DModel with the THUDM/CogVideoX-2b
// config (src/diffusers/models/transformers/cogvideox_transformer_3d.py): 1,693,783,872 parameters,
// 56,081,536 in each of the 30 blocks, and each module's count from the official layer shapes
// (inner 1920 = 30 heads x 64, time embedding 512, T5 4096, patch 2, 16 latent channels). The 3D
// sine-cosine position table is a buffer in both. The count does not depend on the video's size.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specParams } from './helpers.ts';

const spec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../specs/cogvideox-2b.vdm');

const paramsOf = (dims: Record<string, number> = {}) => specParams(spec, dims);

/** The parameters under a path prefix. */
const under = (byPath: Map<string, number>, prefix: string) =>
  [...byPath].filter(([p]) => p.startsWith(prefix)).reduce((s, [, n]) => s + n, 0);

// The official modules by their layer shapes.
const D = 1920, DH = 64, TEMB = 512, TEXT = 4096, P = 2, C = 16;
const linear = (i: number, o: number) => i * o + o;
const layerNorm = (n: number) => 2 * n;
const OFFICIAL = {
  norm1: linear(TEMB, 6 * D) + layerNorm(D), // CogVideoXLayerNormZero
  attn1: 4 * linear(D, D) + 2 * layerNorm(DH), // to_q, to_k, to_v, to_out.0, norm_q, norm_k
  norm2: linear(TEMB, 6 * D) + layerNorm(D),
  ff: linear(D, 4 * D) + linear(4 * D, D),
};
const BLOCK = Object.values(OFFICIAL).reduce((a, b) => a + b, 0);
const OUTSIDE = {
  'patch_embed.proj.': C * P * P * D + D, // Conv2d(16, 1920, 2, stride 2)
  'patch_embed.text_proj.': linear(TEXT, D),
  'time_embedding.': linear(D, TEMB) + linear(TEMB, TEMB),
  'final_layer.norm_final.': layerNorm(D),
  'final_layer.norm_out.': linear(TEMB, 2 * D) + layerNorm(D), // AdaLayerNorm
  'final_layer.proj_out.': linear(D, P * P * C),
};

test('CogVideoX-2B: 1,693,783,872 parameters, diffusers\' count', () => {
  assert.is(30 * BLOCK + Object.values(OUTSIDE).reduce((a, b) => a + b, 0), 1_693_783_872);
  assert.is(paramsOf().total, 1_693_783_872);
});

test('CogVideoX-2B: every block has the official 56,081,536, module by module', () => {
  const { byPath } = paramsOf();
  assert.is(BLOCK, 56_081_536);
  assert.equal(OFFICIAL, { norm1: 5_913_600, attn1: 14_753_536, norm2: 5_913_600, ff: 29_500_800 });
  for (const i of [0, 14, 29]) {
    const prefix = `transformer_blocks.${i}.`;
    assert.is(under(byPath, prefix), BLOCK, prefix);
    for (const [m, n] of Object.entries(OFFICIAL)) assert.is(under(byPath, `${prefix}${m}.`), n, `${prefix}${m}`);
  }
  assert.not.ok([...byPath.keys()].some((p) => p.startsWith('transformer_blocks.30.')), 'exactly 30 blocks');
});

test('CogVideoX-2B: patch and text embedding, time embedding and output head as the official modules', () => {
  const { byPath } = paramsOf();
  for (const [prefix, n] of Object.entries(OUTSIDE)) assert.is(under(byPath, prefix), n, prefix);
});

test('CogVideoX-2B: the count does not change with the number of frames or the frame size', () => {
  const base = paramsOf().total;
  assert.is(paramsOf({ t: 4, h: 16, w: 24 }).total, base);
  assert.is(paramsOf({ b: 2, t: 7, h: 32, w: 48 }).total, base);
});

test.run();
