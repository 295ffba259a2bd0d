// vdm eval's measures: pixel statistics, temporal consistency, the moving shapes read back from
// pixels (centroid, shape, colour), and the Fréchet distance with its eigen-solver.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openDataset } from '../../src/runtime/data/index.ts';
import { objectCentre, SYNTHETIC_COLOURS, syntheticSample } from '../../src/runtime/data/synthetic.ts';
import { frameStats, temporalConsistency, type Clips } from '../../src/runtime/eval/clips.ts';
import { clipFrechetDistance, frechetDistance, meanCovariance, symmetricEigen } from '../../src/runtime/eval/frechet.ts';
import { evaluateClips } from '../../src/runtime/eval/index.ts';
import { colourOf, frameObject, maskShapeFit, objectSpeed, shapeColourAccuracy, shapeFit, shapeOf, trajectoryAcceleration } from '../../src/runtime/eval/shapes.ts';
import { Rng } from '../../src/runtime/data/rng.ts';

const shape = { c: 3, t: 6, h: 24, w: 24 };
async function synthetic(n: number, seed = 1): Promise<Clips & { labels: Int32Array }> {
  const batch = await (await openDataset('synthetic', shape, { seed, label: { classes: 24 } })).batch(0, n);
  return { shape: { n, ...shape }, data: batch.video, labels: batch.label! };
}
const noise = (n: number, seed: number): Clips => {
  const rng = new Rng(seed);
  return { shape: { n, ...shape }, data: Float32Array.from({ length: n * 3 * 6 * 24 * 24 }, () => rng.range(-1, 1)) };
};

test('pixel statistics and temporal consistency', () => {
  const still: Clips = { shape: { n: 2, c: 1, t: 3, h: 2, w: 2 }, data: new Float32Array(24).fill(0.5) };
  assert.is(temporalConsistency(still), 0);
  assert.equal(frameStats(still).map((s) => [s.mean, s.std]), [[0.5, 0], [0.5, 0], [0.5, 0]]);
  // frame f of every clip = f: adjacent frames differ by 1 everywhere
  const ramp: Clips = { shape: { n: 2, c: 1, t: 3, h: 2, w: 2 }, data: Float32Array.from({ length: 24 }, (_, i) => Math.floor(i / 4) % 3) };
  assert.is(temporalConsistency(ramp), 1);
  assert.equal(frameStats(ramp).map((s) => s.mean), [0, 1, 2]);
});

test('the moving shapes read back from pixels: centroid, shape, colour, smooth tracks', async () => {
  const clips = await synthetic(12);
  for (let s = 0; s < 12; s++) {
    const sample = syntheticSample(1, s, shape, { classes: 24 });
    const o = sample.objects[0];
    for (let f = 0; f < shape.t; f++) {
      const found = frameObject(clips, s, f)!;
      const [cx, cy0] = objectCentre(o, f, shape);
      const cy = cy0 + (o.shape === 2 ? o.r / 3 : 0); // a triangle's area centroid sits a third below its box's centre
      assert.ok(Math.hypot(found.x - cx, found.y - cy) < 1, `clip ${s} frame ${f}: (${found.x}, ${found.y}) vs (${cx}, ${cy})`);
      assert.is(colourOf(found), SYNTHETIC_COLOURS.indexOf(o.colour), `clip ${s}: colour`);
    }
    assert.is(shapeOf(frameObject(clips, s, 0)!), o.shape, `clip ${s}: shape`);
  }
  assert.is(shapeColourAccuracy(clips, clips.labels), 1);
  assert.ok(shapeColourAccuracy(noise(6, 3)) < 0.2, 'noise shows no shapes');
  // constant velocity between bounces: small acceleration; the same frames shuffled jump about
  assert.ok(trajectoryAcceleration(clips) < 1.5, `data ${trajectoryAcceleration(clips)}`);
  const order = [0, 3, 1, 5, 2, 4], plane = shape.h * shape.w;
  const shuffled = Float32Array.from(clips.data, (_, i) => {
    const f = Math.floor(i / plane) % shape.t;
    return clips.data[i + (order[f] - f) * plane];
  });
  const jumpy = trajectoryAcceleration({ shape: clips.shape, data: shuffled });
  assert.ok(jumpy > 2 * trajectoryAcceleration(clips), `shuffled ${jumpy}`);
});

test('shape fit: the data\'s frames are clean shapes (IoU near 1 at 8, 16 and 24 pixels); ragged, split or noisy ones score less', async () => {
  for (const side of [8, 16, 24]) {
    const sh = { c: 3, t: 4, h: side, w: side };
    const batch = await (await openDataset('synthetic', sh, { seed: 3 })).batch(0, 6);
    const fit = shapeFit({ shape: { n: 6, ...sh }, data: batch.video });
    assert.ok(fit > 0.97, `data at ${side}: ${fit}`);
  }
  // a 4 x 4 square in a 12 x 12 frame fits exactly; with two corner pixels moved two pixels away, less;
  // split in two, much less; an empty mask 0
  const mask = (pixels: [number, number][]) => { const m = new Uint8Array(144); for (const [x, y] of pixels) m[y * 12 + x] = 1; return m; };
  const square: [number, number][] = [];
  for (let y = 4; y < 8; y++) for (let x = 4; x < 8; x++) square.push([x, y]);
  assert.is(maskShapeFit(mask(square), 12, 12), 1);
  const ragged = maskShapeFit(mask([...square.slice(1, -1), [9, 4], [4, 9]]), 12, 12);
  assert.ok(ragged < 0.85 && ragged > 0.6, `ragged ${ragged}`);
  const split = maskShapeFit(mask([[1, 1], [1, 2], [2, 1], [2, 2], [9, 9], [9, 10], [10, 9], [10, 10]]), 12, 12);
  assert.ok(split < 0.5, `split ${split}`);
  assert.is(maskShapeFit(new Uint8Array(144), 12, 12), 0);
  assert.ok(shapeFit(noise(4, 5)) < 0.4, `noise ${shapeFit(noise(4, 5))}`);
});

test('object speed: the centroids\' mean step, as the data moves them; 0 for a clip whose frames are all its first', async () => {
  const clips = await synthetic(12);
  let sum = 0, count = 0;
  for (let s = 0; s < 12; s++) {
    const o = syntheticSample(1, s, shape, { classes: 24 }).objects[0];
    for (let f = 1; f < shape.t; f++) {
      const [[x0, y0], [x1, y1]] = [objectCentre(o, f - 1, shape), objectCentre(o, f, shape)];
      sum += Math.hypot(x1 - x0, y1 - y0);
      count++;
    }
  }
  // pixel rounding of the drawn shape moves the centroid by a fraction of a pixel
  assert.ok(Math.abs(objectSpeed(clips) - sum / count) < 0.25, `${objectSpeed(clips)} vs ${sum / count}`);
  const plane = shape.h * shape.w;
  const frozen = Float32Array.from(clips.data, (_, i) => clips.data[i - (Math.floor(i / plane) % shape.t) * plane]);
  assert.is(objectSpeed({ shape: clips.shape, data: frozen }), 0);
  const report = evaluateClips({ shape: clips.shape, data: frozen }, clips, { shapes: true });
  assert.equal(report.objectSpeed, { samples: 0, data: objectSpeed(clips) });
});

test('symmetric eigen-decomposition: A v = λ v', () => {
  const rng = new Rng(9);
  const d = 7;
  const b = Array.from({ length: d }, () => Float64Array.from({ length: d }, () => rng.range(-1, 1)));
  const a = b.map((r, i) => Float64Array.from({ length: d }, (_, j) => r.reduce((s, _v, k) => s + b[i][k] * b[j][k], 0)));
  const { values, vectors } = symmetricEigen(a);
  for (let k = 0; k < d; k++) for (let i = 0; i < d; i++) {
    const av = a[i].reduce((s, aij, j) => s + aij * vectors[j][k], 0);
    assert.ok(Math.abs(av - values[k] * vectors[i][k]) < 1e-9, `eigenpair ${k}`);
  }
});

test('Fréchet distance: the mean term for equal covariances, 0 for one set, large for noise', async () => {
  const rng = new Rng(4);
  const rows = Array.from({ length: 40 }, () => Float64Array.from({ length: 5 }, () => rng.range(-1, 1)));
  const shifted = rows.map((r) => r.map((v, i) => v + (i === 2 ? 3 : 0)));
  const [a, b] = [meanCovariance(rows), meanCovariance(shifted)];
  assert.ok(Math.abs(frechetDistance(a.mean, a.cov, b.mean, b.cov) - 9) < 1e-9);
  // 1-D: (μ1 − μ2)² + σ1² + σ2² − 2 σ1 σ2
  const one = frechetDistance(Float64Array.of(1), [Float64Array.of(4)], Float64Array.of(0), [Float64Array.of(1)]);
  assert.ok(Math.abs(one - (1 + 4 + 1 - 4)) < 1e-12, `${one}`);
  const data = await synthetic(16), other = await synthetic(16, 2);
  assert.ok(clipFrechetDistance(data, data) < 1e-6);
  const near = clipFrechetDistance(data, other), far = clipFrechetDistance(data, noise(16, 5));
  assert.ok(far > 5 * near, `moving shapes ${near}, noise ${far}`);
});

test('evaluateClips: one report of samples beside data', async () => {
  const data = await synthetic(8);
  const r = evaluateClips(noise(8, 1), data, { shapes: true, labels: { samples: data.labels, data: data.labels } });
  assert.is(r.frames.length, shape.t);
  assert.is(r.shapeColourAccuracy!.data, 1);
  assert.ok(r.temporalConsistency.samples > r.temporalConsistency.data);
  assert.throws(() => evaluateClips({ shape: { n: 1, c: 3, t: 2, h: 24, w: 24 }, data: new Float32Array(3 * 2 * 576) }, data), /compare clips of one shape/);
});

test.run();
