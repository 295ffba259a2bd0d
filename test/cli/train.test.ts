// `vdm train`: a run writes checkpoints, a log and a loss curve; a run killed with SIGKILL and
// resumed takes the uninterrupted run's steps bit for bit; SIGINT saves and exits 130; a
// checkpoint of another spec, bad arguments and a diverging run end in one clear message.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { readParams } from '../../src/pipeline.ts';
import { listCheckpoints, loadCheckpoint } from '../../src/runtime/checkpoint.ts';
import { readSafetensors } from '../../src/runtime/safetensors.ts';
import { readTrainLog, type TrainRecord } from '../../src/runtime/train-log.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-train-'));
// Small enough that a step takes milliseconds on the software adapter; a class label with a null
// class and guidance dropout, so condition dropout is part of what must resume exactly.
const SPEC = (freq: number) => `model Denoiser {
  dims b = 3, c = 2, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  input y : label[b](classes: 4, null: true)
  e = linear(silu(linear(sinusoidal(s, dim: ${freq}), 8)), 8) + embed(y, classes: 5, dim: 8) as y_embedder
  z = silu(linear(x, 8) + e)
  z = z + gelu_tanh(linear(z, 8)) * 0.5
  output out : video[b, c, t, h, w] = linear(z, 2)
}

diffusion {
  schedule cosine(steps: 100, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 10, eta: 0.0)
  guidance cfg(scale: 2.0, dropout: 0.25)
}
`;
const spec = path.join(dir, 'denoiser.vdm');
fs.writeFileSync(spec, SPEC(16));
const other = path.join(dir, 'wider.vdm');
fs.writeFileSync(other, SPEC(32));

interface Run { code: number | null; signal: NodeJS.Signals | null; out: string; err: string }

function start(...args: string[]) {
  const child = spawn(process.execPath, [path.join(repo, 'bin/vdm.mjs'), 'train', ...args], { cwd: dir });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const done = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })));
  let finished = false;
  void done.then(() => { finished = true; });
  return { child, done, finished: () => finished };
}
const vdm = (...args: string[]) => start(...args).done;

/** Waits until `file` exists (a checkpoint appears whole: it is renamed into place). */
async function appears(file: string, run: ReturnType<typeof start>, limitMs = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!fs.existsSync(file)) {
    if (run.finished()) throw new Error(`the run ended before ${path.basename(file)} appeared: ${(await run.done).err}`);
    if (Date.now() - t0 > limitMs) throw new Error(`${file} did not appear in ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const STACK = /^\s+at .+:\d+:\d+\)?$/m;
const core = (r: TrainRecord) => ({ step: r.step, loss: r.loss, grad_norm: r.grad_norm, lr: r.lr });
const graph = () => checkFile(spec).graph!;

gpuTest('a run writes checkpoints (weights, EMA, Adam moments, metadata), a JSONL log and a loss curve', async () => {
  const out = path.join(dir, 'a');
  const r = await vdm(spec, '--steps', '20', '--every', '5', '--lr', '1e-3', '--out', out);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /finished: step 20 of 20/);
  assert.equal(listCheckpoints(out).map((c) => c.step), [10, 15, 20], 'the last 3 are kept');
  assert.is(JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8')).step, 20);
  assert.equal(readTrainLog(path.join(out, 'train.jsonl')).map((l) => l.step), [5, 10, 15, 20]);
  for (const l of readTrainLog(path.join(out, 'train.jsonl'))) assert.ok(l.loss > 0 && l.grad_norm > 0 && l.lr >= 0 && l.seconds > 0, JSON.stringify(l));
  assert.match(fs.readFileSync(path.join(out, 'loss.svg'), 'utf8'), /^<svg[^>]*>[^]*class="smoothed"[^]*<\/svg>\n$/);

  const st = readSafetensors(path.join(out, 'step-000020.safetensors'));
  const params = graph().nodes.flatMap((n) => n.params);
  for (const p of params) {
    for (const name of [p.path, `ema.${p.path}`, `adam.m.${p.path}`, `adam.v.${p.path}`]) {
      assert.equal(st.tensors[name]?.shape, [...p.shape], name);
    }
  }
  assert.is(Object.keys(st.tensors).length, 4 * params.length);
  assert.is(st.metadata['vdm.step'], '20');
  assert.equal(JSON.parse(st.metadata['vdm.rng']), { seed: 0, step: 20 });
  assert.is(JSON.parse(st.metadata['vdm.data']).batch_index, 20);
  assert.is(JSON.parse(st.metadata['vdm.options']).lr, 1e-3);
  assert.is(loadCheckpoint(path.join(out, 'step-000020.safetensors'), graph()).step, 20);
  // the weights are what `vdm run --params` takes (readParams ignores the optimizer's tensors)
  assert.is(readParams(graph(), path.join(out, 'step-000020.safetensors')).size, params.length);
});

gpuTest('SIGKILL, then --resume: the losses equal an uninterrupted run\'s bit for bit', async () => {
  const args = ['--steps', '200', '--every', '20', '--lr', '1e-3', '--seed', '7'];
  const full = start(spec, ...args, '--out', path.join(dir, 'full'));
  const killed = start(spec, ...args, '--out', path.join(dir, 'killed'));
  await appears(path.join(dir, 'killed', 'step-000020.safetensors'), killed);
  killed.child.kill('SIGKILL');
  const k = await killed.done;
  assert.is(k.signal, 'SIGKILL');
  const at = listCheckpoints(path.join(dir, 'killed')).at(-1)!.step;
  assert.ok(at >= 20 && at < 200, `killed mid-run (checkpoint ${at})`);

  // the settings come from the checkpoint; --recompute changes memory, not numbers
  const resumed = await vdm(spec, '--out', path.join(dir, 'killed'), '--resume', '--recompute');
  assert.is(resumed.code, 0, resumed.err);
  assert.match(resumed.out, new RegExp(`resuming at step ${at} `));
  const f = await full.done;
  assert.is(f.code, 0, f.err);
  const want = readTrainLog(path.join(dir, 'full', 'train.jsonl')).map(core);
  const got = readTrainLog(path.join(dir, 'killed', 'train.jsonl')).map(core);
  assert.ok(got.filter((r) => r.step > at).length >= 10, 'steps after the resume are compared');
  assert.equal(got, want);
});

gpuTest('SIGINT finishes the step, saves a checkpoint and exits 130', async () => {
  const out = path.join(dir, 'int');
  const run = start(spec, '--steps', '200', '--every', '20', '--out', out);
  await appears(path.join(out, 'step-000020.safetensors'), run);
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.is(r.code, 130, r.err);
  const last = listCheckpoints(out).at(-1)!.step;
  assert.ok(last >= 20 && last < 200, `stopped at ${last}`);
  assert.match(r.out, new RegExp(`stopped by SIGINT at step ${last} of 200; continue with: vdm train .* --resume`));
  assert.is(readTrainLog(path.join(out, 'train.jsonl')).at(-1)!.step, last, 'the log reaches the checkpoint');
  assert.is(loadCheckpoint(path.join(out, `step-${String(last).padStart(6, '0')}.safetensors`), graph()).step, last);
});

gpuTest('--resume with another spec is refused, naming the difference', async () => {
  const r = await vdm(other, '--out', path.join(dir, 'a'), '--resume');
  assert.is(r.code, 1);
  assert.match(r.err, /was trained on a different spec than .*wider\.vdm/);
  assert.match(r.err, /\[16, 8\] -> \[32, 8\]/);
  assert.not.match(r.err, STACK);
});

gpuTest('bad arguments: one line, exit 1, no stack trace', async () => {
  const runs = await Promise.all([
    vdm(path.join(dir, 'nope.vdm')),
    vdm(spec, '--steps', '0'),
    vdm(spec, '--data', path.join(dir, 'no-such-folder'), '--out', path.join(dir, 'b')),
    vdm(spec, '--out', path.join(dir, 'a')),
  ]);
  const [missing, steps, data, used] = runs;
  assert.match(missing.err, /^.*nope\.vdm: error VDM002: cannot read .*nope\.vdm: no such file\n/);
  assert.is(steps.err, 'vdm train: --steps must be a positive integer, got 0\n');
  assert.match(data.err, /^vdm train: .*no-such-folder: cannot be read as a folder of videos \([^\n]*\n$/);
  assert.match(used.err, /^vdm train: .* already holds checkpoints \(the newest is step-000020\.safetensors\): continue that run with --resume, or pass another --out\n$/);
  for (const r of runs) {
    assert.is(r.code, 1, r.err);
    assert.not.match(r.err, STACK);
  }
  assert.not.ok(fs.existsSync(path.join(dir, 'b')), 'nothing written for a run that cannot start');
});

gpuTest('a diverging run stops at the step, names the parameter and keeps the previous checkpoint', async () => {
  const out = path.join(dir, 'nan');
  const r = await vdm(spec, '--steps', '10', '--every', '1', '--lr', '1e30', '--warmup', '0', '--out', out);
  assert.is(r.code, 1);
  const m = /^vdm train: training diverged: a non-finite gradient at step (\d+), first in (\S+) \(.*the last good checkpoint is (\S+);/m.exec(r.err);
  assert.ok(m, r.err);
  const [step, param, file] = [Number(m![1]), m![2], m![3]];
  assert.ok(graph().nodes.some((n) => n.params.some((p) => p.path === param)), param);
  assert.equal(listCheckpoints(out).map((c) => c.step).at(-1), step - 1, 'nothing saved at the bad step');
  assert.is(path.basename(file), `step-${String(step - 1).padStart(6, '0')}.safetensors`);
  assert.is(loadCheckpoint(file, graph()).step, step - 1, 'the previous checkpoint reads back whole');
  assert.not.match(r.err, STACK);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
