// The built-in name maps besides dit: latte (Vchitect/Latte models/latte.py), swin (Video Swin
// Transformer's mmaction checkpoints), diffusers (its attention, feed-forward, ResBlock and
// timestep-embedding names), opensora (STDiT3) and cogvideox (diffusers' CogVideoX transformer,
// whose converted parameters are also run through vdm's float64 reference against the official
// patch embedding and proj_out + unpatchify). Each test writes a state dict the way that implementation names and
// lays out its tensors (at reduced sizes, random values), converts it to vdm's parameters and back
// bit for bit, checks the tensors converted by rule (a packed qkv split into to_q / to_k / to_v,
// Swin's patch merging taken as it is) entry by entry, and that a tensor in the other layout or a name
// the map does not take is refused by name. No Python needed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import { checkSpec, initialParams } from '../../src/pipeline.ts';
import { evaluate, exampleInputs } from '../../src/compiler/reference/evaluate.ts';
import { ConvertError, torchToVdmParams, vdmToTorchParams } from '../../src/interop/convert.ts';
import { IDENTITY_MAP, loadNameMap, mapName, NameMapError, toVdmName, type NameMap } from '../../src/interop/name-maps.ts';
import { ExportError, exportTorch } from '../../src/interop/torch-export.ts';
import type { SafeTensor } from '../../src/runtime/safetensors.ts';
import { officialCogVideoX, officialLatte, officialSTDiT3, writer } from './official-state-dicts.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-maps-'));

const graphOf = (file: string, dims: Record<string, number>): Graph => {
  const c = checkSpec(file, { dims });
  if (!c.ok) throw new Error(`${file}: ${c.diagnostics.map((d) => d.message).join('; ')}`);
  return c.model.graph;
};

/** A spec of specs/ with some of its text replaced (each replacement must occur). */
function narrowed(name: string, edits: readonly (readonly [string, string])[]): string {
  let text = fs.readFileSync(path.join(repo, 'specs', name), 'utf8');
  for (const [from, to] of edits) {
    assert.ok(text.includes(from), `${name} no longer contains ${from}`);
    text = text.split(from).join(to);
  }
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const f32 = (t: SafeTensor) => t.data as Float32Array;
const bits = (t: SafeTensor) => { const d = t.data as Float32Array; return Buffer.from(d.buffer, d.byteOffset, d.byteLength); };

/**
 * state dict -> vdm -> state dict under `map`: every tensor the map takes comes back bit for bit
 * under its name and shape; returns the conversion to vdm.
 */
function roundTrip(graph: Graph, official: Record<string, SafeTensor>, map: NameMap) {
  const toVdm = torchToVdmParams(graph, official, map);
  assert.equal(toVdm.unmatched, [], 'every tensor of the file is taken or ignored');
  const back = vdmToTorchParams(graph, toVdm.tensors, map).tensors;
  const ignored = new Set(toVdm.ignored.map(([n]) => n));
  assert.equal(Object.keys(back).sort(), Object.keys(official).filter((n) => !ignored.has(n)).sort());
  for (const [name, t] of Object.entries(back)) {
    assert.equal(t.shape, official[name].shape, name);
    assert.ok(bits(t).equals(bits(official[name])), `${name} changed in the round trip`);
  }
  return toVdm;
}

/** The conversion's error, which must be a ConvertError. */
function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.instance(e, ConvertError);
    return (e as Error).message;
  }
  assert.unreachable('the state dict was accepted');
  return '';
}

// ---------------------------------------------------------------- latte

test('latte: an official Latte state dict (models/latte.py naming and layout) converts and round-trips; export --map latte names the module so', () => {
  const file = narrowed('latte-factorized.vdm', [['let d = 384, depth = 12, heads = 6, p = 2', 'let d = 32, depth = 4, heads = 4, p = 2']]);
  const graph = graphOf(file, { b: 1, t: 4, h: 8, w: 8 });
  const d = 32;
  const w = { out: officialLatte({ d, depth: 4, p: 2, c: 4, classes: 101, grid: 4, frames: 4, seed: 11 }) };
  const latte = loadNameMap('latte');
  const r = roundTrip(graph, w.out, latte);
  assert.equal(r.ignored.map(([n]) => n), ['pos_embed', 'temp_embed']);
  assert.equal(r.rules, { 'patch-conv': 1, transpose: 24, same: 26 });
  // nn.Linear [out, in] -> vdm [in, out]: blocks.3.adaLN_modulation.1.weight[o, i] is blocks.3.ada.weight[i, o]
  const ada = r.tensors['blocks.3.ada.weight'].data, off = w.out['blocks.3.adaLN_modulation.1.weight'].data;
  for (const [o, i] of [[0, 0], [100, 7], [191, 31]]) assert.is(ada[i * 6 * d + o], off[o * d + i]);
  // The exported module takes the same names (a Latte checkpoint loads with strict=True).
  const { source } = exportTorch(graph, { map: latte });
  assert.match(source, /self\.adaLN_modulation = nn\.ModuleDict\(\{'1': nn\.Linear\(32, 192\)\}\)/);
  assert.match(source, /self\.mlp = nn\.ModuleDict\(\{'0': nn\.Linear\(256, 32\), '2': nn\.Linear\(32, 32\)\}\)/);
  // a weight in vdm's layout, and a name Latte does not use, are refused by name
  const flipped = { ...w.out, 'blocks.1.mlp.fc1.weight': { dtype: 'F32', shape: [d, 4 * d], data: w.out['blocks.1.mlp.fc1.weight'].data } } as Record<string, SafeTensor>;
  assert.match(refusal(() => torchToVdmParams(graph, flipped, latte)), /blocks\.1\.mlp\.fc1\.weight is \[32, 128\]: vdm's layout, not PyTorch's \[128, 32\] \(nn\.Linear keeps \[out, in\]/);
  const renamed = { ...w.out } as Record<string, SafeTensor>;
  renamed['blocks.2.adaLN.weight'] = renamed['blocks.2.adaLN_modulation.1.weight'];
  delete renamed['blocks.2.adaLN_modulation.1.weight'];
  const m = refusal(() => torchToVdmParams(graph, renamed, latte));
  assert.match(m, /missing blocks\.2\.adaLN_modulation\.1\.weight \[192, 32\] \(vdm's blocks\.2\.ada\.weight\)/);
  assert.match(m, /the file's 1 tensor that no parameter takes under map latte: blocks\.2\.adaLN\.weight \(another naming\? --map dit\|swin\|diffusers\|opensora\|cogvideox or a JSON map\)/);
});

// ---------------------------------------------------------------- opensora

test('opensora: an official STDiT3 state dict (stdit3.py naming, Conv3d patch embedding) converts and round-trips', () => {
  const file = narrowed('stdit3-xl-2.vdm', [['let d = 1152, depth = 28, heads = 16, p = 2', 'let d = 32, depth = 2, heads = 2, p = 2'], ['l=300, c=4096', 'l=5, c=16']]);
  const graph = graphOf(file, { b: 1, t: 2, h: 8, w: 8 });
  const d = 32, C = 4, p = 2;
  const official = officialSTDiT3({ d, depth: 2, heads: 2, p, c: C, caption: 16, tokens: 5, seed: 17 });
  const map = loadNameMap('opensora');
  const r = roundTrip(graph, official, map);
  assert.equal(r.ignored.map(([n]) => n), ['rope.freqs', 'y_embedder.y_embedding']);
  // 8 Linear weights outside the blocks and 7 in each of 4 blocks; tables, norms and biases as they are
  assert.equal(r.rules, { 'patch-conv': 1, transpose: 8 + 4 * 7, same: Object.keys(official).length - 2 - 1 - 8 - 4 * 7 });
  // Conv3d [d, C, 1, p, p] -> patchify + linear [(1 * p * p) * C, d]: row (i * p + j) * C + c, column o
  const conv = official['x_embedder.proj.weight'].data, lin = r.tensors['x_embedder.proj.weight'].data;
  assert.equal(r.tensors['x_embedder.proj.weight'].shape, [p * p * C, d]);
  for (const [o, c, i, j] of [[0, 0, 0, 0], [5, 3, 1, 0], [31, 2, 0, 1], [17, 1, 1, 1]]) {
    assert.is(lin[((i * p + j) * C + c) * d + o], conv[((o * C + c) * p + i) * p + j], `o=${o} c=${c} (${i}, ${j})`);
  }
  // the bare tables land on vdm's .weight, row for row; kv_linear [2d, d] is kv [d, 2d] transposed
  assert.ok(bits(r.tensors['blocks.1.temporal.scale_shift_table.weight']).equals(bits(official['temporal_blocks.1.scale_shift_table'])));
  const kv = r.tensors['blocks.0.spatial.cross_attn.kv.weight'].data, kvOff = official['spatial_blocks.0.cross_attn.kv_linear.weight'].data;
  for (const [o, i] of [[0, 0], [40, 3], [63, 31]]) assert.is(kv[i * 2 * d + o], kvOff[o * d + i]);
  // a Conv2d-shaped patch embedding (DiT's) is refused by name and shape, not reshaped silently
  const flat = { ...official, 'x_embedder.proj.weight': { dtype: 'F32', shape: [d, C, p, p], data: conv } } as Record<string, SafeTensor>;
  assert.match(refusal(() => torchToVdmParams(graph, flat, map)), /x_embedder\.proj\.weight is \[32, 4, 2, 2\]/);
  // export with this map is refused (blocks move, the kernel keeps a size-1 axis): export without it and convert
  assert.throws(() => exportTorch(graph, { map }), (e: unknown) => e instanceof ExportError);
});

// ---------------------------------------------------------------- cogvideox

test('cogvideox: a diffusers CogVideoXTransformer3DModel state dict (to_q/to_k/to_v joined, Conv2d patch embedding, proj_out in (c, p_h, p_w)) converts by rule, round-trips and gives the official output', () => {
  const file = narrowed('cogvideox-2b.vdm', [['let heads = 30, dim_head = 64, depth = 30, p = 2, temb_dim = 512', 'let heads = 2, dim_head = 16, depth = 2, p = 2, temb_dim = 24'], ['l=226, c=4096', 'l=5, c=16']]);
  // h / p = 3, w / p = 2: a swap of h and w would show
  const F = 2, H = 6, W = 4, C = 4, p = 2, d = 32;
  const graph = graphOf(file, { b: 1, c: C, t: F, h: H, w: W });
  const official = officialCogVideoX({ d, depth: 2, heads: 2, temb: 24, p, c: C, caption: 16, tokens: 5, patches: F * (H / p) * (W / p), seed: 23 });
  const map = loadNameMap('cogvideox');
  const r = roundTrip(graph, official, map);
  assert.equal(r.ignored.map(([n]) => n), ['patch_embed.pos_embedding']);
  // Linear weights: time 2, text_proj, 6 in each of 2 blocks, norm_out.linear, proj_out; qkv weight and bias joined; proj_out weight and bias reordered
  const vdmCount = graph.nodes.reduce((n, x) => n + x.params.length, 0);
  assert.equal(r.rules, { 'patch-conv': 1, transpose: 2 + 1 + 2 * 6 + 2, same: vdmCount - 1 - 17, split: 2 * 2, reordered: 2 });
  assert.is(Object.keys(official).length - 1, vdmCount + 2 * 2 * 2, 'to_q, to_k, to_v are one qkv (weight and bias) in each block');
  // q | k | v columns of vdm's qkv [d, 3d] are the rows of to_q, to_k, to_v [d, d]
  const qkv = f32(r.tensors['transformer_blocks.1.attn1.qkv.weight']), qkvBias = f32(r.tensors['transformer_blocks.1.attn1.qkv.bias']);
  for (const [part, name] of ['to_q', 'to_k', 'to_v'].entries()) {
    const src = f32(official[`transformer_blocks.1.attn1.${name}.weight`]);
    for (const [o, i] of [[0, 0], [3, 17], [31, 5], [20, 31]]) assert.is(qkv[i * 3 * d + part * d + o], src[o * d + i], `${name}[${o}, ${i}]`);
    assert.is(qkvBias[part * d + 7], f32(official[`transformer_blocks.1.attn1.${name}.bias`])[7]);
  }
  assert.ok(bits(r.tensors['transformer_blocks.0.attn1.k_norm.bias']).equals(bits(official['transformer_blocks.0.attn1.norm_k.bias'])));
  // Conv2d [d, C, p, p] -> patchify + linear [(p_h p_w) C, d]: row (i * p + j) * C + c, column o
  const conv = f32(official['patch_embed.proj.weight']), lin = f32(r.tensors['patch_embed.proj.weight']);
  for (const [o, c, i, j] of [[0, 0, 0, 0], [5, 3, 1, 0], [31, 2, 0, 1], [17, 1, 1, 1]]) {
    assert.is(lin[((i * p + j) * C + c) * d + o], conv[((o * C + c) * p + i) * p + j], `patch o=${o} c=${c} (${i}, ${j})`);
  }
  // proj_out [p p C, d], outputs (c, p_h, p_w) -> vdm [d, p p C], outputs (p_h, p_w, c)
  const out = f32(r.tensors['final_layer.proj_out.weight']), offOut = f32(official['proj_out.weight']);
  const outBias = f32(r.tensors['final_layer.proj_out.bias']), offBias = f32(official['proj_out.bias']);
  for (const [c, i, j, k] of [[0, 0, 0, 0], [3, 1, 0, 9], [1, 0, 1, 31], [2, 1, 1, 14]]) {
    assert.is(out[k * p * p * C + (i * p + j) * C + c], offOut[((c * p + i) * p + j) * d + k], `proj_out c=${c} (${i}, ${j}) in ${k}`);
    assert.is(outBias[(i * p + j) * C + c], offBias[(c * p + i) * p + j]);
  }
  // Forward: vdm's float64 evaluation with the converted parameters; its patch embedding is the
  // official Conv2d of the input, and its output the official proj_out + unpatchify of the tokens
  // that reach proj_out (diffusers: reshape(B, F, H/p, W/p, C, p, p), permute(0, 1, 4, 2, 5, 3, 6)).
  const params = new Map(Object.entries(r.tensors).map(([k, t]) => [k, Float64Array.from(t.data as Float32Array)]));
  const inputs = exampleInputs(graph, 5);
  const ev = evaluate(graph, inputs, params);
  const at = (v: { axes: readonly (readonly [string, number])[]; data: Float64Array }, idx: Record<string, number>) =>
    v.data[v.axes.reduce((off, [n, s]) => off * s + idx[n], 0)];
  const x = inputs.get('x')!;
  const node = (path: string) => graph.nodes.findIndex((n) => n.path === path && n.op === 'linear');
  const embedded = ev.values[node('patch_embed.proj')];
  const convBias = f32(official['patch_embed.proj.bias']);
  let worst = 0;
  for (const [o, f, hh, ww] of [[0, 0, 0, 0], [7, 1, 2, 1], [31, 0, 1, 0], [12, 1, 0, 1]]) {
    let want = convBias[o];
    for (let c = 0; c < C; c++) for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) want += conv[((o * C + c) * p + i) * p + j] * at(x, { b: 0, c, t: f, h: hh * p + i, w: ww * p + j });
    worst = Math.max(worst, Math.abs(at(embedded, { b: 0, c: o, t: f, h: hh, w: ww }) - want));
  }
  const projNode = graph.nodes[node('final_layer.proj_out')];
  const tokens = ev.values[projNode.inputs[0]];
  const video = ev.outputs.get('out')!;
  const h = H / p, w = W / p;
  for (let f = 0; f < F; f++) for (let hh = 0; hh < h; hh++) for (let ww = 0; ww < w; ww++) {
    const n = (f * h + hh) * w + ww;
    for (let k = 0; k < p * p * C; k++) {
      let y = offBias[k];
      for (let i = 0; i < d; i++) y += offOut[k * d + i] * at(tokens, { b: 0, c: i, n });
      const c = Math.floor(k / (p * p)), i = Math.floor(k / p) % p, j = k % p;
      worst = Math.max(worst, Math.abs(at(video, { b: 0, c, t: f, h: hh * p + i, w: ww * p + j }) - y));
    }
  }
  assert.ok(worst < 1e-12, `vdm's float64 output differs from the official computation by ${worst}`);
  // without the reorder (the outputs taken in vdm's order) the same tokens give another video
  const unordered = new Map(params);
  unordered.set('final_layer.proj_out.weight', Float64Array.from({ length: d * p * p * C }, (_, i) => offOut[(i % (p * p * C)) * d + Math.floor(i / (p * p * C))]));
  const other = evaluate(graph, inputs, unordered).outputs.get('out')!;
  assert.ok(other.data.some((v, i) => Math.abs(v - video.data[i]) > 1e-6), 'proj_out taken without the reorder must change the output');
  // a to_q in vdm's layout, a missing to_v, and export with the map are refused
  const flipped = { ...official, 'transformer_blocks.0.attn1.to_q.weight': { dtype: 'F32', shape: [d, d + 1], data: new Float32Array(d * (d + 1)) } } as Record<string, SafeTensor>;
  assert.match(refusal(() => torchToVdmParams(graph, flipped, map)), /transformer_blocks\.0\.attn1\.to_q\.weight is \[32, 33\] in the file/);
  const partial = { ...official } as Record<string, SafeTensor>;
  delete partial['transformer_blocks.1.attn1.to_v.bias'];
  assert.match(refusal(() => torchToVdmParams(graph, partial, map)), /missing transformer_blocks\.1\.attn1\.to_v\.bias \[32\] \(vdm's transformer_blocks\.1\.attn1\.qkv\.bias, part 3 of 3\)/);
  assert.throws(() => exportTorch(graph, { map }), (e: unknown) => e instanceof ExportError);
});

// ---------------------------------------------------------------- swin

const SWIN_WIDTHS = [8, 16, 32, 64], SWIN_HEADS = [2, 2, 4, 4], SWIN_WINDOW = [2, 4, 4];

/** Video Swin's relative_position_index for a window (WindowAttention3D): query minus key, t most significant. */
function swinIndex(win: readonly number[]): BigInt64Array {
  const N = win[0] * win[1] * win[2];
  const coord = (i: number) => [Math.floor(i / (win[1] * win[2])), Math.floor(i / win[2]) % win[1], i % win[2]];
  const out = new BigInt64Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      const [a, b] = [coord(i), coord(j)];
      const r = a.map((x, k) => x - b[k] + win[k] - 1);
      out[i * N + j] = BigInt(r[0] * (2 * win[1] - 1) * (2 * win[2] - 1) + r[1] * (2 * win[2] - 1) + r[2]);
    }
  }
  return out;
}

test('swin: a Video Swin checkpoint (mmaction naming: backbone.*, relative_position_bias_table, patch merging in its own order) converts by rule and round-trips', () => {
  const file = narrowed('video-swin.vdm', [
    ['let widths = (96, 192, 384, 768), depths = (2, 2, 6, 2), heads = (3, 6, 12, 24)', `let widths = (${SWIN_WIDTHS.join(', ')}), depths = (2, 2, 2, 2), heads = (${SWIN_HEADS.join(', ')})`],
    ['window: (8, 7, 7)', `window: (${SWIN_WINDOW.join(', ')})`], ['c=96,', 'c=8,'], ['c=768,', 'c=64,'],
  ]);
  // 128 x 128 pixels: 32 x 32 tokens in the first stage, 4 x 4 in the last, none smaller than the window
  const graph = graphOf(file, { b: 1, t: 4, h: 128, w: 128 });
  const w = writer(5);
  const [t, h] = SWIN_WINDOW.map((x) => 2 * x - 1);
  const N = SWIN_WINDOW[0] * SWIN_WINDOW[1] * SWIN_WINDOW[2];
  w.put('backbone.patch_embed.proj.weight', [8, 3, 2, 4, 4]);
  w.put('backbone.patch_embed.proj.bias', [8]);
  w.norm('backbone.patch_embed.norm', 8);
  SWIN_WIDTHS.forEach((c, i) => {
    for (let j = 0; j < 2; j++) {
      const b = `backbone.layers.${i}.blocks.${j}`;
      w.norm(`${b}.norm1`, c);
      w.put(`${b}.attn.relative_position_bias_table`, [t * h * h, SWIN_HEADS[i]]);
      w.out[`${b}.attn.relative_position_index`] = { dtype: 'I64', shape: [N, N], data: swinIndex(SWIN_WINDOW) };
      w.linear(`${b}.attn.qkv`, c, 3 * c);
      w.linear(`${b}.attn.proj`, c, c);
      w.norm(`${b}.norm2`, c);
      w.linear(`${b}.mlp.fc1`, c, 4 * c);
      w.linear(`${b}.mlp.fc2`, 4 * c, c);
    }
    if (i < 3) {
      w.norm(`backbone.layers.${i}.downsample.norm`, 4 * c);
      w.linear(`backbone.layers.${i}.downsample.reduction`, 4 * c, 2 * c, false);
    }
  });
  w.norm('backbone.norm', 64);
  w.linear('cls_head.fc_cls', 64, 400);
  // The denoiser's own layers (timestep, time_proj, decoder, head) have no Swin counterpart: vdm's names, PyTorch's layout.
  const own = vdmToTorchParams(graph, Object.fromEntries([...initialParams(graph, { perturb: true, seed: 2 })].map(([k, v]) => [k, { dtype: 'F32', shape: [...graph.nodes.flatMap((n) => n.params).find((p) => p.path === k)!.shape], data: Float32Array.from(v) }])), IDENTITY_MAP).tensors;
  for (const [k, v] of Object.entries(own)) if (!/^(patch_embed|layers\.\d+\.(blocks|downsample)|norm\.)/.test(k)) w.out[k] = v;
  const swin = loadNameMap('swin');
  const r = roundTrip(graph, w.out, swin);
  assert.equal(r.ignored.length, 8 + 2, 'every relative_position_index and the classification head');
  assert.ok(r.ignored.some(([n, why]) => n === 'cls_head.fc_cls.weight' && /classification head/.test(why)));
  assert.is(r.rules.reordered, undefined, 'patch merging concatenates the neighbours in the official order: nothing reordered');
  // patch merging: Swin's feature (dw * 2 + dh) * C + c is vdm's own (patchify order (w, h)); only nn.Linear's [out, in] is transposed
  const C = 16;
  const red = r.tensors['layers.1.downsample.reduction.weight'].data, sred = w.out['backbone.layers.1.downsample.reduction.weight'].data;
  for (const [o, f] of [[0, 1], [5, 35], [31, 63], [7, 20]]) assert.is(red[f * 2 * C + o], sred[o * 4 * C + f], `reduction o=${o} f=${f}`);
  assert.ok(bits(r.tensors['layers.1.downsample.norm.weight']).equals(bits(w.out['backbone.layers.1.downsample.norm.weight'])));
  // the table is taken as it is: Swin's index is vdm's row order (query minus key + w - 1, t most significant)
  const radix = [h * h, h, 1];
  const pos = (i: number) => [Math.floor(i / 16), Math.floor(i / 4) % 4, i % 4];
  const idx = swinIndex(SWIN_WINDOW);
  for (const [i, j] of [[0, 31], [31, 0], [17, 6], [9, 9]]) {
    assert.is(Number(idx[i * N + j]), pos(i).reduce((acc, q, k) => acc + (q - pos(j)[k] + SWIN_WINDOW[k] - 1) * radix[k], 0));
  }
  assert.ok(bits(r.tensors['layers.2.blocks.1.attn.rel_bias']).equals(bits(w.out['backbone.layers.2.blocks.1.attn.relative_position_bias_table'])));
  // a qkv weight in vdm's layout, and a renamed final norm, are refused by name
  const bad = { ...w.out, 'backbone.layers.0.blocks.1.attn.qkv.weight': { dtype: 'F32', shape: [8, 24], data: w.out['backbone.layers.0.blocks.1.attn.qkv.weight'].data } } as Record<string, SafeTensor>;
  assert.match(refusal(() => torchToVdmParams(graph, bad, swin)), /backbone\.layers\.0\.blocks\.1\.attn\.qkv\.weight is \[8, 24\]: vdm's layout, not PyTorch's \[24, 8\]/);
  const renamed = { ...w.out } as Record<string, SafeTensor>;
  renamed['backbone.norm3.weight'] = renamed['backbone.norm.weight'];
  delete renamed['backbone.norm.weight'];
  assert.match(refusal(() => torchToVdmParams(graph, renamed, swin)), /missing backbone\.norm\.weight \[64\] \(vdm's norm\.weight\)[^]*no parameter takes under map swin: backbone\.norm3\.weight/);
  // the map only renames now, but moves layers under backbone., so export keeps vdm's names; its patch merging is in Swin's order
  assert.throws(() => exportTorch(graph, { map: swin }), (e: Error) => e instanceof ExportError && /map swin moves patch_embed\.proj out of its block/.test(e.message));
  assert.match(exportTorch(graph).source, /patchify\([^\n]*\{'h': 2, 'w': 2\}, order=\('w', 'h'\)\)/);
});

// ---------------------------------------------------------------- diffusers

test('diffusers: attention (to_q/to_k/to_v/to_out.0, self and cross), ff.net.0.proj/ff.net.2, ResBlock and timestep-embedding names convert by rule and round-trip', () => {
  const file = path.join(dir, 'unet-bits.vdm');
  fs.writeFileSync(file, `import "std/conv.vdm"
import "std/attention.vdm"
import "std/unet.vdm"
import "std/layers.vdm"

model UNetBits {
  dims b = 1, c = 4, t = 2, h = 8, w = 8
  input x   : video[b, c, t, h, w]
  input s   : timestep[b]
  input txt : text[b, l=3, c=12]
  temb = time_embedding(s, 8) as time_embed
  z = conv(x, over: (h, w), kernel: 3, out: 16) as conv_in
  z = resblock(z, temb, out: 24, groups: 4) as res
  z = spatial_attention(z, 4) as spatial
  z = cross_attention(z, txt, 4) as cross
  z = z + mlp(layernorm(z) as norm, ratio: 2)
  output o : video[b, c, t, h, w] = conv(z, over: (h, w), kernel: 3, out: 4) as conv_out
}
`);
  const graph = graphOf(file, {});
  const w = writer(9);
  w.linear('time_embed.linear_1', 8, 32);
  w.linear('time_embed.linear_2', 32, 32);
  w.put('conv_in.weight', [16, 4, 3, 3]);
  w.put('conv_in.bias', [16]);
  w.norm('res.norm1', 16);
  w.put('res.conv1.weight', [24, 16, 3, 3]);
  w.put('res.conv1.bias', [24]);
  w.linear('res.time_emb_proj', 32, 24);
  w.norm('res.norm2', 24);
  w.put('res.conv2.weight', [24, 24, 3, 3]);
  w.put('res.conv2.bias', [24]);
  w.put('res.conv_shortcut.weight', [24, 16, 1, 1]);
  w.put('res.conv_shortcut.bias', [24]);
  w.norm('spatial.norm', 24);
  for (const x of ['to_q', 'to_k', 'to_v', 'to_out.0']) w.linear(`spatial.attn.${x}`, 24, 24);
  w.norm('cross.norm', 24);
  w.linear('cross.attn.to_q', 24, 24);
  w.linear('cross.attn.to_k', 12, 24);
  w.linear('cross.attn.to_v', 12, 24);
  w.linear('cross.attn.to_out.0', 24, 24);
  w.norm('norm', 24);
  w.linear('ff.net.0.proj', 24, 48);
  w.linear('ff.net.2', 48, 24);
  w.put('conv_out.weight', [4, 24, 3, 3]);
  w.put('conv_out.bias', [4]);
  const diffusers = loadNameMap('diffusers');
  const r = roundTrip(graph, w.out, diffusers);
  assert.is(r.rules.split, 4, 'qkv weight and bias, kv weight and bias');
  // q | k | v columns of vdm's qkv [c, 3c] are the rows of to_q, to_k, to_v [c, c]
  const qkv = r.tensors['spatial.attn.qkv.weight'].data, qkvBias = r.tensors['spatial.attn.qkv.bias'].data;
  for (const [part, name] of ['to_q', 'to_k', 'to_v'].entries()) {
    const src = w.out[`spatial.attn.${name}.weight`].data;
    for (const [o, i] of [[0, 0], [3, 17], [23, 5]]) assert.is(qkv[i * 72 + part * 24 + o], src[o * 24 + i], `${name}[${o}, ${i}]`);
    assert.is(qkvBias[part * 24 + 7], w.out[`spatial.attn.${name}.bias`].data[7]);
  }
  // a cross-attention's kv [ctx, 2c] is to_k | to_v [c, ctx]
  const kv = r.tensors['cross.attn.kv.weight'].data;
  assert.is(kv[5 * 48 + 24 + 9], w.out['cross.attn.to_v.weight'].data[9 * 12 + 5]);
  assert.is(kv[11 * 48 + 2], w.out['cross.attn.to_k.weight'].data[2 * 12 + 11]);
  // names by op: an attention's proj is to_out.0, a linear's proj would stay proj
  assert.equal(mapName(diffusers, 'spatial.attn.proj.weight', 'attention').names, ['spatial.attn.to_out.0.weight']);
  assert.equal(mapName(diffusers, 'x_embedder.proj.weight', 'linear').names, ['x_embedder.proj.weight']);
  assert.equal(mapName(diffusers, 'blocks.3.attn.qkv.bias', 'attention').names, ['blocks.3.attn.to_q.bias', 'blocks.3.attn.to_k.bias', 'blocks.3.attn.to_v.bias']);
  assert.is(toVdmName(diffusers, 'blocks.3.attn.to_v.bias'), 'blocks.3.attn.qkv.bias');
  // a part in vdm's layout, a missing part, and the map with export
  const flipped = { ...w.out, 'cross.attn.to_k.weight': { dtype: 'F32', shape: [12, 24], data: w.out['cross.attn.to_k.weight'].data } } as Record<string, SafeTensor>;
  assert.match(refusal(() => torchToVdmParams(graph, flipped, diffusers)), /cross\.attn\.to_k\.weight is \[12, 24\]: vdm's layout, not PyTorch's \[24, 12\]/);
  const partial = { ...w.out } as Record<string, SafeTensor>;
  delete partial['spatial.attn.to_v.bias'];
  assert.match(refusal(() => torchToVdmParams(graph, partial, diffusers)), /missing spatial\.attn\.to_v\.bias \[24\] \(vdm's spatial\.attn\.qkv\.bias, part 3 of 3\)/);
  assert.throws(() => exportTorch(graph, { map: diffusers }), (e: Error) => e instanceof ExportError && /map diffusers splits or reorders/.test(e.message));
});

test('a JSON map may split, reorder and limit rules to an op; a bad one is named', () => {
  const file = path.join(dir, 'split.json');
  fs.writeFileSync(file, JSON.stringify({ rules: [
    { vdm: '{a*}.qkv.{p}', torch: ['{a*}.q.{p}', '{a*}.k.{p}', '{a*}.v.{p}'], op: 'attention' },
    { vdm: '{a*}.merge.{p}', torch: '{a*}.merge.{p}', features: { groups: [2, 2], order: [1, 0] } },
  ] }));
  const m = loadNameMap(file);
  assert.equal(mapName(m, 'blk.attn.qkv.weight', 'attention').names, ['blk.attn.q.weight', 'blk.attn.k.weight', 'blk.attn.v.weight']);
  assert.equal(mapName(m, 'blk.attn.qkv.weight', 'linear').names, ['blk.attn.qkv.weight']);
  fs.writeFileSync(file, JSON.stringify({ rules: [{ vdm: 'a.{p}', torch: 'b.{p}', features: { groups: [2, 2], order: [0, 0] } }] }));
  assert.throws(() => loadNameMap(file), (e: Error) => e instanceof NameMapError && /"features" needs positive integer groups \(one may be -1, the rest\), an order that lists each group once/.test(e.message));
  // one group may be what the others leave, and the first axis (a Linear's outputs) may be the one reordered
  fs.writeFileSync(file, JSON.stringify({ rules: [{ vdm: 'a.{p}', torch: 'b.{p}', features: { groups: [2, 2, -1], order: [2, 0, 1], axis: 'first' } }] }));
  assert.equal(loadNameMap(file).rules[0].features, { groups: [2, 2, -1], order: [2, 0, 1], axis: 'first' });
  for (const features of [{ groups: [-1, -1], order: [0, 1] }, { groups: [2, 2], order: [1, 0], axis: 'middle' }]) {
    fs.writeFileSync(file, JSON.stringify({ rules: [{ vdm: 'a.{p}', torch: 'b.{p}', features }] }));
    assert.throws(() => loadNameMap(file), (e: Error) => e instanceof NameMapError && /"features" needs/.test(e.message), JSON.stringify(features));
  }
  assert.throws(() => loadNameMap('latte2'), /no such built-in map \(built in: dit, latte, swin, diffusers, opensora, cogvideox\)/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
