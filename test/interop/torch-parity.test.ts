// Parity of the exported PyTorch modules with vdm: every spec of specs/ at reduced sizes (its own
// text with widths and depths narrowed, SPECS below) is written by vdm export torch, its perturbed
// parameters (vdm init --perturb) converted to PyTorch's layout, and one forward pass in PyTorch
// (float64) is compared with vdm's float64 evaluation on the same inputs, and so is a small spec
// using every other primitive the export writes. The exported training_loss is compared with vdm's
// diffusionLoss term by term (mse, vlb, temporal_consistency). All modules run in one Python
// process. DiT-S/2 (narrowed: the spec's own text with d = 64, depth = 2) also comes the other way:
// a state dict in the official DiT naming and layout (models.py) loads with vdm convert --map dit,
// and vdm run --compare agrees with the module's output. Needs a Python with torch (VDM_PYTHON or
// the first of python3, /usr/bin/python3); without one the tests are skipped and say why, once.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluate } from '../../src/compiler/reference/evaluate.ts';
import { addNoise, diffusionLoss, noiseSchedule } from '../../src/compiler/reference/diffusion-math.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { checkSpec, initialParams, readInputsFile, readParams } from '../../src/pipeline.ts';
import { vdmToTorchParams } from '../../src/interop/convert.ts';
import { convertFile } from '../../src/interop/convert-files.ts';
import { IDENTITY_MAP, loadNameMap } from '../../src/interop/name-maps.ts';
import { findTorchPython } from '../../src/interop/python.ts';
import { exportTorch } from '../../src/interop/torch-export.ts';
import { tensorError, safeValues } from '../../src/runtime/compare.ts';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../../src/runtime/safetensors.ts';
import { gpuTest } from '../gpu.ts';
import { officialLatte } from './official-state-dicts.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TOL = 1e-4;
const torchPython = findTorchPython();
const python = 'python' in torchPython ? torchPython.python : undefined;
if (!python) console.log(`PyTorch parity tests skipped: ${(torchPython as { why: string }).why}`);
const ptest = python ? test : test.skip;
const pgpuTest = python ? gpuTest : test.skip;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-torch-'));
// DiT-S/2's own text, narrowed so the test stays fast; its structure is the spec's.
const ditText = fs.readFileSync(path.join(repo, 'specs/dit-s-2.vdm'), 'utf8');
assert.match(ditText, /let d = 384, depth = 12, heads = 6, p = 2/);
const smallDit = path.join(dir, 'dit-s-2-narrow.vdm');
fs.writeFileSync(smallDit, ditText.replace('let d = 384, depth = 12, heads = 6, p = 2', 'let d = 64, depth = 2, heads = 4, p = 2'));
const DIT_DIMS = { b: 2, h: 8, w: 8 };
// Every primitive the export writes beyond the DiT family (the UNet, Swin, cross-attention and
// recurrent specs use them at sizes too large for the suite), with v prediction.
const mixed = path.join(dir, 'mixed.vdm');
fs.writeFileSync(mixed, `// Every primitive vdm export torch writes beyond the DiT family, small enough to evaluate at once.
model Mixed {
  dims b = 2, c = 4, t = 4, h = 8, w = 8
  input x   : video[b, c, t, h, w]
  input s   : timestep[b]
  input txt : text[b, l=5, c=6]
  input img : image[b, c, h, w]

  z = conv(concat(x, expand(img, sizes: (t: 4)), axis: c), over: (t, h, w), kernel: 3, out: 16, groups: 2) as stem
  z = groupnorm(z, groups: 4) as norm
  z = z + linear(silu(linear(sinusoidal(s, dim: 32), 16) as temb), 16) as temb_proj
  z = z + attention(z, over: (t, h, w), heads: 2, window: (t: 2, h: 4, w: 4), shift: (t: 1, h: 2, w: 2), rel_bias: true) as swin
  z = z + attention(z, over: (h, w), heads: 4, context: txt) as cross
  z = z + attention(z, over: t, heads: 3, dim_head: 4, bias: false, qkv_bias: true, qk_norm: "layer") as opts
  z = z + attention(z, over: (h, w), heads: 2, dim_head: 3, window: (h: 4, w: 4), rel_bias: true, out_bias: false, qk_norm: "rms") as win_opts
  z = z + attention(z, over: (h, w), heads: 2, dim_head: 5, context: txt, out_bias: false, qk_norm: "layer") as cross_opts
  z = z + attention(z, over: (t, h, w), heads: 2, dim_head: 16, rope: (t, h, w), qk_norm: "layer") as rope3d
  z = z + attention(z, over: (w, t), heads: 2, rope: t, rel_bias: true, causal: true) as rope1d
  z = z + attention(z, over: (t, h, w), heads: 4, causal: true) as causal
  z = z + attention(z, over: (h, w), heads: 2, context: txt, key_mask: concat(relu(slice(mean(txt, over: c), b, 0, 1)), slice(mean(txt, over: c), b, 1, 2) * 0, axis: b)) as masked
  z = z + attention(z, over: t, heads: 2, rel_bias: true, causal: true, key_mask: relu(mean(z, over: (h, c, w)))) as masked_self
  z = z + flip(gru(flip(z, t), over: t, hidden: 16, reverse: true) as rnn, t)
  p = pool(z, kernel: (h: 2, w: 2), mode: "max")
  z = z + upsample(p, factor: (h: 2, w: 2), mode: "linear") + mean(z, over: t)
  z = z + conv_transpose(p, over: (h, w), kernel: 3, stride: 2, padding: 1, output_padding: 1, groups: 2) as up
  z = rmsnorm(z) as rms + rmsnorm(z, affine: false) + param(sizes: (t: 4, c: 16), init: "normal") as pos
  z = z + sincos(z, over: (t, h, w), scale: (h: 0.5, w: 0.25)) * slice(z, t, 0, 1)
  z = z + linear(z, 16, axis: (t, c)) as flat + linear(z, 8, axis: (c, w)) as rows
  z = concat(slice(z, t, 2, 4), slice(z, t, 0, 2), axis: t)
  z = z + unflatten(flatten(z, over: (w, t), into: n) * 2, n, sizes: (w: 8, t: 4)) + unflatten(flatten(z, over: h, into: q), q, sizes: (h: 8))
  z = conv(z, over: (h, w), kernel: 3, stride: 1, padding: 1, dilation: 1) as mid
  output out : video[b, c, t, h, w] = linear(gelu(z), 4) as head
}

diffusion {
  schedule scaled_linear(beta_start: 0.00085, beta_end: 0.012, steps: 1000)
  predict  v
  loss     mse + 0.1 * temporal_consistency
  sampler  ddim(steps: 10, eta: 0)
}
`);

// The standard library's options after original implementations: STDiT blocks (the shared t0 and
// each block's scale_shift_table), a per-frame GroupNorm ResBlock, Video Swin's patch-merging
// order, an absolute MLP width and cross-attention without its norm.
const stdOptions = path.join(dir, 'std-options.vdm');
fs.writeFileSync(stdOptions, `import "std/dit.vdm"
import "std/conv.vdm"
import "std/attention.vdm"
import "std/layers.vdm"
import "std/swin.vdm"

model StdOptions {
  dims b = 2, c = 4, t = 3, h = 6, w = 6
  input x   : video[b, c, t, h, w]
  input s   : timestep[b]
  input txt : text[b, l=3, c=16]
  temb = timestep_embedder(s, 16, freq: 32)
  t0 = linear(silu(temb), 6 * 16) as t_block
  z = resblock(linear(x, 16), temb, groups: 4, per_frame: true) as res
  z = stdit_block(z, t0, txt, 2) as spatial
  z = stdit_block(z, t0, txt, 2, over: t) as temporal
  z = cross_attention(z, txt, 2, norm: false) as cross
  z = z + mlp(layernorm(z), hidden: 24)
  m = patch_merging(z, pad: true) as merge
  output out : video[b, c, t, h, w] = unpatchify(linear(m, 4 * c), patch: (h: 2, w: 2), order: (w, h))
}

diffusion {
  predict epsilon
  loss    mse + 0.1 * temporal_consistency
}
`);

// Shared modules whose later calls sit in other blocks than the first: the exported blocks borrow
// the first call's layers (the state dict holds them once).
const shared = path.join(dir, 'shared.vdm');
fs.writeFileSync(shared, `block cell(x, width) {
  y = conv(silu(x), over: (h, w), kernel: 3, out: width) as conv1
  return x + linear(y, width) as proj
}

model Shared {
  dims b = 2, c = 4, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  z = linear(x, 8) as stem
  step = cell as step
  mix = linear as mix
  z = step(z, 8)
  for i in 0..2 as layers {
    z = step(mix(z, 8), 8)
  }
  output o : video[b, c, t, h, w] = linear(z, 4) as head
}
`);

const graphOf = (file: string, dims: Record<string, number>): Graph => {
  const c = checkSpec(file, { dims });
  if (!c.ok) throw new Error(`${file}: ${c.diagnostics.map((d) => d.message).join('; ')}`);
  return c.model.graph;
};

const inputsOf = (g: Graph) => g.inputs.map((i) => ({
  name: i.name, kind: i.kind, shape: i.axes.map(([, n]) => n),
  ...(i.kind === 'label' ? { classes: Number(i.options.classes) + (i.options.null ? 1 : 0) } : {}),
}));

const vdm = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

/** A state dict in the naming and layout of facebookresearch/DiT models.py, random but non-degenerate. */
function officialDit(o: { d: number; depth: number; p: number; c: number; classes: number; grid: number; seed: number }): Record<string, SafeTensor> {
  let s = o.seed + 1;
  const rand = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const out: Record<string, SafeTensor> = {};
  const put = (name: string, shape: number[], scale: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    out[name] = { dtype: 'F32', shape, data: Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale) };
  };
  const linear = (name: string, i: number, outs: number) => { put(`${name}.weight`, [outs, i], 1 / Math.sqrt(i)); put(`${name}.bias`, [outs], 0.2); };
  const { d, p, c } = o;
  // pos_embed: get_2d_sincos_pos_embed, w in the first half of the channels, h in the second
  const pos = new Float32Array(o.grid * o.grid * d);
  for (let h = 0; h < o.grid; h++) for (let w = 0; w < o.grid; w++) {
    [w, h].forEach((v, half) => {
      for (let k = 0; k < d / 4; k++) {
        const arg = v / 10000 ** (k / (d / 4));
        pos[(h * o.grid + w) * d + half * (d / 2) + k] = Math.sin(arg);
        pos[(h * o.grid + w) * d + half * (d / 2) + d / 4 + k] = Math.cos(arg);
      }
    });
  }
  out.pos_embed = { dtype: 'F32', shape: [1, o.grid * o.grid, d], data: pos };
  put('x_embedder.proj.weight', [d, c, p, p], 1 / Math.sqrt(c * p * p));
  put('x_embedder.proj.bias', [d], 0.2);
  linear('t_embedder.mlp.0', 256, d);
  linear('t_embedder.mlp.2', d, d);
  put('y_embedder.embedding_table.weight', [o.classes + 1, d], 0.5);
  for (let n = 0; n < o.depth; n++) {
    linear(`blocks.${n}.attn.qkv`, d, 3 * d);
    linear(`blocks.${n}.attn.proj`, d, d);
    linear(`blocks.${n}.mlp.fc1`, d, 4 * d);
    linear(`blocks.${n}.mlp.fc2`, 4 * d, d);
    linear(`blocks.${n}.adaLN_modulation.1`, d, 6 * d);
  }
  linear('final_layer.linear', d, p * p * 2 * c);
  linear('final_layer.adaLN_modulation.1', d, 2 * d);
  return out;
}

interface Job {
  readonly label: string;
  readonly graph: Graph;
  /** vdm's parameters of the same weights */
  readonly params: () => Map<string, Float64Array>;
  readonly py: Record<string, unknown>;
  readonly outdir: string;
}

const jobs: Job[] = [];
const figures: string[] = [];
let ran = false;

/** Exports a spec, converts its perturbed parameters to PyTorch's layout, and queues its forward pass. */
function queueSpec(label: string, file: string, dims: Record<string, number>): void {
  const graph = graphOf(file, dims);
  const params = initialParams(graph, { perturb: true, seed: 5 });
  const t0 = performance.now();
  const { source, className } = exportTorch(graph);
  const exportMs = performance.now() - t0;
  const outdir = path.join(dir, label);
  fs.mkdirSync(outdir);
  fs.writeFileSync(path.join(outdir, 'model.py'), source);
  const vdmTensors: Record<string, SafeTensor> = {};
  for (const [k, v] of params) vdmTensors[k] = { dtype: 'F32', shape: [...graph.nodes.flatMap((n) => n.params).find((p) => p.path === k)!.shape], data: Float32Array.from(v) };
  const t1 = performance.now();
  const torch = vdmToTorchParams(graph, vdmTensors, IDENTITY_MAP).tensors;
  const convertMs = performance.now() - t1;
  writeSafetensors(path.join(outdir, 'torch.safetensors'), torch);
  figures.push(`${label}: export ${exportMs.toFixed(0)} ms, convert ${convertMs.toFixed(0)} ms`);
  // the values the file holds, as float32
  const rounded = () => new Map([...params].map(([k, v]) => [k, Float64Array.from(Float32Array.from(v))]));
  jobs.push({
    label, graph, params: rounded, outdir,
    py: {
      model: path.join(outdir, 'model.py'), cls: className, state: path.join(outdir, 'torch.safetensors'), inputs: inputsOf(graph), outdir, output: graph.outputs[0].name, seed: 7,
      objective: graph.diffusion ? { noisy: graph.diffusion.noisy_input, timestep: graph.inputs.find((i) => i.kind === 'timestep')!.name } : null,
    },
  });
}

/** Runs every queued forward pass in one Python process (torch is imported once). */
function runPython(): void {
  if (ran) return;
  ran = true;
  const file = path.join(dir, 'jobs.json');
  fs.writeFileSync(file, JSON.stringify(jobs.map((j) => j.py)));
  const t0 = performance.now();
  const r = spawnSync(python!, [path.join(repo, 'test/interop/torch_parity.py'), file], { encoding: 'utf8', timeout: 300_000 });
  assert.is(r.status, 0, `${r.stderr}\n${r.stdout}`);
  figures.push(`one Python process for ${jobs.length} modules: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** The float64 evaluation of a job's model on the inputs PyTorch drew, against PyTorch's outputs. */
function compareWithReference(job: Job): number {
  const inputs = readInputsFile(job.graph, path.join(job.outdir, 'inputs.safetensors'));
  const ref = evaluate(job.graph, inputs as Map<string, NamedTensor>, job.params());
  const got = readSafetensors(path.join(job.outdir, 'outputs.safetensors')).tensors;
  let worst = 0;
  for (const o of job.graph.outputs) {
    const r = ref.outputs.get(o.name)!;
    assert.ok(got[o.name], `PyTorch wrote no output ${o.name}`);
    assert.equal(got[o.name].shape, r.axes.map(([, n]) => n), `${job.label}: output ${o.name} shape`);
    const e = tensorError(safeValues(got[o.name]), r.data);
    assert.not.ok(e.refZero, `${job.label}: output ${o.name} is identically zero: the comparison would compare nothing`);
    assert.ok(e.maxRel < TOL, `${job.label}: output ${o.name}: max rel ${e.maxRel.toExponential(2)} (max abs ${e.maxAbs.toExponential(2)}) over ${TOL}`);
    worst = Math.max(worst, e.maxRel);
  }
  return worst;
}

/**
 * Every spec of specs/ at reduced sizes: its own text with its widths and depths narrowed (each
 * edit must still apply), and smaller dims. Structure, blocks and loss terms are the spec's.
 */
const DIT_NARROW = (line: string): [string, string][] => [[line, 'let d = 32, depth = 2, heads = 2, p = 2']];
const SPECS: Readonly<Record<string, { edits: [string, string][]; dims: Record<string, number> }>> = {
  'basicvsr-propagation.vdm': { edits: [['let width = 64', 'let width = 16']], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'cogvideox-2b.vdm': { edits: [['let heads = 30, dim_head = 64, depth = 30, p = 2, temb_dim = 512', 'let heads = 2, dim_head = 16, depth = 2, p = 2, temb_dim = 24'], ['l=226, c=4096', 'l=5, c=16']], dims: { b: 2, t: 3, h: 8, w: 12 } },
  'controllable-video.vdm': { edits: [['let d = 384, depth = 8, heads = 6, p = 2', 'let d = 32, depth = 2, heads = 2, p = 2']], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'dit-b-2.vdm': { edits: DIT_NARROW('let d = 768, depth = 12, heads = 12, p = 2'), dims: DIT_DIMS },
  'dit-l-2.vdm': { edits: DIT_NARROW('let d = 1024, depth = 24, heads = 16, p = 2'), dims: DIT_DIMS },
  'dit-s-2.vdm': { edits: [['let d = 384, depth = 12, heads = 6, p = 2', 'let d = 64, depth = 2, heads = 4, p = 2']], dims: DIT_DIMS },
  'dit-xl-2.vdm': { edits: DIT_NARROW('let d = 1152, depth = 28, heads = 16, p = 2'), dims: DIT_DIMS },
  'full3d-conv.vdm': { edits: [['let base = 64, mults = (1, 2, 4), blocks_per_level = 2', 'let base = 32, mults = (1, 2), blocks_per_level = 1']], dims: { b: 1, t: 2, h: 8, w: 8 } },
  'hierarchical-temporal.vdm': { edits: [['let base = 64, mults = (1, 2), heads = 4', 'let base = 32, mults = (1, 2), heads = 2']], dims: { b: 1, t: 4, h: 8, w: 8 } },
  'image-to-video.vdm': { edits: [['let d = 384, depth = 12, heads = 6, p = 2', 'let d = 32, depth = 2, heads = 2, p = 2'], ['l=77, c=768', 'l=5, c=16']], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'latte-factorized.vdm': { edits: [['let d = 384, depth = 12, heads = 6, p = 2', 'let d = 32, depth = 4, heads = 4, p = 2']], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'motion-conditioned.vdm': { edits: [['let d = 64, depth = 4, heads = 4', 'let d = 32, depth = 2, heads = 2']], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'lightweight-depthwise.vdm': { edits: [['let width = 64, depth = 4', 'let width = 32, depth = 2']], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'propagation.vdm': { edits: [['let width = 128, depth = 4', 'let width = 32, depth = 2']], dims: { b: 1, t: 2, h: 8, w: 8 } },
  'pseudo3d.vdm': { edits: [['let base = 64, mults = (1, 2, 4)', 'let base = 32, mults = (1, 2)']], dims: { b: 1, t: 2, h: 8, w: 8 } },
  'stdit3-xl-2.vdm': { edits: [['let d = 1152, depth = 28, heads = 16, p = 2', 'let d = 32, depth = 2, heads = 2, p = 2'], ['l=300, c=4096', 'l=5, c=16']], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'tiny-shapes.vdm': { edits: [], dims: { b: 2 } },
  'tiny-image-to-video.vdm': { edits: [], dims: { b: 2 } },
  'tiny-motion.vdm': { edits: [], dims: { b: 2 } },
  'tiny-unet.vdm': { edits: [], dims: { b: 2 } },
  'tiny-video-dit.vdm': { edits: [], dims: { b: 2, t: 4, h: 8, w: 8 } },
  'unet3d-factorized.vdm': { edits: [['let base = 128, mults = (1, 2, 4), heads = 8', 'let base = 32, mults = (1, 2), heads = 2'], ['l=77, c=768', 'l=5, c=16']], dims: { b: 1, t: 2, h: 8, w: 8 } },
  'video-swin.vdm': {
    edits: [['let widths = (96, 192, 384, 768), depths = (2, 2, 6, 2), heads = (3, 6, 12, 24)', 'let widths = (8, 16, 32, 64), depths = (2, 2, 2, 2), heads = (2, 2, 4, 4)'],
      ['window: (8, 7, 7)', 'window: (2, 4, 4)'], ['c=96,', 'c=8,'], ['c=768,', 'c=64,']],
    // 9 x 9 tokens from 36 x 36 pixels: patch embedding, windows and patch merging all pad
    dims: { b: 2, t: 3, h: 36, w: 36 },
  },
};

/** A spec's text narrowed as SPECS says, written beside the other files. */
function narrowSpec(name: string): string {
  let text = fs.readFileSync(path.join(repo, 'specs', name), 'utf8');
  for (const [from, to] of SPECS[name].edits) {
    assert.ok(text.includes(from), `specs/${name} no longer contains "${from}": update SPECS in torch-parity.test.ts`);
    text = text.split(from).join(to);
  }
  const file = path.join(dir, `narrow-${name}`);
  fs.writeFileSync(file, text);
  return file;
}

if (python) {
  for (const name of Object.keys(SPECS)) queueSpec(name.replace(/\.vdm$/, ''), narrowSpec(name), SPECS[name].dims);
  queueSpec('mixed', mixed, {});
  queueSpec('shared-modules', shared, {});
  queueSpec('std-options', stdOptions, {});
  // DiT-S/2 in the official naming: converted by the CLI, exported with the same map.
  const graph = graphOf(smallDit, DIT_DIMS);
  const outdir = path.join(dir, 'dit-official');
  fs.mkdirSync(outdir);
  const official = officialDit({ d: 64, depth: 2, p: 2, c: 4, classes: 1000, grid: 4, seed: 3 });
  writeSafetensors(path.join(outdir, 'official.safetensors'), official);
  fs.writeFileSync(path.join(outdir, 'model.py'), exportTorch(graph, { map: loadNameMap('dit') }).source);
  jobs.push({
    label: 'dit-official', graph, outdir, params: () => readParams(graph, path.join(outdir, 'vdm.safetensors')),
    py: { model: path.join(outdir, 'model.py'), cls: 'DiT_S_2', state: path.join(outdir, 'official.safetensors'), inputs: inputsOf(graph), outdir, ignore: ['pos_embed'], seed: 11 },
  });
  // Latte in its official naming: the module exported with --map latte loads it with strict=True.
  const latteGraph = graphOf(path.join(dir, 'narrow-latte-factorized.vdm'), SPECS['latte-factorized.vdm'].dims);
  const latteDir = path.join(dir, 'latte-official');
  fs.mkdirSync(latteDir);
  writeSafetensors(path.join(latteDir, 'official.safetensors'), officialLatte({ d: 32, depth: 4, p: 2, c: 4, classes: 101, grid: 4, frames: 4, seed: 13 }));
  fs.writeFileSync(path.join(latteDir, 'model.py'), exportTorch(latteGraph, { map: loadNameMap('latte') }).source);
  jobs.push({
    label: 'latte-official', graph: latteGraph, outdir: latteDir, params: () => readParams(latteGraph, path.join(latteDir, 'vdm.safetensors')),
    py: { model: path.join(latteDir, 'model.py'), cls: 'Latte_S_2', state: path.join(latteDir, 'official.safetensors'), inputs: inputsOf(latteGraph), outdir: latteDir, ignore: ['pos_embed', 'temp_embed'], seed: 12 },
  });
}

const dimArgs = Object.entries(DIT_DIMS).flatMap(([k, v]) => ['--dim', `${k}=${v}`]);

ptest('DiT-S/2 in the official naming and layout loads as vdm convert --map dit reads it; the module with the same map agrees with vdm float64', () => {
  const outdir = path.join(dir, 'dit-official');
  const t0 = performance.now();
  const r = convertFile(graphOf(smallDit, DIT_DIMS), { input: path.join(outdir, 'official.safetensors'), output: path.join(outdir, 'vdm.safetensors'), map: loadNameMap('dit') });
  figures.push(`dit-official: convert --map dit ${(performance.now() - t0).toFixed(0)} ms`);
  assert.is(r.to, 'vdm');
  assert.equal(r.rules, { same: 16, transpose: 14, 'patch-conv': 1 });
  assert.equal(r.ignored.map(([n]) => n), ['pos_embed']);
  assert.equal(r.unmatched, []);
  runPython();
  const worst = compareWithReference(jobs.find((j) => j.label === 'dit-official')!);
  figures.push(`dit-official: max rel ${worst.toExponential(2)} against float64`);
});

ptest('Latte in its official naming loads with vdm convert --map latte and into the module exported with --map latte; both agree with vdm float64', () => {
  const outdir = path.join(dir, 'latte-official');
  const job = jobs.find((j) => j.label === 'latte-official')!;
  const r = convertFile(job.graph, { input: path.join(outdir, 'official.safetensors'), output: path.join(outdir, 'vdm.safetensors'), map: loadNameMap('latte') });
  assert.equal(r.ignored.map(([n]) => n), ['pos_embed', 'temp_embed']);
  assert.equal(r.unmatched, []);
  runPython();
  figures.push(`latte-official: max rel ${compareWithReference(job).toExponential(2)} against float64`);
});

/**
 * The exported training_loss against vdm's: x_t from the same x0, noise and t, the model evaluated
 * in float64 at x_t, and diffusionLoss's total and terms (mse, vlb, temporal_consistency).
 */
function compareObjective(job: Job): number {
  const d = job.graph.diffusion!;
  const inputs = readInputsFile(job.graph, path.join(job.outdir, 'inputs.safetensors')) as Map<string, NamedTensor>;
  const drawn = readSafetensors(path.join(job.outdir, 'objective.safetensors')).tensors;
  const noise = safeValues(drawn.noise);
  const t = safeValues(drawn.t);
  const got = JSON.parse(fs.readFileSync(path.join(job.outdir, 'objective.json'), 'utf8')) as { loss: number; terms: Record<string, number> };
  const x0 = inputs.get(d.noisy_input)!;
  const step = job.graph.inputs.find((i) => i.kind === 'timestep')!.name;
  const s = noiseSchedule(d.schedule);
  const per = x0.data.length / t.length;
  const xt = new Float64Array(x0.data.length);
  for (let b = 0; b < t.length; b++) {
    xt.set(addNoise(s, x0.data.subarray(b * per, (b + 1) * per), noise.subarray(b * per, (b + 1) * per), t[b]), b * per);
  }
  const at = new Map([...inputs, [d.noisy_input, { axes: x0.axes, data: xt }], [step, { axes: inputs.get(step)!.axes, data: Float64Array.from(t) }]]);
  const out = evaluate(job.graph, at, job.params()).outputs.get(job.graph.outputs[0].name)!;
  const want = diffusionLoss(d, s, x0.axes, out.data, x0.data, noise, t);
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
  assert.equal(Object.keys(got.terms).sort(), [...want.terms.keys()].sort(), `${job.label}: the exported loss's terms`);
  let worst = rel(got.loss, want.total);
  for (const [term, value] of want.terms) {
    assert.ok(rel(got.terms[term], value) < 1e-9, `${job.label}: ${term} ${got.terms[term]} against vdm's ${value} (rel ${rel(got.terms[term], value).toExponential(2)})`);
    worst = Math.max(worst, rel(got.terms[term], value));
  }
  assert.ok(rel(got.loss, want.total) < 1e-9, `${job.label}: training_loss ${got.loss} against vdm's ${want.total}`);
  return worst;
}

ptest('the exported training_loss is vdm\'s diffusionLoss, term by term (mse, vlb with t = 0 included, temporal_consistency), rectified flow\'s velocity too', () => {
  runPython();
  const seen = new Set<string>();
  for (const job of jobs.filter((j) => j.py.objective)) {
    figures.push(`${job.label}: training_loss rel ${compareObjective(job).toExponential(2)}`);
    for (const l of job.graph.diffusion!.loss) seen.add(l.term);
  }
  assert.equal([...seen].sort(), ['mse', 'temporal_consistency', 'vlb'], 'every loss term is compared');
  assert.ok(jobs.some((j) => j.py.objective && j.graph.diffusion!.schedule.kind === 'rectified_flow'), 'a rectified flow objective is compared (specs/stdit3-xl-2.vdm)');
});

ptest('every spec of specs/, and the other primitives, export and match vdm\'s float64 evaluation at reduced dims (< 1e-4 rel)', () => {
  const specs = fs.readdirSync(path.join(repo, 'specs')).filter((n) => n.endsWith('.vdm')).sort();
  assert.equal(Object.keys(SPECS).sort(), specs, 'every spec of specs/ has its reduced sizes in SPECS');
  runPython();
  for (const job of jobs.filter((j) => !j.label.endsWith('-official'))) {
    const worst = compareWithReference(job);
    figures.push(`${job.label}: max rel ${worst.toExponential(2)} against float64`);
  }
  console.log(`PyTorch parity (${(torchPython as { torchVersion: string }).torchVersion}): ${figures.join('; ')}`);
});

pgpuTest('vdm run --compare agrees with the exported module on the official DiT checkpoint converted with --map dit', () => {
  const outdir = path.join(dir, 'dit-official');
  assert.ok(fs.existsSync(path.join(outdir, 'vdm.safetensors')), 'the convert test runs first');
  const r = vdm('run', smallDit, ...dimArgs, '--params', path.join(outdir, 'vdm.safetensors'), '--inputs', path.join(outdir, 'inputs.safetensors'),
    '--compare', path.join(outdir, 'outputs.safetensors'), '--tol', String(TOL), '--repeat', '1');
  assert.is(r.code, 0, `${r.out}\n${r.err}`);
  assert.match(r.out, /agreement: all 1 within 0\.0001/);
  console.log(`PyTorch parity on the adapter: vdm run --compare, ${/largest max rel [^)]*/.exec(r.out)?.[0]}`);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
