// The training loop's pieces that need no GPU: condition dropout, how settings are resolved on a
// resume, and the inputs the data cannot fill.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { dropLabels, prepareTraining, resolveSettings, TrainSetupError } from '../../src/runtime/train-loop.ts';
import { check, tempDir } from '../compiler/helpers.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('condition dropout: the null class at rate p, a function of (seed, step, index)', () => {
  const labels = Int32Array.from({ length: 4000 }, (_, i) => i % 7);
  const a = dropLabels(labels, 7, 0.1, 3, 12);
  assert.equal(a, dropLabels(labels, 7, 0.1, 3, 12));
  assert.not.equal(a, dropLabels(labels, 7, 0.1, 3, 13), 'another step draws anew');
  const dropped = a.filter((l) => l === 7).length;
  assert.ok(Math.abs(dropped / 4000 - 0.1) < 0.02, `${dropped} of 4000 dropped`);
  a.forEach((l, i) => assert.ok(l === 7 || l === labels[i]));
  // a sample's draw does not depend on the batch it is in
  assert.equal(dropLabels(labels.subarray(0, 16), 7, 0.1, 3, 12), a.subarray(0, 16));
  assert.is(dropLabels(labels, 7, 0, 3, 12), labels);
});

test('settings: given over the checkpoint\'s over the defaults; a change is noted; bad values named by flag', () => {
  const notes: string[] = [];
  const s = resolveSettings({ lr: 1e-3 }, { lr: 3e-4, steps: 500, seed: 9 }, notes);
  assert.equal([s.lr, s.steps, s.seed, s.warmup, s.every, s.ema], [1e-3, 500, 9, 50, 100, true]);
  assert.equal(notes, ['--lr 0.001 replaces the checkpoint\'s 0.0003']);
  assert.is(resolveSettings({}, null).warmup, 100);
  assert.is(resolveSettings({ steps: 30 }, null).warmup, 3);
  assert.throws(() => resolveSettings({ steps: 0 }, null), (e: Error) => e instanceof TrainSetupError && e.message === '--steps must be a positive integer, got 0');
  assert.throws(() => resolveSettings({ lr: Number.NaN }, null), /--lr must be a positive number/);
  assert.throws(() => resolveSettings({ warmup: 20, steps: 10 }, null), /--warmup 20 is longer than the run/);
  assert.is(resolveSettings({}, null).emaDecay, 0.9999);
  assert.is(resolveSettings({}, { emaDecay: 0.999 }).emaDecay, 0.999, 'a resumed run keeps its decay');
  assert.throws(() => resolveSettings({ emaDecay: 1 }, null), /--ema-decay must be a number in \[0, 1\)/);
});

test('inputs the data cannot fill (a second label, an image of another size) are refused before anything is written', async () => {
  const g = check(`model M {
  dims b = 2, c = 3, t = 2, h = 8, w = 8
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  input y : label[b](classes: 4)
  input z : label[b](classes: 4)
  input ref : image[b, c=1, h, w]
  output eps : video[b, c, t, h, w] = x
}

diffusion {
  schedule cosine(steps: 10, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 5, eta: 0.0)
}`).graph!;
  const out = path.join(tempDir(), 'run');
  try {
    await prepareTraining(g, { out });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TrainSetupError);
    assert.match((e as Error).message, /inputs 'z' \(label\), 'ref' \(image\) that the training data cannot fill/);
  }
  assert.not.ok(fs.existsSync(out));
});

test.run();
