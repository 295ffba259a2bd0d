// Conditioning inputs a clip fills besides its label and scalar: its first frame as an image, its
// object's track as a trajectory, its caption as text embeddings (zeroed when guidance drops it),
// and a model taking all three trains from the built-in data through the pipeline.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { trainSpec } from '../../src/pipeline.ts';
import { conditionTensors, wordEmbedding } from '../../src/runtime/data/conditions.ts';
import { dataNeeds, openDataset } from '../../src/runtime/data/index.ts';
import { objectCentre, syntheticSample } from '../../src/runtime/data/synthetic.ts';
import { readTrainLog } from '../../src/runtime/train-log.ts';
import { checkFiles, tempDir } from '../compiler/helpers.ts';

const SPEC = `import "std/cond.vdm"
import "std/attention.vdm"

model Conditioned {
  dims b = 2, c = 3, t = 3, h = 8, w = 8
  input x     : video[b, c, t, h, w]
  input s     : timestep[b]
  input first : image[b, c, h, w]
  input traj  : trajectory[b, t, n=3, c=2]
  input txt   : text[b, l=6, c=8]
  z = linear(image_condition(x, first), 8) + linear(silu(linear(sinusoidal(s, dim: 16), 8)), 8)
  z = z + trajectory_embedder(traj, 8, hidden: 8) as traj_embedder
  z = cross_attention(z, txt, 2) as cross
  output y : video[b, c, t, h, w] = linear(z, 3)
}

diffusion {
  schedule cosine(steps: 50, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 5, eta: 0.0)
  guidance cfg(scale: 2.0, dropout: 0.5)
}
`;

const graph = () => {
  const r = checkFiles({ 'cond.vdm': SPEC }, { entry: 'cond.vdm' });
  assert.ok(r.graph, JSON.stringify(r.diagnostics));
  return { graph: r.graph!, file: path.join(r.dir, 'cond.vdm') };
};

test('first frame, track and caption fill image, trajectory and text inputs', async () => {
  const { graph: g } = graph();
  const needs = dataNeeds(g);
  assert.equal(needs.conditions.map((c) => `${c.input}:${c.kind}`), ['first:image', 'traj:trajectory', 'txt:text']);
  assert.equal(needs.other, []);
  const shape = needs.sample.shape;
  const data = await openDataset('synthetic', shape, { seed: 4 });
  const batch = await data.batch(0, 2);
  const t = conditionTensors(needs, batch, (j) => j === 1);
  const [c, frames, h, w] = [shape.c, shape.t, shape.h, shape.w];
  const first = t.get('first')!;
  for (let j = 0; j < 2; j++) for (let k = 0; k < c; k++) for (let p = 0; p < h * w; p++) {
    assert.is(first[(j * c + k) * h * w + p], batch.video[((j * c + k) * frames) * h * w + p]);
  }
  // the three points of frame f surround the object's centre, as fractions of the frame
  const traj = t.get('traj')!;
  const sample = syntheticSample(4, 0, shape);
  for (let f = 0; f < frames; f++) {
    const [cx, cy] = objectCentre(sample.objects[0], f, shape);
    const mean = [0, 1].map((a) => (traj[(f * 3) * 2 + a] + traj[(f * 3 + 1) * 2 + a] + traj[(f * 3 + 2) * 2 + a]) / 3);
    assert.ok(Math.abs(mean[0] - cx / w) < 1e-6 && Math.abs(mean[1] - cy / h) < 1e-6, `frame ${f}: ${mean} vs ${[cx / w, cy / h]}`);
  }
  // sample 0's caption, word by word, then zero rows; sample 1 was dropped: all zero
  const txt = t.get('txt')!;
  const words = batch.facts![0].caption.split(' ');
  assert.match(batch.facts![0].caption, /^(red|green|blue|yellow|cyan|magenta|white|orange) (square|circle|triangle) moving [a-z-]+$/);
  words.forEach((word, k) => assert.equal(Array.from(txt.subarray(k * 8, k * 8 + 8)), Array.from(wordEmbedding(word, 8))));
  assert.ok(txt.subarray(words.length * 8, 6 * 8).every((v) => v === 0));
  assert.ok(txt.subarray(6 * 8).every((v) => v === 0), 'dropped text is zero');
  assert.not.equal(Array.from(wordEmbedding('red', 8)), Array.from(wordEmbedding('blue', 8)));
});

gpuTest('a model with image, trajectory and text inputs trains on the built-in data; a folder cannot fill the track', async () => {
  const { file } = graph();
  const out = path.join(tempDir(), 'run');
  const r = await trainSpec(file, { out, settings: { steps: 3, every: 3, logEvery: 1, lr: 1e-3 } });
  assert.ok(r.ok && r.result.status === 'finished', JSON.stringify(r));
  const log = readTrainLog(path.join(out, 'train.jsonl'));
  assert.is(log.length, 3);
  for (const l of log) assert.ok(Number.isFinite(l.loss) && l.loss > 0 && l.grad_norm > 0, JSON.stringify(l));

  const clips = tempDir();
  fs.mkdirSync(path.join(clips, 'a'));
  const refused = await trainSpec(file, { out: path.join(tempDir(), 'run'), settings: { steps: 1, data: clips } }).then(() => null, (e: Error) => e.message);
  assert.match(String(refused), /'traj' \(trajectory\), 'txt' \(text\), which only the synthetic data can fill/);
});

test.run();
