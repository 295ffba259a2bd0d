import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import gifenc from 'gifenc';
import { PNG } from 'pngjs';
import { DataError, MissingToolError, openDataset, type DatasetOptions, type SampleShape } from '../../src/runtime/data/index.ts';
import { naturalCompare } from '../../src/runtime/data/folder.ts';
import { resizeCrop } from '../../src/runtime/data/pixels.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-data-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
let folders = 0;

/** A new folder holding the given files (name -> bytes or text). */
function folder(files: Record<string, Uint8Array | string>): string {
  const dir = path.join(root, `d${folders++}`);
  for (const [name, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
  }
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [255, 255, 0]];
const value = (byte: number) => byte / 127.5 - 1;

/** A GIF whose frame f is solid PALETTE[colours[f]]. */
function solidGif(colours: number[], w = 4, h = 4): Uint8Array {
  const g = gifenc.GIFEncoder();
  for (const c of colours) g.writeFrame(new Uint8Array(w * h).fill(c), w, h, { palette: PALETTE, delay: 40 });
  g.finish();
  return g.bytes();
}

/** A PNG of w×h pixels of one RGB colour, or of the given RGBA bytes. */
function png(w: number, h: number, rgb: number[] | Uint8Array): Buffer {
  const image = new PNG({ width: w, height: h });
  if (rgb.length === w * h * 4) image.data = Buffer.from(rgb);
  else for (let p = 0; p < w * h; p++) image.data.set([...rgb, 255], p * 4);
  return PNG.sync.write(image);
}

/** Channel k of frame f of sample j, as an array of pixels. */
function plane(video: Float32Array, s: SampleShape, j: number, k: number, f: number): number[] {
  const n = s.h * s.w;
  const start = ((j * s.c + k) * s.t + f) * n;
  return [...video.subarray(start, start + n)];
}

/** The solid RGB colour of frame f of sample j (c = 3), in bytes. */
function colourOf(video: Float32Array, s: SampleShape, j: number, f = 0): number[] {
  return [0, 1, 2].map((k) => {
    const px = plane(video, s, j, k, f);
    assert.ok(px.every((v) => v === px[0]), 'frame is not solid');
    return Math.round((px[0] + 1) * 127.5);
  });
}

async function failure(p: Promise<unknown>): Promise<DataError> {
  try { await p; } catch (e) {
    assert.instance(e, DataError);
    return e as DataError;
  }
  throw new Error('expected a DataError');
}

const rgb = (dir: string, t = 1, h = 2, w = 2, options: DatasetOptions = {}) => openDataset(dir, { c: 3, t, h, w }, options);

test('GIF: frames decode to their colours in order, every n-th frame, luma for c = 1', async () => {
  const dir = folder({ 'a.gif': solidGif([1, 2, 3]) });
  const s = { c: 3, t: 3, h: 4, w: 4 };
  const { video } = await (await openDataset(dir, s)).batch(0, 1);
  assert.equal([0, 1, 2].map((f) => colourOf(video, s, 0, f)), [PALETTE[1], PALETTE[2], PALETTE[3]]);
  const strided = await (await rgb(dir, 2, 4, 4, { frameStride: 2 })).batch(0, 1);
  assert.equal([0, 1].map((f) => colourOf(strided.video, { ...s, t: 2 }, 0, f)), [PALETTE[1], PALETTE[3]]);
  const grey = await (await openDataset(dir, { c: 1, t: 1, h: 2, w: 2 })).batch(0, 1);
  assert.ok(grey.video.every((v) => Math.abs(v - value(0.299 * 255)) < 1e-6));
});

test('GIF: transparent pixels keep what the frame before showed', async () => {
  const g = gifenc.GIFEncoder();
  g.writeFrame(new Uint8Array(4).fill(1), 2, 2, { palette: PALETTE });
  g.writeFrame(Uint8Array.of(2, 0, 0, 0), 2, 2, { palette: PALETTE, transparent: true, transparentIndex: 0 });
  g.finish();
  const s = { c: 3, t: 2, h: 2, w: 2 };
  const { video } = await (await openDataset(folder({ 'a.gif': g.bytes() }), s)).batch(0, 1);
  assert.equal(plane(video, s, 0, 0, 1).map((v) => Math.round((v + 1) * 127.5)), [0, 255, 255, 255]);
  assert.equal(plane(video, s, 0, 1, 1).map((v) => Math.round((v + 1) * 127.5)), [255, 0, 0, 0]);
});

test('PNG frames: a subfolder is one clip, frames in natural order; a lone .png is an image', async () => {
  assert.equal(['f10.png', 'f2.png', 'f1.png', 'f02.png'].sort(naturalCompare), ['f1.png', 'f02.png', 'f2.png', 'f10.png']);
  const dir = folder({ 'clip/f10.png': png(4, 4, [0, 0, 255]), 'clip/f2.png': png(4, 4, [0, 255, 0]), 'clip/f1.png': png(4, 4, [255, 0, 0]), 'notes.txt': 'ignored' });
  const s = { c: 3, t: 3, h: 2, w: 2 };
  const ds = await openDataset(dir, s);
  assert.is(ds.size, 1);
  const { video } = await ds.batch(0, 1);
  assert.equal([0, 1, 2].map((f) => colourOf(video, s, 0, f)), [[255, 0, 0], [0, 255, 0], [0, 0, 255]]);
  const images = await rgb(folder({ 'a.png': png(3, 3, [10, 20, 30]) }));
  assert.equal(colourOf((await images.batch(0, 1)).video, { c: 3, t: 1, h: 2, w: 2 }, 0), [10, 20, 30]);
});

test('resize: cover scale, centre crop, area means; alpha over black', () => {
  // 8 wide, 4 high, value 10x + y: to 2x2 the scale is 1/2 (to 4x2), and the middle columns 2..5 stay.
  const data = new Uint8Array(8 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) data.fill(10 * x + y, (y * 8 + x) * 3, (y * 8 + x + 1) * 3);
  const out = resizeCrop({ width: 8, height: 4, channels: 3, data }, 2, 2);
  assert.equal([out[0], out[3], out[6], out[9]], [25.5, 45.5, 27.5, 47.5]);
  // Upscaling repeats pixels; 3 -> 2 weighs the middle pixel half into each side.
  const up = resizeCrop({ width: 2, height: 1, channels: 3, data: Uint8Array.of(0, 0, 0, 90, 90, 90) }, 2, 4);
  assert.equal([...up].filter((_, i) => i % 3 === 0), [0, 0, 90, 90, 0, 0, 90, 90]);
  const three = resizeCrop({ width: 3, height: 3, channels: 3, data: Uint8Array.from({ length: 27 }, (_, i) => [0, 30, 90][Math.floor(i / 3) % 3]) }, 2, 2);
  assert.ok(Math.abs(three[0] - 10) < 1e-5 && Math.abs(three[3] - 70) < 1e-5);
  const alpha = resizeCrop({ width: 2, height: 1, channels: 4, data: Uint8Array.of(200, 100, 50, 255, 200, 100, 50, 0) }, 1, 2);
  assert.equal([...alpha], [200, 100, 50, 0, 0, 0]);
});

test('labels.csv: labels and speeds ride with their clips; per-epoch shuffle from the seed', async () => {
  const files: Record<string, Uint8Array | string> = { 'labels.csv': 'file,speed,label\nc1.gif,0.5,1\n./c2.gif,1.5,2\nc3.gif,2.5,3\n\nc4.gif,3.5,4\n' };
  for (let i = 1; i <= 4; i++) files[`c${i}.gif`] = solidGif([i]);
  const dir = folder(files);
  const s = { c: 3, t: 1, h: 2, w: 2 };
  const opts = { seed: 11, label: { classes: 10 }, scalar: { range: [0, 4] as [number, number] } };
  const ds = await openDataset(dir, s, opts);
  const orders: string[] = [];
  for (let epoch = 0; epoch < 4; epoch++) {
    const b = await ds.batch(epoch, 4);
    const colours = [0, 1, 2, 3].map((j) => PALETTE.findIndex((p) => p.join() === colourOf(b.video, s, j).join()));
    assert.equal([...b.label!], colours, 'each label belongs to its clip');
    assert.equal([...b.scalar!], colours.map((c) => c - 0.5));
    assert.equal([...colours].sort(), [1, 2, 3, 4], 'an epoch shows every clip once');
    orders.push(colours.join());
  }
  assert.ok(new Set(orders).size > 1, 'the order changes between epochs');
  const again = await openDataset(dir, s, opts);
  const [x, y] = [await again.batch(3, 2), await again.batch(2, 2)];
  assert.equal([...(await ds.batch(1, 4)).label!], [...y.label!, ...x.label!]);
  const reseeded = await openDataset(dir, s, { ...opts, seed: 12 });
  const other: string[] = [];
  for (let epoch = 0; epoch < 4; epoch++) other.push([...(await reseeded.batch(epoch, 4)).label!].join());
  assert.not.equal(other, orders.map((o) => o));
});

test('bad clips: each error names the file and says what to do', async () => {
  const s = { c: 3, t: 3, h: 2, w: 2 };
  const read = async (files: Record<string, Uint8Array | string>, options: DatasetOptions = {}, shape: SampleShape = s) =>
    failure(openDataset(folder(files), shape, options).then((ds) => ds.batch(0, 1)));
  let e = await read({ 'junk.gif': 'hello, not a gif' });
  assert.match(e.message, /junk\.gif: is not a GIF \(no GIF header\); replace it with a valid file, or remove it/);
  const whole = solidGif([1, 2, 3]);
  for (const cut of [20, 40]) {
    e = await read({ 'cut.gif': whole.slice(0, whole.length - cut) });
    assert.match(e.message, /cut\.gif: has 2 frames \(the file looks truncated: no GIF trailer\), but t = 3 needs 3/);
  }
  e = await read({ 'short.gif': solidGif([1, 2]) });
  assert.match(e.message, /short\.gif: has 2 frames, but t = 3 needs 3; use longer clips, a smaller t \(e\.g\. `--dim t=2`\), or remove it/);
  e = await read({ 'clip/1.png': png(2, 2, [1, 2, 3]), 'clip/2.png': 'not a png', 'clip/3.png': png(2, 2, [1, 2, 3]) });
  assert.match(e.message, /clip[/\\]2\.png: is not a readable PNG/);
  e = await read({ 'clip/1.png': png(2, 2, [1, 2, 3]), 'clip/2.png': png(3, 2, [1, 2, 3]), 'clip/3.png': png(2, 2, [1, 2, 3]) });
  assert.match(e.message, /clip[/\\]2\.png: is 3x2, but the clip's first frame is 2x2; export every frame of a clip at one size/);
  e = await read({ 'empty/readme.txt': 'x' });
  assert.match(e.message, /empty: is a folder without \.png frames/);
  e = await read({});
  assert.match(e.message, /d\d+: has no usable clips; add \.gif, \.mp4 or \.webm files/);
  assert.is(e.skippable, false);
});

test('bad labels: out of range, not a number, missing, unknown clip, no labels.csv', async () => {
  const label = { label: { classes: 10 } };
  const open = (files: Record<string, Uint8Array | string>, options: DatasetOptions = label) => failure(openDataset(folder(files), { c: 3, t: 1, h: 2, w: 2 }, options));
  const a = solidGif([1]);
  let e = await open({ 'a.gif': a, 'labels.csv': 'a.gif,12\n' });
  assert.match(e.message, /a\.gif: label 12 \(labels\.csv line 1\) is outside the model's 10 classes \(0 to 9\); fix labels\.csv, or raise `classes`/);
  e = await open({ 'a.gif': a, 'labels.csv': 'a.gif,cat\n' });
  assert.match(e.message, /a\.gif: label "cat" \(labels\.csv line 1\) is not a whole number/);
  e = await open({ 'a.gif': a, 'b.gif': a, 'labels.csv': 'a.gif,1\n' });
  assert.match(e.message, /b\.gif: has no label in labels\.csv; add a line `b\.gif,LABEL`/);
  e = await open({ 'a.gif': a, 'labels.csv': 'a.gif,1\nz.gif,2\n' });
  assert.match(e.message, /labels\.csv:2: names "z\.gif", which is not a clip in the folder/);
  e = await open({ 'a.gif': a });
  assert.match(e.message, /labels\.csv: is missing, and the model needs class labels \(10 classes\); write one line per clip: file,label/);
  e = await open({ 'a.gif': a, 'labels.csv': 'a.gif,1,9\n' }, { scalar: { range: [0, 4] } });
  assert.match(e.message, /a\.gif: speed 9 \(labels\.csv line 1\) is outside the model's range 0 to 4/);
});

test('skipBad: bad clips are skipped and counted, and batches stay reproducible', async () => {
  const files: Record<string, Uint8Array | string> = {
    'a.gif': solidGif([1, 1]), 'b.gif': solidGif([2, 2]), 'c.gif': solidGif([3, 3]),
    'junk.gif': 'GIF89a garbage', 'short.gif': solidGif([4]), 'd.gif': solidGif([5, 5]),
    'labels.csv': 'a.gif,1\nb.gif,2\nc.gif,3\njunk.gif,4\nshort.gif,5\nd.gif,99\n',
  };
  const dir = folder(files);
  const s = { c: 3, t: 2, h: 2, w: 2 };
  const opts = { seed: 4, skipBad: true, label: { classes: 10 } };
  const ds = await openDataset(dir, s, opts);
  assert.is(ds.size, 5);
  assert.is(ds.skipped, 1);
  assert.match(ds.problems[0], /d\.gif: label 99/);
  const first = await ds.batch(0, 5);
  assert.is(ds.skipped, 3);
  assert.match(ds.problems.join('\n'), /junk\.gif: /);
  assert.match(ds.problems.join('\n'), /short\.gif: has 1 frame, but t = 2 needs 2/);
  for (let j = 0; j < 5; j++) {
    const colour = PALETTE.findIndex((p) => p.join() === colourOf(first.video, s, j).join());
    assert.is(first.label![j], colour);
    assert.ok(colour >= 1 && colour <= 3);
  }
  // Read in another order from a fresh dataset: the same bytes.
  const fresh = await openDataset(dir, s, opts);
  const second = await fresh.batch(1, 5);
  assert.equal([...(await fresh.batch(0, 5)).video], [...first.video]);
  assert.equal([...(await ds.batch(1, 5)).video], [...second.video]);
  // Without skipBad the first bad clip stops reading.
  const strict = await openDataset(dir, s, { ...opts, skipBad: false }).catch((err: DataError) => err);
  assert.instance(strict, DataError);
  const noLabels = await openDataset(dir, s, { seed: 4 });
  let err: unknown;
  for (let i = 0; i < 6 && !err; i++) await noLabels.batch(i, 1).catch((x) => { err = x; });
  assert.instance(err, DataError);
});

test('ffmpeg: a clear error when it is missing; raw frames at the target size when it is there', async () => {
  const dir = folder({ 'a.mp4': 'fake', 'bad.mp4': 'fake', 'short.mp4': 'fake' });
  const s = { c: 3, t: 2, h: 2, w: 4 };
  const saved = process.env.PATH;
  process.env.PATH = folder({});
  let e: DataError;
  try {
    e = await failure(openDataset(dir, s));
  } finally {
    process.env.PATH = saved;
  }
  assert.instance(e, MissingToolError);
  assert.match(e.message, /a\.mp4: decoding this file needs the `ffmpeg` executable, which is not on PATH; install ffmpeg \(Debian\/Ubuntu: `apt-get install ffmpeg`/);
  assert.is(e.skippable, false);

  // A stand-in ffmpeg (a shell script: quick to start) that logs its arguments and writes frame f
  // as bytes of 50·f.
  const bin = folder({});
  const log = path.join(bin, 'args.log');
  const fake = path.join(bin, 'ffmpeg');
  fs.writeFileSync(fake, `#!/bin/sh
[ "$1" = -version ] && exit 0
printf '%s\\n' "$*" >> '${log}'
while [ $# -gt 0 ]; do case "$1" in -i) in=$2;; -frames:v) n=$2;; -vf) vf=$2;; esac; shift; done
case "$in" in *bad.mp4) echo 'moov atom not found' >&2; exit 1;; *short.mp4) n=1;; esac
crop=\${vf##*crop=}; w=\${crop%%:*}; h=\${crop##*:}
f=0
while [ $f -lt $n ]; do head -c $((w * h * 3)) /dev/zero | tr '\\000' "\\\\$(printf %03o $((50 * f)))"; f=$((f + 1)); done
`, { mode: 0o755 });
  const ds = await openDataset(folder({ 'a.mp4': 'fake' }), s, { ffmpeg: fake, frameStride: 2 });
  const { video } = await ds.batch(0, 1);
  assert.equal(colourOf(video, s, 0, 0), [0, 0, 0]);
  assert.equal(colourOf(video, s, 0, 1), [100, 100, 100]);
  const args = fs.readFileSync(log, 'utf8');
  assert.match(args, /-i \S+a\.mp4 -an -vf \S+flags=area,crop=4:2 -frames:v 3 -f rawvideo -pix_fmt rgb24 pipe:1/);
  const bad = await failure(openDataset(dir, s, { ffmpeg: fake }).then((d) => Promise.all([0, 1, 2].map((i) => d.batch(i, 1)))));
  assert.match(bad.message, /(bad|short)\.mp4: /);
  const each = await openDataset(dir, s, { ffmpeg: fake, skipBad: true });
  await each.batch(0, 3);
  assert.is(each.skipped, 2);
  assert.match(each.problems.join('\n'), /bad\.mp4: ffmpeg could not decode it \(moov atom not found\)/);
  assert.match(each.problems.join('\n'), /short\.mp4: has 1 frame, but t = 2 needs 2/);
});

test.run();
