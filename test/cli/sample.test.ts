// `vdm sample`: a run folder's newest checkpoint sampled into <run>/samples/step-NNNNNN with a
// header, progress and the files; a checkpoint of another spec, an unknown class, a missing
// condition and bad flags end in one message (exit 1, unknown flags 2) and no stack trace.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { liveParams } from '../../src/compiler/reference/evaluate.ts';
import { saveCheckpoint } from '../../src/runtime/checkpoint.ts';
import { readSafetensors } from '../../src/runtime/safetensors.ts';
import { vdmAsync, STACK } from './vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-sample-cli-'));
const SPEC = (freq: number) => `model Denoiser {
  dims b = 3, c = 3, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  input y : label[b](classes: 4, null: true)
  input txt : text[b, l=2, c=4]
  e = linear(silu(linear(sinusoidal(s, dim: ${freq}), 8)), 8) + embed(y, classes: 5, dim: 8) + mean(linear(txt, 8), over: l)
  output out : video[b, c, t, h, w] = linear(silu(linear(x, 8) + e), 3)
}

diffusion {
  schedule cosine(steps: 40, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 5, eta: 0.0)
  guidance cfg(scale: 2.0, dropout: 0.25)
}
`;
fs.writeFileSync(path.join(dir, 'denoiser.vdm'), SPEC(16));
fs.writeFileSync(path.join(dir, 'wider.vdm'), SPEC(32));
const graph = checkFile(path.join(dir, 'denoiser.vdm')).graph!;
const params = new Map([...liveParams(graph, 1)].map(([k, v]) => [k, Float32Array.from(v)]));
for (const step of [10, 20]) saveCheckpoint(path.join(dir, 'run'), graph, { step, params, ema: params, rng: { seed: 0 }, data: {}, options: {} });

const vdm = (...args: string[]) => vdmAsync(['sample', ...args], dir);

gpuTest('a run folder: its newest checkpoint, a header, progress, and the files in <run>/samples/step-NNNNNN', async () => {
  const r = await vdm('run', '--spec', 'denoiser.vdm', '--n', '2', '--class', '3', '--caption', 'red square', '--fps', '4');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /sampling Denoiser from run\/step-000020\.safetensors \(step 20, EMA weights\) on .*: 2 samples, ddim 5 steps \(eta 0\), guidance 2, class 3, seed 0/);
  assert.match(r.err, /step 5\/5 /);
  const out = path.join(dir, 'run/samples/step-000020');
  for (const f of ['samples.gif', 'grid.png', 'samples.safetensors']) {
    assert.ok(fs.existsSync(path.join(out, f)), f);
    assert.match(r.out, new RegExp(`run/samples/step-000020/${f.replace('.', '\\.')}`));
  }
  // an MP4 when ffmpeg is installed, else a note saying so
  assert.ok(fs.existsSync(path.join(out, 'samples.mp4')) || /no samples\.mp4: ffmpeg is not installed/.test(r.err), r.err);
  const st = readSafetensors(path.join(out, 'samples.safetensors'));
  assert.equal(st.tensors.samples.shape, [2, 3, 2, 4, 4]);
  assert.equal([...st.tensors.labels.data], [3, 3]);
  assert.is(st.metadata['vdm.caption'], 'red square');
  assert.not.match(r.err, STACK);
});

test('another spec, an unknown class, a missing caption, a bad flag: one message each, exit 1, no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['run', '--spec', 'wider.vdm', '--caption', 'a'], /vdm sample: run\/step-000020\.safetensors was trained on a different spec than wider\.vdm:\n[^]*dim: 16 -> 32[^]*--spec/],
    [['run/step-000010.safetensors', '--spec', 'denoiser.vdm', '--caption', 'a', '--class', '7'], /vdm sample: --class 7 is not a class of model Denoiser: input 'y' has classes 0 to 3\n$/],
    [['run', '--spec', 'denoiser.vdm'], /vdm sample: model Denoiser takes text input 'txt': pass --caption/],
    [['run', '--spec', 'denoiser.vdm', '--guidance', 'lots'], /vdm sample: --guidance must be a number of at least 0, or none, got lots\n$/],
  ];
  for (const [args, pattern] of cases) {
    const r = await vdm(...args);
    assert.is(r.code, 1, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, pattern);
    assert.not.match(r.err, STACK);
    assert.is(r.out, '');
  }
  const unknown = await vdm('run', '--spec', 'denoiser.vdm', '--temperature', '2');
  assert.is(unknown.code, 2);
  assert.match(unknown.err, /Unknown argument: temperature/);
});

// Rectified flow end to end: vdm train a few steps, then vdm sample the run with Euler under guidance.
const FLOW = `model FlowDenoiser {
  dims b = 4, c = 3, t = 2, h = 8, w = 8
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  input y : label[b](classes: 4, null: true)
  e = linear(silu(linear(sinusoidal(s, dim: 16), 16)), 16) + embed(y, classes: 5, dim: 16)
  output v : video[b, c, t, h, w] = linear(silu(linear(x, 16) + e), 3)
}

diffusion {
  schedule rectified_flow(steps: 100, shift: 2.0)
  predict  v
  loss     mse
  sampler  euler(steps: 10)
  guidance cfg(scale: 3.0, dropout: 0.2)
}
`;

gpuTest('rectified flow: vdm train a tiny spec for a few steps, then vdm sample it with Euler and guidance', async () => {
  fs.writeFileSync(path.join(dir, 'flow.vdm'), FLOW);
  const trained = await vdmAsync(['train', 'flow.vdm', '--steps', '12', '--every', '6', '--lr', '1e-3', '--out', 'flow-run'], dir);
  assert.is(trained.code, 0, trained.err);
  const losses = fs.readFileSync(path.join(dir, 'flow-run/train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number }).filter((r) => r.loss !== undefined);
  assert.ok(losses.length > 0 && losses.every((r) => Number.isFinite(r.loss) && r.loss! > 0), 'finite velocity losses');
  const r = await vdm('flow-run', '--spec', 'flow.vdm', '--n', '2', '--class', '1');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /2 samples, euler 10 steps, guidance 3, class 1/);
  const st = readSafetensors(path.join(dir, 'flow-run/samples/step-000012/samples.safetensors'));
  assert.equal(st.tensors.samples.shape, [2, 3, 2, 8, 8]);
  assert.ok([...st.tensors.samples.data].every(Number.isFinite), 'finite samples');
  assert.is(st.metadata['vdm.sampler'], 'euler');
  const refused = await vdm('flow-run', '--spec', 'flow.vdm', '--sampler', 'ddim');
  assert.is(refused.code, 1);
  assert.match(refused.err, /--sampler ddim needs a DDPM schedule; FlowDenoiser's rectified_flow samples with euler/);
  assert.not.match(refused.err, STACK);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
