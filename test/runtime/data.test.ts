import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { dataNeeds, openDataset, SYNTHETIC_CLASSES, SYNTHETIC_CLASS_NAMES, type SampleShape } from '../../src/runtime/data/index.ts';
import { hashKey, permutation, Rng } from '../../src/runtime/data/rng.ts';
import { objectCentre, syntheticSample, velocity } from '../../src/runtime/data/synthetic.ts';
import { check } from '../compiler/helpers.ts';

const sampleSize = (s: SampleShape) => s.c * s.t * s.h * s.w;
const sample = (video: Float32Array, s: SampleShape, j: number) => video.subarray(j * sampleSize(s), (j + 1) * sampleSize(s));
/** The message a promise rejects with. */
async function failure(p: Promise<unknown>): Promise<string> {
  try { await p; } catch (e) { return (e as Error).message; }
  throw new Error('expected a rejection');
}
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test('random streams: keyed, reproducible, permutations are permutations', () => {
  assert.is(new Rng(1, 2).u32(), new Rng(1, 2).u32());
  assert.is.not(hashKey([1, 2]), hashKey([2, 1]));
  assert.is.not(hashKey([0]), hashKey([2 ** 32]));
  const p = permutation(50, 3, 0);
  assert.equal([...p].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.equal(p, permutation(50, 3, 0));
  assert.not.equal(p, permutation(50, 3, 1));
  assert.throws(() => new Rng(-1), /non-negative integer/);
});

test('class names follow label = 8 · shape + direction', () => {
  assert.is(SYNTHETIC_CLASSES, 24);
  assert.is(SYNTHETIC_CLASS_NAMES[0], 'square right');
  assert.is(SYNTHETIC_CLASS_NAMES[2], 'square up');
  assert.is(SYNTHETIC_CLASS_NAMES[8 + 6], 'circle down');
  assert.is(SYNTHETIC_CLASS_NAMES[23], 'triangle down-right');
});

test('synthetic: same seed, same bytes; sample i does not depend on batch size or order', async () => {
  const shape = { c: 3, t: 4, h: 16, w: 16 };
  const opts = { seed: 7, label: { classes: 24 }, scalar: {} };
  const a = await openDataset('synthetic', shape, opts);
  const b = await openDataset('synthetic', shape, opts);
  const big = await a.batch(1, 4); // samples 4..7
  const later = await b.batch(3, 2); // samples 6, 7, read before 4, 5
  const early = await b.batch(2, 2);
  assert.ok(same(big.video, Float32Array.from([...early.video, ...later.video])));
  assert.equal([...big.label!], [...early.label!, ...later.label!]);
  assert.equal([...big.scalar!], [...early.scalar!, ...later.scalar!]);
  assert.ok(same(sample(big.video, shape, 1), (await a.batch(5, 1)).video));
  assert.ok(same(big.video, (await a.batch(1, 4)).video));
  const other = await openDataset('synthetic', shape, { ...opts, seed: 8 });
  assert.not.ok(same(big.video, (await other.batch(1, 4)).video));
  assert.is(a.size, null);
  assert.is(a.skipped, 0);
});

test('synthetic: values in [-1, 1], a shape visible in every frame from 8x8 to 64x64, in luma too', async () => {
  for (const [c, side] of [[1, 8], [3, 8], [3, 64], [4, 16]]) {
    const shape = { c, t: 3, h: side, w: side };
    const { video } = await (await openDataset('synthetic', shape, { seed: 1 })).batch(0, 16);
    for (const v of video) assert.ok(v >= -1 && v <= 1);
    const plane = side * side;
    for (let j = 0; j < 16; j++) {
      const px = sample(video, shape, j);
      for (let f = 0; f < 3; f++) {
        // One shape spans under half the frame, so at least three corners show the background.
        const diff = (p: number, q: number) => {
          let d = 0;
          for (let k = 0; k < c; k++) d = Math.max(d, Math.abs(px[(k * 3 + f) * plane + p] - px[(k * 3 + f) * plane + q]));
          return d;
        };
        const corners = [0, side - 1, plane - side, plane - 1];
        const bgAt = corners.find((p) => corners.filter((q) => diff(p, q) === 0).length >= 3)!;
        assert.ok(bgAt !== undefined);
        let visible = 0, faint = 0;
        for (let p = 0; p < plane; p++) {
          const d = diff(p, bgAt);
          if (d > 0.3) visible++;
          else if (d > 0) faint++;
        }
        assert.ok(visible >= 4 && visible < plane / 2, `sample ${j} frame ${f} at ${side}x${side}, c=${c}: ${visible} shape pixels`);
        assert.is(faint, 0, 'every shape pixel stands out from the background');
      }
    }
  }
});

test('synthetic: shapes move, and labels match the motion and the shape', async () => {
  const shape = { c: 1, t: 2, h: 64, w: 64 };
  const ds = await openDataset('synthetic', shape, { seed: 3, label: { classes: 24 } });
  const { video, label } = await ds.batch(0, 48);
  let checked = 0;
  const seen = new Set<number>();
  for (let j = 0; j < 48; j++) {
    const s = syntheticSample(3, j, shape);
    assert.is(label![j], s.label);
    const o = s.objects[0];
    assert.is(s.label, 8 * o.shape + o.direction);
    const px = sample(video, shape, j);
    const bg = px[0] === px[63] ? px[0] : px[64 * 63];
    const stats = (f: number) => {
      let n = 0, sx = 0, sy = 0;
      for (let p = 0; p < 64 * 64; p++) if (px[f * 4096 + p] !== bg) { n++; sx += p % 64 + 0.5; sy += Math.floor(p / 64) + 0.5; }
      return { n, x: sx / n, y: sy / n };
    };
    const [a, b] = [stats(0), stats(1)];
    assert.ok(!same(px.subarray(0, 4096), px.subarray(4096)), `sample ${j} does not move`);
    const [vx, vy] = velocity(o);
    const [cx1, cy1] = objectCentre(o, 1, shape);
    if (Math.abs(cx1 - (o.x0 + vx)) > 1e-9 || Math.abs(cy1 - (o.y0 + vy)) > 1e-9) continue; // bounced
    // Heading of the rendered motion, to the nearest 45° (screen y grows downwards).
    const heading = ((Math.round(Math.atan2(-(b.y - a.y), b.x - a.x) / (Math.PI / 4)) % 8) + 8) % 8;
    assert.is(heading, o.direction, `sample ${j}: label ${SYNTHETIC_CLASS_NAMES[s.label]}, moved (${b.x - a.x}, ${b.y - a.y})`);
    // Filled fraction of the bounding square: square 1, circle π/4, triangle 1/2.
    const fill = a.n / (2 * o.r) ** 2;
    const kind = fill > 0.9 ? 0 : fill > 0.65 ? 1 : 2;
    assert.is(kind, o.shape, `sample ${j}: fill ${fill}`);
    seen.add(o.shape);
    checked++;
  }
  assert.ok(checked >= 24, `only ${checked} samples without a bounce`);
  assert.is(seen.size, 3);
});

test('synthetic: labels stay inside a smaller class count; speed maps onto the scalar range', async () => {
  const shape = { c: 3, t: 2, h: 8, w: 8 };
  const ds = await openDataset('synthetic', shape, { seed: 5, label: { classes: 5 }, scalar: { range: [0.25, 4] } });
  const { label, scalar } = await ds.batch(0, 64);
  assert.equal([...new Set(label)].sort(), [0, 1, 2, 3, 4]);
  for (let j = 0; j < 64; j++) {
    const o = syntheticSample(5, j, shape, { classes: 5 }).objects[0];
    const u = (o.speed - 0.5) / 1.5; // unit speed is 1 below 16 pixels
    assert.ok(Math.abs(scalar![j] - (0.25 + u * 3.75)) < 1e-5);
    assert.ok(scalar![j] >= 0.25 && scalar![j] <= 4);
  }
  const plain = await (await openDataset('synthetic', shape, { seed: 5, scalar: {} })).batch(0, 64);
  for (const v of plain.scalar!) assert.ok(v >= 0 && v < 1);
});

test('synthetic: a finite size cycles; images are one frame', async () => {
  const shape = { c: 3, t: 1, h: 8, w: 8 };
  const ds = await openDataset('synthetic', shape, { seed: 2, size: 3 });
  assert.is(ds.size, 3);
  const { video } = await ds.batch(0, 6);
  assert.is(video.length, 6 * 3 * 64);
  assert.ok(same(sample(video, shape, 0), sample(video, shape, 3)));
  assert.not.ok(same(sample(video, shape, 0), sample(video, shape, 1)));
  // Extra shapes are drawn under the first one and leave its label alone.
  const crowd = await (await openDataset('synthetic', shape, { seed: 2, objects: 3, label: { classes: 24 } })).batch(0, 8);
  assert.equal([...crowd.label!], [...(await (await openDataset('synthetic', shape, { seed: 2, label: { classes: 24 } })).batch(0, 8)).label!]);
  assert.equal(syntheticSample(2, 0, shape, { objects: 3 }).objects.length, 3);
  assert.match(await failure(openDataset('synthetic', { c: 0, t: 1, h: 8, w: 8 })), /sample c = 0 is not a positive integer/);
  assert.match(await failure(ds.batch(0, 0)), /batch size 0/);
  assert.match(await failure(ds.batch(-1, 2)), /batch index -1/);
});

test('dataNeeds: sample shape, labels and scalars from checked specs', () => {
  const dit = checkFile('specs/dit-s-2.vdm').graph!;
  const a = dataNeeds(dit);
  assert.equal(a.sample, { input: 'x', kind: 'video', batch: dit.inputs[0].axes[0][1], shape: { c: 4, t: 1, h: 32, w: 32 } });
  assert.equal(a.label, { input: 'y', classes: 1000, null: true });
  assert.is(a.scalar, undefined);
  assert.equal(a.other, []);

  const ctl = dataNeeds(checkFile('specs/controllable-video.vdm', { dims: { t: 2, h: 8, w: 8 } }).graph!);
  assert.equal(ctl.sample.shape, { c: 4, t: 2, h: 8, w: 8 });
  assert.equal(ctl.scalar, { input: 'speed', range: [0.25, 4] });
  const b = ctl.sample.batch;
  assert.equal(ctl.conditions, [{ input: 'traj', kind: 'trajectory', shape: [b, 2, 4, 2] }, { input: 'style', kind: 'image', shape: [b, 4, 8, 8] }]);
  assert.equal(ctl.other, []);

  const img = check(`model M {
  dims b = 2, c = 3, h = 8, w = 8
  input x : image[b, c, h, w]
  input s : timestep[b]
  input y : label[b](classes: 5)
  output eps : image[b, c, h, w] = x
}`).graph!;
  assert.equal(dataNeeds(img), { sample: { input: 'x', kind: 'image', batch: 2, shape: { c: 3, t: 1, h: 8, w: 8 } }, label: { input: 'y', classes: 5, null: false }, scalar: undefined, conditions: [], other: [] });
  assert.throws(() => dataNeeds({ model: 'T', inputs: [], diffusion: null }), /model T has no video or image input/);
});

test.run();
