// State dicts in the naming and layout of other implementations, at reduced sizes with seeded
// random values, for the name-map tests (name-maps.test.ts) and the parity tests.
import type { SafeTensor } from '../../src/runtime/safetensors.ts';

/** Writes tensors by name with seeded random values, in the shapes given. */
export function writer(seed: number) {
  let s = seed + 1;
  const rand = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const out: Record<string, SafeTensor> = {};
  const put = (name: string, shape: number[], scale = 0.5) => {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] = { dtype: 'F32', shape, data: Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale) };
  };
  const linear = (name: string, i: number, o: number, bias = true) => { put(`${name}.weight`, [o, i], 1 / Math.sqrt(i)); if (bias) put(`${name}.bias`, [o], 0.2); };
  const norm = (name: string, c: number) => { put(`${name}.weight`, [c]); put(`${name}.bias`, [c]); };
  return { out, put, linear, norm };
}

/**
 * A Latte state dict (Vchitect/Latte models/latte.py, class-conditional): x_embedder.proj a Conv2d
 * [d, C, p, p], t_embedder.mlp.0/2, y_embedder.embedding_table, blocks.N.attn.qkv/proj,
 * mlp.fc1/fc2, adaLN_modulation.1, final_layer.linear/adaLN_modulation.1, and the fixed pos_embed
 * [1, grid², d] and temp_embed [1, frames, d] (random here: vdm ignores them).
 */
export function officialLatte(o: { d: number; depth: number; p: number; c: number; classes: number; grid: number; frames: number; seed: number }): Record<string, SafeTensor> {
  const { d, p, c } = o;
  const w = writer(o.seed);
  w.put('pos_embed', [1, o.grid * o.grid, d]);
  w.put('temp_embed', [1, o.frames, d]);
  w.put('x_embedder.proj.weight', [d, c, p, p], 1 / Math.sqrt(c * p * p));
  w.put('x_embedder.proj.bias', [d], 0.2);
  w.linear('t_embedder.mlp.0', 256, d);
  w.linear('t_embedder.mlp.2', d, d);
  w.put('y_embedder.embedding_table.weight', [o.classes + 1, d]);
  for (let n = 0; n < o.depth; n++) {
    w.linear(`blocks.${n}.attn.qkv`, d, 3 * d);
    w.linear(`blocks.${n}.attn.proj`, d, d);
    w.linear(`blocks.${n}.mlp.fc1`, d, 4 * d);
    w.linear(`blocks.${n}.mlp.fc2`, 4 * d, d);
    w.linear(`blocks.${n}.adaLN_modulation.1`, d, 6 * d);
  }
  w.linear('final_layer.linear', d, p * p * 2 * c);
  w.linear('final_layer.adaLN_modulation.1', d, 2 * d);
  return w.out;
}

/**
 * An Open-Sora 1.2 STDiT3 state dict (hpcaitech/Open-Sora opensora/models/stdit/stdit3.py):
 * x_embedder.proj a Conv3d [d, C, 1, p, p], t_embedder / fps_embedder mlp.0/2, t_block.1,
 * y_embedder.y_proj.fc1/fc2 and the null caption y_embedding [tokens, caption], spatial_blocks.N and
 * temporal_blocks.N (scale_shift_table [6, d], attn.qkv/q_norm/k_norm/proj, cross_attn.q_linear/
 * kv_linear/proj, mlp.fc1/fc2), final_layer.scale_shift_table [2, d] and linear, and rope.freqs.
 */
export function officialSTDiT3(o: { d: number; depth: number; heads: number; p: number; c: number; caption: number; tokens: number; seed: number }): Record<string, SafeTensor> {
  const { d, p, c } = o;
  const dh = d / o.heads;
  const w = writer(o.seed);
  w.put('rope.freqs', [dh / 2]);
  w.put('x_embedder.proj.weight', [d, c, 1, p, p], 1 / Math.sqrt(c * p * p));
  w.put('x_embedder.proj.bias', [d], 0.2);
  for (const e of ['t_embedder', 'fps_embedder']) { w.linear(`${e}.mlp.0`, 256, d); w.linear(`${e}.mlp.2`, d, d); }
  w.linear('t_block.1', d, 6 * d);
  w.linear('y_embedder.y_proj.fc1', o.caption, d);
  w.linear('y_embedder.y_proj.fc2', d, d);
  w.put('y_embedder.y_embedding', [o.tokens, o.caption]);
  for (const kind of ['spatial', 'temporal']) {
    for (let n = 0; n < o.depth; n++) {
      const b = `${kind}_blocks.${n}`;
      w.put(`${b}.scale_shift_table`, [6, d], 1 / Math.sqrt(d));
      w.linear(`${b}.attn.qkv`, d, 3 * d);
      w.put(`${b}.attn.q_norm.weight`, [dh]);
      w.put(`${b}.attn.k_norm.weight`, [dh]);
      w.linear(`${b}.attn.proj`, d, d);
      w.linear(`${b}.cross_attn.q_linear`, d, d);
      w.linear(`${b}.cross_attn.kv_linear`, d, 2 * d);
      w.linear(`${b}.cross_attn.proj`, d, d);
      w.linear(`${b}.mlp.fc1`, d, 4 * d);
      w.linear(`${b}.mlp.fc2`, 4 * d, d);
    }
  }
  w.put('final_layer.scale_shift_table', [2, d], 1 / Math.sqrt(d));
  w.linear('final_layer.linear', d, p * p * 2 * c);
  return w.out;
}

/**
 * A CogVideoX 1.0 state dict (diffusers models/transformers/cogvideox_transformer_3d.py,
 * CogVideoXTransformer3DModel): patch_embed.proj a Conv2d [d, C, p, p], patch_embed.text_proj,
 * the position buffer patch_embed.pos_embedding [1, tokens + patches, d] (random here: vdm
 * ignores it), time_embedding.linear_1/2, transformer_blocks.N (norm1/norm2 .linear/.norm,
 * attn1.to_q/to_k/to_v/norm_q/norm_k/to_out.0, ff.net.0.proj/ff.net.2), norm_final,
 * norm_out.linear/norm, and proj_out [p * p * C, d] with its outputs ordered (c, p_h, p_w).
 */
export function officialCogVideoX(o: { d: number; depth: number; heads: number; temb: number; p: number; c: number; caption: number; tokens: number; patches: number; seed: number }): Record<string, SafeTensor> {
  const { d, p, c } = o;
  const dh = d / o.heads;
  const w = writer(o.seed);
  w.put('patch_embed.proj.weight', [d, c, p, p], 1 / Math.sqrt(c * p * p));
  w.put('patch_embed.proj.bias', [d], 0.2);
  w.linear('patch_embed.text_proj', o.caption, d);
  w.put('patch_embed.pos_embedding', [1, o.tokens + o.patches, d]);
  w.linear('time_embedding.linear_1', d, o.temb);
  w.linear('time_embedding.linear_2', o.temb, o.temb);
  for (let n = 0; n < o.depth; n++) {
    const b = `transformer_blocks.${n}`;
    for (const norm of ['norm1', 'norm2']) { w.linear(`${b}.${norm}.linear`, o.temb, 6 * d); w.norm(`${b}.${norm}.norm`, d); }
    for (const x of ['to_q', 'to_k', 'to_v', 'to_out.0']) w.linear(`${b}.attn1.${x}`, d, d);
    w.norm(`${b}.attn1.norm_q`, dh);
    w.norm(`${b}.attn1.norm_k`, dh);
    w.linear(`${b}.ff.net.0.proj`, d, 4 * d);
    w.linear(`${b}.ff.net.2`, 4 * d, d);
  }
  w.norm('norm_final', d);
  w.linear('norm_out.linear', o.temb, 2 * d);
  w.norm('norm_out.norm', d);
  w.linear('proj_out', d, p * p * c);
  return w.out;
}
