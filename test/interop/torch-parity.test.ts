// Parity of the exported PyTorch modules with vdm: each DiT-family spec at reduced dims is written
// by vdm export torch, its perturbed parameters (vdm init --perturb) converted to PyTorch's layout,
// and one forward pass in PyTorch (float64) is compared with vdm's float64 evaluation on the same
// inputs, and so is a small spec using every other primitive the export writes. DiT-S/2 (narrowed:
// the spec's own text with d = 64, depth = 2) also comes the other way:
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
  z = z + flip(gru(flip(z, t), over: t, hidden: 16, reverse: true) as rnn, t)
  p = pool(z, kernel: (h: 2, w: 2), mode: "max")
  z = z + upsample(p, factor: (h: 2, w: 2), mode: "linear") + mean(z, over: t)
  z = rmsnorm(z) as rms + rmsnorm(z, affine: false) + param(sizes: (t: 4, c: 16), init: "normal") as pos
  z = concat(slice(z, t, 2, 4), slice(z, t, 0, 2), axis: t)
  z = conv(z, over: (h, w), kernel: 3, stride: 1, padding: 1, dilation: 1) as mid
  output out : video[b, c, t, h, w] = linear(gelu(z), 4) as head
}

diffusion {
  schedule scaled_linear(beta_start: 0.00085, beta_end: 0.012, steps: 1000)
  predict  v
  loss     mse
  sampler  ddim(steps: 10, eta: 0)
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
  const r = spawnSync(python!, [path.join(repo, 'test/interop/torch_parity.py'), file], { encoding: 'utf8', timeout: 300_000 });
  assert.is(r.status, 0, `${r.stderr}\n${r.stdout}`);
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

if (python) {
  queueSpec('tiny-video-dit', path.join(repo, 'specs/tiny-video-dit.vdm'), { b: 2, t: 4, h: 8, w: 8 });
  queueSpec('tiny-shapes', path.join(repo, 'specs/tiny-shapes.vdm'), { b: 2 });
  queueSpec('dit-s-2-narrow', smallDit, DIT_DIMS);
  queueSpec('mixed', mixed, {});
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

/**
 * The exported training_loss against vdm's: x_t from the same x0, noise and t, the model evaluated
 * in float64 at x_t, and diffusionLoss's mse term.
 */
function compareObjective(job: Job): number {
  const d = job.graph.diffusion!;
  const inputs = readInputsFile(job.graph, path.join(job.outdir, 'inputs.safetensors')) as Map<string, NamedTensor>;
  const noise = safeValues(readSafetensors(path.join(job.outdir, 'objective.safetensors')).tensors.noise);
  const got = JSON.parse(fs.readFileSync(path.join(job.outdir, 'objective.json'), 'utf8')).loss as number;
  const x0 = inputs.get(d.noisy_input)!;
  const t = inputs.get(job.graph.inputs.find((i) => i.kind === 'timestep')!.name)!.data;
  const s = noiseSchedule(d.schedule);
  const per = x0.data.length / t.length;
  const xt = new Float64Array(x0.data.length);
  for (let b = 0; b < t.length; b++) {
    xt.set(addNoise(s, x0.data.subarray(b * per, (b + 1) * per), noise.subarray(b * per, (b + 1) * per), t[b]), b * per);
  }
  const out = evaluate(job.graph, new Map([...inputs, [d.noisy_input, { axes: x0.axes, data: xt }]]), job.params()).outputs.get(job.graph.outputs[0].name)!;
  const want = diffusionLoss(d, s, x0.axes, out.data, x0.data, noise, t).terms.get('mse')!;
  const rel = Math.abs(got - want) / Math.abs(want);
  assert.ok(rel < 1e-9, `${job.label}: training_loss ${got} against vdm's mse ${want} (rel ${rel.toExponential(2)})`);
  return rel;
}

ptest('the exported training_loss is vdm\'s mse term (q_sample, the target, learned sigma\'s noise channels)', () => {
  runPython();
  for (const job of jobs.filter((j) => j.label !== 'dit-official')) {
    figures.push(`${job.label}: training_loss rel ${compareObjective(job).toExponential(2)}`);
  }
});

ptest('every DiT-family spec, and the other primitives, export and match vdm\'s float64 evaluation at reduced dims (< 1e-4 rel)', () => {
  runPython();
  for (const job of jobs.filter((j) => j.label !== 'dit-official')) {
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
