// `vdm eval`: a run folder's newest checkpoint sampled and compared with the built-in moving shapes
// at its clip size, as a table and as one JSON object; samples vdm sample wrote read back with
// --samples give the same numbers; a missing checkpoint, another spec, a bad --n or --data end in
// one message (exit 1) and no stack trace.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { liveParams } from '../../src/compiler/reference/evaluate.ts';
import { saveCheckpoint } from '../../src/runtime/checkpoint.ts';
import { vdmAsync, STACK } from './vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-eval-cli-'));
const SPEC = (freq: number) => `model Denoiser {
  dims b = 2, c = 3, t = 4, h = 8, w = 8
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  e = linear(silu(linear(sinusoidal(s, dim: ${freq}), 8)), 8)
  output out : video[b, c, t, h, w] = linear(silu(linear(x, 8) + e), 3)
}

diffusion {
  schedule cosine(steps: 40, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 3, eta: 0.0)
}
`;
fs.writeFileSync(path.join(dir, 'denoiser.vdm'), SPEC(16));
fs.writeFileSync(path.join(dir, 'wider.vdm'), SPEC(32));
const graph = checkFile(path.join(dir, 'denoiser.vdm')).graph!;
const params = new Map([...liveParams(graph, 1)].map(([k, v]) => [k, Float32Array.from(v)]));
saveCheckpoint(path.join(dir, 'run'), graph, { step: 20, params, ema: params, rng: { seed: 0 }, data: {}, options: {} });

const vdm = (...args: string[]) => vdmAsync(args, dir);

gpuTest('a run folder: samples written to <run>/eval/step-NNNNNN and a table of samples beside the moving shapes', async () => {
  const r = await vdm('eval', 'run', '--spec', 'denoiser.vdm', '--n', '3');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^sampling 3 clips from run\/step-000020\.safetensors \(step 20\): ddim 3 steps, seed 0\n/);
  assert.match(r.out, /evaluating Denoiser at step 20 \(run\/step-000020\.safetensors\), clips \[c=3, t=4, h=8, w=8\]/);
  assert.match(r.out, /data: +3 clips of the built-in moving shapes \(seed 0\)/);
  for (let f = 0; f < 4; f++) assert.match(r.out, new RegExp(`frame ${f} mean ± std +-?\\d\\.\\d{3} ± \\d\\.\\d{3} +-?\\d\\.\\d{3} ± \\d\\.\\d{3}\\n`));
  assert.match(r.out, /temporal consistency +\d\.\d{4} +\d\.\d{4}\n/);
  assert.match(r.out, /object speed \(px\/frame\) +(\d\.\d{3}|-) +\d\.\d{3}\n/);
  assert.match(r.out, /shape-colour accuracy +\d+% +100%\n/);
  assert.match(r.out, /Fréchet distance, samples vs data \(fixed random 3D-conv features\): \d+\.\d{3}\n/);
  assert.ok(fs.existsSync(path.join(dir, 'run/eval/step-000020/samples.safetensors')));
  assert.ok(fs.existsSync(path.join(dir, 'run/eval/step-000020/grid.png')));
  assert.not.match(r.err, STACK);
});

gpuTest('--json: one JSON object on stdout; --samples reads what was sampled and gives the same numbers', async () => {
  const sampled = await vdm('eval', 'run', '--spec', 'denoiser.vdm', '--n', '3', '--json', '--out', 'evaluated');
  assert.is(sampled.code, 0, sampled.err);
  const a = JSON.parse(sampled.out);
  assert.is(a.model, 'Denoiser');
  assert.is(a.step, 20);
  assert.equal(a.clip, { c: 3, t: 4, h: 8, w: 8 });
  assert.equal(a.clips, { samples: 3, data: 3 });
  assert.is(a.samples.from, 'sampled');
  assert.is(a.samples.steps, 3);
  assert.equal(a.data, { source: 'synthetic', seed: 0 });
  assert.is(a.frames.length, 4);
  for (const f of a.frames) for (const k of ['mean', 'std']) for (const side of ['samples', 'data']) assert.type(f[k][side], 'number');
  assert.ok(a.temporalConsistency.samples > 0 && a.temporalConsistency.data > 0, JSON.stringify(a.temporalConsistency));
  assert.ok(a.frechet >= 0);
  assert.is(a.shapeColourAccuracy.data, 1);
  assert.type(a.trajectoryAcceleration.data, 'number');

  const file = await vdm('eval', 'run', '--spec', 'denoiser.vdm', '--samples', 'evaluated/samples.safetensors', '--json');
  assert.is(file.code, 0, file.err);
  const b = JSON.parse(file.out);
  assert.equal(b.samples, { from: 'file', file: 'evaluated/samples.safetensors' });
  for (const k of ['clips', 'frames', 'temporalConsistency', 'frechet', 'objectSpeed', 'trajectoryAcceleration', 'shapeColourAccuracy']) assert.equal(b[k], a[k], k);

  const two = await vdm('eval', 'run', '--spec', 'denoiser.vdm', '--samples', 'evaluated/samples.safetensors', '--n', '2', '--json');
  assert.is(two.code, 0, two.err);
  assert.equal(JSON.parse(two.out).clips, { samples: 2, data: 2 });
});

gpuTest('--data DIR: the user\'s clips (folders of PNG frames) are the data compared against; no shape accuracy without the built-in shapes', async () => {
  // two clips of 4 frames, 8 x 8: a flat colour that brightens frame by frame
  for (const [clip, base] of [['one', 40], ['two', 120]] as const) {
    fs.mkdirSync(path.join(dir, 'clips', clip), { recursive: true });
    for (let f = 0; f < 4; f++) {
      const png = new PNG({ width: 8, height: 8 });
      for (let i = 0; i < 64; i++) png.data.set([base + 20 * f, base, 255 - base, 255], i * 4);
      fs.writeFileSync(path.join(dir, 'clips', clip, `f${f}.png`), PNG.sync.write(png));
    }
  }
  const r = await vdm('eval', 'run', '--spec', 'denoiser.vdm', '--samples', 'evaluated/samples.safetensors', '--n', '2', '--data', 'clips', '--json');
  assert.is(r.code, 0, r.err);
  const a = JSON.parse(r.out);
  assert.equal(a.data, { source: 'clips', seed: 0 });
  assert.equal(a.clips, { samples: 2, data: 2 });
  // the data's frames as written: frame f of clip one has red (40 + 20 f) / 127.5 - 1, of clip two (120 + 20 f) / 127.5 - 1
  const px = (v: number) => v / 127.5 - 1;
  for (let f = 0; f < 4; f++) {
    const mean = (px(40 + 20 * f) + px(40) + px(215) + px(120 + 20 * f) + px(120) + px(135)) / 6;
    assert.ok(Math.abs(a.frames[f].mean.data - mean) < 1e-3, `frame ${f}: ${a.frames[f].mean.data} vs ${mean}`);
  }
  // only red changes, by 20 / 127.5 a frame, in a third of the values
  assert.ok(Math.abs(a.temporalConsistency.data - 20 / 127.5 / 3) < 1e-4, JSON.stringify(a.temporalConsistency));
  assert.is(a.shapeColourAccuracy, undefined);
  assert.is(a.trajectoryAcceleration, undefined);
  const table = await vdm('eval', 'run', '--spec', 'denoiser.vdm', '--samples', 'evaluated/samples.safetensors', '--n', '2', '--data', 'clips');
  assert.is(table.code, 0, table.err);
  assert.match(table.out, /data: +2 clips? (of|from) clips/);
  assert.not.match(table.out, /shape-colour accuracy/);
});

gpuTest('a missing checkpoint, another spec, a bad --n, --data or --samples: one message each, exit 1, no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['nowhere', '--spec', 'denoiser.vdm'], /^vdm eval: nowhere: no such checkpoint or run folder\n$/],
    [['run', '--spec', 'wider.vdm'], /^vdm eval: run\/step-000020\.safetensors was trained on a different spec than wider\.vdm:\n[^]*dim: 16 -> 32[^]*--spec\n$/],
    [['run', '--spec', 'denoiser.vdm', '--n', '0'], /^vdm eval: --n must be a whole number of at least 1, got 0\n$/],
    [['run', '--spec', 'denoiser.vdm', '--n', 'many'], /^vdm eval: --n must be a number\n$/],
    [['run', '--spec', 'denoiser.vdm', '--data', 'no-such-folder'], /^vdm eval: no-such-folder: /],
    [['run', '--spec', 'denoiser.vdm', '--samples', 'missing.safetensors'], /^vdm eval: --samples missing\.safetensors: no such file/],
    [['run', '--spec', 'denoiser.vdm', '--samples', 'evaluated/samples.safetensors', '--n', '9'], /^vdm eval: --n 9: evaluated\/samples\.safetensors holds 3 samples; pass --n 3 or fewer\n$/],
  ];
  for (const [args, pattern] of cases) {
    const r = await vdm('eval', ...args);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, pattern);
    assert.not.match(r.err, STACK);
    assert.is(r.out, '');
  }
});

test('--help says what the Fréchet distance is computed over', async () => {
  const r = await vdm('eval', '--help');
  assert.is(r.code, 0);
  assert.match(r.out, /vdm eval <CKPT_OR_RUN_DIR> --spec SPEC/);
  assert.match(r.out, /64 random 3x3x3 3D\s+convolution filters/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
