// Conditioning inputs a clip fills besides its label and scalar: its first frame as an image, its
// object's track as a trajectory, its caption as text embeddings (zeroed when guidance drops it),
// its objects' displacements as a motion map, and a model taking all four trains from the built-in
// data through the pipeline.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { trainSpec } from '../../src/pipeline.ts';
import { conditionTensors, wordEmbedding } from '../../src/runtime/data/conditions.ts';
import { dataNeeds, openDataset } from '../../src/runtime/data/index.ts';
import { insideShape, motionMap, objectCentre, renderSynthetic, syntheticSample, velocity, type SyntheticSample } from '../../src/runtime/data/synthetic.ts';
import type { SampleShape } from '../../src/runtime/data/types.ts';
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
  input flow  : motion[b, c=2, t, h, w]
  z = linear(image_condition(x, first), 8) + linear(silu(linear(sinusoidal(s, dim: 16), 8)), 8)
  z = z + linear(flow, 8, init: "zeros") as motion_proj
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
  assert.equal(needs.conditions.map((c) => `${c.input}:${c.kind}`), ['first:image', 'traj:trajectory', 'txt:text', 'flow:motion']);
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
  // each sample's motion map, in batch order
  const flow = t.get('flow')!;
  const per = 2 * frames * h * w;
  assert.is(flow.length, 2 * per);
  for (let j = 0; j < 2; j++) assert.equal(Array.from(flow.subarray(j * per, (j + 1) * per)), Array.from(batch.facts![j].motion()));
  assert.ok(flow.some((v) => v !== 0));
});

/**
 * The displacement the motion map should hold at frame f, pixel (x, y), found apart from the data
 * code's painter: the first object (the top one) whose shape holds the pixel's centre, its centre at
 * the next frame minus at this one (the last frame: this one minus the one before); else none.
 */
function expectedMotion(sample: SyntheticSample, shape: SampleShape, f: number, x: number, y: number): [number, number] | null {
  for (const o of sample.objects) {
    const [cx, cy] = objectCentre(o, f, shape);
    if (!insideShape(o.shape, x + 0.5 - cx, y + 0.5 - cy, o.r)) continue;
    const [from, to] = f < shape.t - 1 ? [f, f + 1] : [f - 1, f];
    const [x0, y0] = objectCentre(o, from, shape), [x1, y1] = objectCentre(o, to, shape);
    return [x1 - x0, y1 - y0];
  }
  return null;
}

test('motion map: each pixel holds its top object\'s displacement to the next frame, bounces included; 0 on the background', () => {
  const shape = { c: 3, t: 10, h: 12, w: 12 };
  const frame = shape.h * shape.w;
  let bounces = 0, overlaps = 0, moving = 0;
  for (let index = 0; index < 12; index++) {
    const sample = syntheticSample(7, index, shape, { objects: 2 });
    const map = motionMap(sample, shape);
    const video = new Float32Array(shape.c * shape.t * frame);
    renderSynthetic(sample, shape, video, 0);
    assert.is(map.length, 2 * shape.t * frame);
    for (let f = 0; f < shape.t; f++) {
      for (let y = 0; y < shape.h; y++) for (let x = 0; x < shape.w; x++) {
        const p = y * shape.w + x;
        const got = [map[f * frame + p], map[(shape.t + f) * frame + p]];
        const want = expectedMotion(sample, shape, f, x, y) ?? [0, 0];
        assert.ok(Math.abs(got[0] - want[0]) < 1e-5 && Math.abs(got[1] - want[1]) < 1e-5, `sample ${index} frame ${f} pixel (${x}, ${y}): ${got} vs ${want}`);
        if (got[0] !== 0 || got[1] !== 0) moving++;
        const covering = sample.objects.filter((o) => {
          const [cx, cy] = objectCentre(o, f, shape);
          return insideShape(o.shape, x + 0.5 - cx, y + 0.5 - cy, o.r);
        });
        if (covering.length > 1) overlaps++;
        // where the map has the top object, the renderer drew that object's colour
        if (covering.length) {
          const rgb = [0, 1, 2].map((k) => Math.round((video[(k * shape.t + f) * frame + p] + 1) * 127.5));
          assert.equal(rgb, [...covering[0].colour], `sample ${index} frame ${f} pixel (${x}, ${y}) is drawn in the top object's colour`);
        }
      }
      // a bounce between f and f + 1: the centres move less along that axis than the velocity says
      const o = sample.objects[0];
      if (f < shape.t - 1) {
        const [vx, vy] = velocity(o);
        const [x0, y0] = objectCentre(o, f, shape), [x1, y1] = objectCentre(o, f + 1, shape);
        if (Math.abs(x1 - x0 - vx) > 1e-6 || Math.abs(y1 - y0 - vy) > 1e-6) bounces++;
      }
    }
  }
  assert.ok(bounces > 0 && overlaps > 0 && moving > 0, `bounces ${bounces}, overlapping pixels ${overlaps}, moving pixels ${moving}: the check must see each`);
  // a still clip (t = 1) has no next frame: all zero
  assert.ok(motionMap(syntheticSample(7, 0, { c: 3, t: 1, h: 8, w: 8 }), { c: 3, t: 1, h: 8, w: 8 }).every((v) => v === 0));
});

test('a bounce: the map holds the distance travelled, not the velocity', () => {
  // find a frame where the first object bounces off a wall between f and f + 1
  const shape = { c: 3, t: 16, h: 8, w: 8 };
  for (let index = 0; index < 50; index++) {
    const sample = syntheticSample(1, index, shape);
    const o = sample.objects[0];
    const [vx, vy] = velocity(o);
    for (let f = 0; f < shape.t - 1; f++) {
      const [x0, y0] = objectCentre(o, f, shape), [x1, y1] = objectCentre(o, f + 1, shape);
      if (Math.abs(x1 - x0 - vx) < 1e-6 && Math.abs(y1 - y0 - vy) < 1e-6) continue;
      const map = motionMap(sample, shape);
      const p = Math.floor(y0) * shape.w + Math.floor(x0); // the pixel under the centre is the object's
      const got = [map[f * 64 + p], map[(shape.t + f) * 64 + p]];
      assert.ok(Math.abs(got[0] - (x1 - x0)) < 1e-5 && Math.abs(got[1] - (y1 - y0)) < 1e-5, `${got} vs ${[x1 - x0, y1 - y0]}`);
      assert.ok(Math.hypot(got[0] - vx, got[1] - vy) > 1e-3, 'the bounce shows: the displacement is not the velocity');
      return;
    }
  }
  assert.unreachable('no bounce in 50 clips of 16 frames');
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
  assert.match(String(refused), /'traj' \(trajectory\), 'txt' \(text\), 'flow' \(motion\), which only the synthetic data can fill/);
});

test.run();
