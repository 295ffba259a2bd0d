// `vdm sample`'s conditioning inputs beyond class and caption (runtime/sample-conditions.ts): a PNG
// first frame decoded as training decodes frames (and resized, with a note), a text embedding
// from safetensors, scalar attributes within their range, trajectories from JSON, motion maps
// from safetensors or JSON; the same in
// both halves under guidance except text; and every bad or missing input refused with the flag
// to pass, before anything is written. image-to-video.vdm and controllable-video.vdm are checked
// at reduced dims; a small image-to-video model samples on the adapter against the float64 sampler,
// its first frame kept (replacement: frame 0 of the output is the given frame) or not.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { liveParams } from '../../src/compiler/reference/evaluate.ts';
import { firstFrameInput, referenceSample } from '../../src/compiler/reference/sampling.ts';
import { sampleSpec, type SampleSpecOptions } from '../../src/pipeline.ts';
import { saveCheckpoint } from '../../src/runtime/checkpoint.ts';
import { resizeCrop } from '../../src/runtime/data/pixels.ts';
import { readSafetensorsHeader, writeSafetensors } from '../../src/runtime/safetensors.ts';
import { resolveSampleSettings, sampleConditions, SampleSetupError, type SampleSettings } from '../../src/runtime/sample-run.ts';
import { relError } from '../codegen/ref-check.ts';
import { vdmAsync } from '../cli/vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-sample-cond-'));
const file = (name: string, data: string | Uint8Array) => { const f = path.join(dir, name); fs.writeFileSync(f, data); return f; };

/** A w×h RGB PNG with pixel (x, y) = (f(x, y, 0), f(x, y, 1), f(x, y, 2)). */
function png(name: string, w: number, h: number, f = (x: number, y: number, k: number) => (x * 37 + y * 11 + k * 80) % 256): string {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    for (let k = 0; k < 3; k++) p.data[(y * w + x) * 4 + k] = f(x, y, k);
    p.data[(y * w + x) * 4 + 3] = 255;
  }
  return file(name, PNG.sync.write(p));
}

const graphOf = (spec: string, dims: Record<string, number>) => {
  const r = checkFile(spec, { dims });
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.graph;
};
const I2V = path.join(repo, 'specs/image-to-video.vdm');
const CONTROL = path.join(repo, 'specs/controllable-video.vdm');
const small = { t: 2, h: 8, w: 8 };
/** Settings as vdm sample resolves them, and the conditions at the sampling batch (2n under guidance). */
function conditions(spec: string, given: Partial<SampleSettings>) {
  const base = graphOf(spec, small);
  const s = resolveSampleSettings(base, { n: 2, ...given });
  return { s, c: sampleConditions(graphOf(spec, { ...small, b: s.guidance === null ? s.n : 2 * s.n }), s) };
}
function refused(f: () => unknown, pattern: RegExp) {
  try {
    f();
  } catch (e) {
    assert.instance(e, SampleSetupError);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`not refused: ${pattern}`);
}

const frame8 = png('frame8.png', 8, 8);

test('image-to-video: the PNG first frame fills input first in [-1, 1] (channel k from RGB k mod 3) in both halves; text only in the conditional one', () => {
  const { c } = conditions(I2V, { images: [frame8], caption: 'red square moving up-left' });
  assert.equal(c.notes, []);
  const first = c.inputs.get('first') as Float32Array;
  assert.is(first.length, 4 * 4 * 8 * 8); // 2n = 4 entries of [c=4, h=8, w=8]
  for (let j = 0; j < 4; j++) for (let k = 0; k < 4; k++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) {
    const want = ((x * 37 + y * 11 + (k % 3) * 80) % 256) / 127.5 - 1;
    assert.ok(Math.abs(first[((j * 4 + k) * 8 + y) * 8 + x] - want) < 1e-6, `entry ${j} channel ${k} (${x}, ${y})`);
  }
  const txt = c.inputs.get('txt') as Float32Array;
  const half = txt.length / 2;
  assert.ok(txt.subarray(0, half).some((v) => v !== 0), 'conditional text');
  assert.ok(txt.subarray(half).every((v) => v === 0), 'unconditional text is zero, as guidance dropout trained');
});

test('an image of another size is resized and centre-cropped as training resizes frames, with a note', () => {
  const big = png('big.png', 16, 12);
  const { c } = conditions(I2V, { images: [big], caption: 'a', guidance: null });
  assert.is(c.notes.length, 1);
  assert.match(c.notes[0], /--image .*big\.png is 16x12: resized to 8x8 for input 'first', centre-cropped to its aspect/);
  const bytes = PNG.sync.read(fs.readFileSync(big));
  const rgb = resizeCrop({ width: 16, height: 12, channels: 4, data: bytes.data }, 8, 8);
  const first = c.inputs.get('first') as Float32Array;
  for (let p = 0; p < 64; p++) assert.ok(Math.abs(first[3 * 64 + p] - (rgb[p * 3] / 127.5 - 1)) < 1e-5); // channel 3 = red
});

test('a missing or unreadable image file is an error naming it', () => {
  const missing = path.join(dir, 'missing.png');
  refused(() => conditions(I2V, { images: [missing], caption: 'a' }), /^--image .*missing\.png: cannot be read \(ENOENT\)$/);
  const notPng = file('not.png', 'hello');
  refused(() => conditions(I2V, { images: [notPng], caption: 'a' }), /^--image .*not\.png: is not a readable PNG/);
});

test('a missing condition names the flag to pass; flags the model does not take are refused', () => {
  refused(() => conditions(I2V, { caption: 'a' }), /model ImageToVideo takes image input 'first': pass --image FILE\.png/);
  refused(() => conditions(I2V, { images: [frame8] }), /model ImageToVideo takes text input 'txt': pass --caption "TEXT" [^]*or --text-embedding FILE\.safetensors \(\[l, c\] = \[l=77, c=768\]\)/);
  refused(() => conditions(CONTROL, { guidance: null }),
    /takes conditioning inputs no flag fills:\n  scalar input 'speed': pass --attr speed=VALUE \(from 0\.25 to 4\)\n  trajectory input 'traj': pass --trajectory FILE\.json[^]*\n  image input 'style': pass --image FILE\.png/);
  refused(() => conditions(I2V, { images: [frame8], caption: 'a', attrs: ['speed=1'] }), /^--attr: model ImageToVideo takes no scalar input$/);
  refused(() => conditions(I2V, { images: [`style=${frame8}`], caption: 'a' }), /--image style=.*: model ImageToVideo has no image input 'style' \(its image input: 'first'\)/);
  refused(() => conditions(I2V, { images: [frame8, frame8], caption: 'a' }), /--image: input 'first' is given twice/);
});

// controllable-video.vdm: a scalar speed (range 0.25 to 4), a trajectory [b, t, n=4, 2], a style image.
const track = (t: number, n: number, at = (f: number, k: number) => [0.1 + 0.2 * f, 0.05 * k + 0.5]) =>
  Array.from({ length: t }, (_, f) => Array.from({ length: n }, (_, k) => at(f, k)));
const trackFile = file('track.json', JSON.stringify(track(2, 4)));
const control = (more: Partial<SampleSettings>) => conditions(CONTROL, { guidance: null, images: [frame8], attrs: ['speed=2'], trajectories: [trackFile], ...more });

test('scalars, trajectories and a style image fill controllable-video (named or bare)', () => {
  const { c } = control({ attrs: ['2.5'], images: [`style=${frame8}`] });
  assert.equal([...(c.inputs.get('speed') as Float32Array)], [2.5, 2.5]);
  const traj = c.inputs.get('traj') as Float32Array;
  assert.equal(traj.length, 2 * 2 * 4 * 2);
  assert.equal([...traj.subarray(16)], track(2, 4).flat(2).map((v) => Math.fround(v)), 'every sample gets the [t, n, 2] track');
  const per = file('per.json', JSON.stringify([track(2, 4), track(2, 4, () => [1, 0])]));
  const two = control({ trajectories: [`traj=${per}`] }).c.inputs.get('traj') as Float32Array;
  assert.equal([...two.subarray(16)], Array(16).fill(0).map((_, i) => (i % 2 === 0 ? 1 : 0)), 'or one [t, n, 2] per sample');
});

test('--attr out of range or not a number, and a bad trajectory file, are refused with the shape or range expected', () => {
  refused(() => control({ attrs: ['speed=9'] }), /^--attr speed=9 is out of range: input 'speed' takes values from 0\.25 to 4$/);
  refused(() => control({ attrs: ['speed=fast'] }), /^--attr speed=fast: the value must be a number from 0\.25 to 4$/);
  refused(() => control({ attrs: ['pace=1'] }), /--attr pace=1: model ControllableVideo has no scalar input 'pace'/);
  const bad = file('bad.json', '[[0.1, 0.2');
  refused(() => control({ trajectories: [bad] }), /^--trajectory .*bad\.json: is not valid JSON \([^)]*\); input 'traj' needs \[t=2, n=4, 2\]/);
  const short = file('short.json', JSON.stringify(track(2, 3)));
  refused(() => control({ trajectories: [short] }), /--trajectory .*short\.json: \[0\] has 3 entries, not 4; input 'traj' needs \[t=2, n=4, 2\] \(t frames of n \(x, y\) points in \[0, 1\]\)/);
  const out = file('out.json', JSON.stringify(track(2, 4, () => [1.5, 0])));
  refused(() => control({ trajectories: [out] }), /\[0\]\[0\]\[0\] is 1\.5, not a coordinate in \[0, 1\]/);
  refused(() => control({ trajectories: [path.join(dir, 'none.json')] }), /--trajectory .*none\.json: cannot be read \(ENOENT\)/);
});

test('--text-embedding: one F32 tensor [l, c] or [1, l, c]; another shape is refused saying the one expected', () => {
  const l = 77, cc = 768;
  const emb = new Float32Array(l * cc).map((_, i) => Math.sin(i));
  const good = path.join(dir, 'emb.safetensors');
  writeSafetensors(good, { tokens: { dtype: 'F32', shape: [1, l, cc], data: emb } });
  const { c } = conditions(I2V, { images: [frame8], textEmbeddings: [good] });
  const txt = c.inputs.get('txt') as Float32Array;
  assert.equal([...txt.subarray(l * cc, 2 * l * cc)], [...emb]);
  assert.ok(txt.subarray(2 * l * cc).every((v) => v === 0), 'zero in the unconditional half');
  const wrong = path.join(dir, 'wrong.safetensors');
  writeSafetensors(wrong, { tokens: { dtype: 'F32', shape: [8, 16], data: new Float32Array(128) } });
  refused(() => conditions(I2V, { images: [frame8], textEmbeddings: [wrong] }),
    /^--text-embedding .*wrong\.safetensors: tensor 'tokens' is \[8, 16\]; input 'txt' needs one F32 tensor \[77, 768\] \(or \[1, 77, 768\]\)/);
  refused(() => conditions(I2V, { images: [frame8], textEmbeddings: [good], caption: 'a' }), /--caption: every text input [^]*--text-embedding/);
  refused(() => conditions(I2V, { images: [frame8], textEmbeddings: [frame8] }), /--text-embedding .*frame8\.png: cannot be read as safetensors/);
});

// motion-conditioned.vdm: a motion map [b, 2, t, h, w] at t=2, h=w=8.
const MOTION = path.join(repo, 'specs/motion-conditioned.vdm');
const motionOf = (more: Partial<SampleSettings>) => conditions(MOTION, { guidance: null, ...more }).c.inputs.get('flow') as Float32Array;
/** A [2, t, h, w] map with a distinct value per element, offset by `k`. */
const flowMap = (k: number) => Float32Array.from({ length: 2 * 2 * 8 * 8 }, (_, i) => Math.fround(0.01 * i - 1 + k));
const nested = (v: Float32Array, shape: number[]): unknown => (shape.length === 1 ? [...v]
  : Array.from({ length: shape[0] }, (_, i) => nested(v.subarray(i * (v.length / shape[0]), (i + 1) * (v.length / shape[0])), shape.slice(1))));
const per = 2 * 2 * 8 * 8;

test('--motion: a [2, t, h, w] map (safetensors or JSON) fills every sample, [n, 2, t, h, w] one each; named or bare', () => {
  const one = path.join(dir, 'flow.safetensors');
  writeSafetensors(one, { flow: { dtype: 'F32', shape: [2, 2, 8, 8], data: flowMap(0) } });
  const a = motionOf({ motions: [one] });
  assert.is(a.length, 2 * per);
  assert.equal([...a.subarray(0, per)], [...flowMap(0)]);
  assert.equal([...a.subarray(per)], [...flowMap(0)], 'every sample gets the map');
  const two = path.join(dir, 'flows.safetensors');
  const both = new Float32Array(2 * per);
  both.set(flowMap(0)); both.set(flowMap(5), per);
  writeSafetensors(two, { m: { dtype: 'F32', shape: [2, 2, 2, 8, 8], data: both } });
  assert.equal([...motionOf({ motions: [`flow=${two}`] })], [...both], 'one map per sample');
  const json = file('flow.json', JSON.stringify(nested(flowMap(3), [2, 2, 8, 8])));
  const b = motionOf({ motions: [json] });
  assert.equal([...b.subarray(per)], [...flowMap(3)], 'JSON: the same values');
  const jsonEach = file('flows.json', JSON.stringify(nested(both, [2, 2, 2, 8, 8])));
  assert.equal([...motionOf({ motions: [jsonEach] })], [...both]);
});

test('--motion: a missing map names the flag; a wrong shape, dtype or value says the shape expected', () => {
  refused(() => motionOf({}), /^model MotionConditioned takes motion input 'flow': pass --motion FILE\.safetensors or FILE\.json \(\[c=2, t=2, h=8, w=8\]: per frame and pixel the displacement \(dx, dy\) to the next frame, in pixels\)$/);
  refused(() => conditions(CONTROL, { guidance: null, images: [frame8], attrs: ['speed=2'], trajectories: [trackFile], motions: [frame8] }), /^--motion: model ControllableVideo takes no motion input$/);
  const want = /input 'flow' needs \[2, t=2, h=8, w=8\] \(per frame and pixel the displacement \(dx, dy\) to the next frame, in pixels\), or one per sample: \[2, 2, 2, 8, 8\]/;
  const wide = path.join(dir, 'wide.safetensors');
  writeSafetensors(wide, { flow: { dtype: 'F32', shape: [2, 2, 8, 9], data: new Float32Array(2 * 2 * 8 * 9) } });
  refused(() => motionOf({ motions: [wide] }), new RegExp(`^--motion .*wide\\.safetensors: tensor 'flow' is \\[2, 2, 8, 9\\]; ${want.source}`));
  const three = path.join(dir, 'three.safetensors');
  writeSafetensors(three, { flow: { dtype: 'F32', shape: [3, 2, 2, 8, 8], data: new Float32Array(3 * per) } });
  refused(() => motionOf({ motions: [three] }), /tensor 'flow' is \[3, 2, 2, 8, 8\]; input 'flow' needs/);
  const ints = path.join(dir, 'ints.safetensors');
  writeSafetensors(ints, { flow: { dtype: 'I32', shape: [2, 2, 8, 8], data: new Int32Array(per) } });
  refused(() => motionOf({ motions: [ints] }), /tensor 'flow' is I32; input 'flow' needs .*, F32$/);
  const nan = path.join(dir, 'nan.safetensors');
  writeSafetensors(nan, { flow: { dtype: 'F32', shape: [2, 2, 8, 8], data: flowMap(0).map((v, i) => (i === 7 ? NaN : v)) } });
  refused(() => motionOf({ motions: [nan] }), /tensor 'flow' has a non-finite value at 7/);
  const many = path.join(dir, 'many.safetensors');
  writeSafetensors(many, { a: { dtype: 'F32', shape: [2, 2, 8, 8], data: flowMap(0) }, b: { dtype: 'F32', shape: [2, 2, 8, 8], data: flowMap(0) } });
  refused(() => motionOf({ motions: [many] }), /holds 2 tensors \(a, b\); input 'flow' needs/);
  refused(() => motionOf({ motions: [frame8] }), /^--motion .*frame8\.png: cannot be read as safetensors \(.*\); give a \.safetensors file with one F32 tensor, or a \.json file$/);
  const short = file('short-flow.json', JSON.stringify(nested(new Float32Array(2 * 2 * 8 * 4), [2, 2, 8, 4])));
  refused(() => motionOf({ motions: [short] }), new RegExp(`^--motion .*short-flow\\.json: is \\[2, 2, 8, 4\\]; ${want.source}`));
  const ragged = nested(flowMap(0), [2, 2, 8, 8]) as number[][][][];
  ragged[1][1][3] = ragged[1][1][3].slice(1);
  refused(() => motionOf({ motions: [file('ragged.json', JSON.stringify(ragged))] }), /ragged\.json: \[1\]\[1\]\[3\] has 7 entries, not 8; input 'flow' needs/);
  const text = nested(flowMap(0), [2, 2, 8, 8]) as unknown[][][][];
  text[0][1][2][5] = 'x';
  refused(() => motionOf({ motions: [file('text.json', JSON.stringify(text))] }), /\[0\]\[1\]\[2\]\[5\] is "x", not a number/);
  refused(() => motionOf({ motions: [file('broken.json', '[[[')] }), /broken\.json: is not valid JSON/);
  refused(() => motionOf({ motions: [path.join(dir, 'none.json')] }), /^--motion .*none\.json: cannot be read \(ENOENT\)$/);
});

// A small image-to-video model (the spec's construction: the first frame concatenated along
// channels to every frame of the noisy video, text through a pooled projection), sampled end to end.
const TINY = `import "std/cond.vdm"
model TinyI2V {
  dims b = 2, c = 3, t = 2, h = 4, w = 4
  input x     : video[b, c, t, h, w]
  input s     : timestep[b]
  input first : image[b, c, h, w]
  input txt   : text[b, l=2, c=4]
  e = linear(silu(linear(sinusoidal(s, dim: 8), 8)), 8) + mean(linear(txt, 8), over: l)
  xin: [b, c=2*c, t, h, w] = image_condition(x, first)
  output out : video[b, c, t, h, w] = linear(silu(linear(xin, 8) + e), 3)
}

diffusion {
  schedule cosine(steps: 30, s: 0.008)
  predict  v
  loss     mse
  sampler  ddim(steps: 4, eta: 0.0)
  guidance cfg(scale: 2.0, dropout: 0.1)
}
`;
const tinySpec = file('tiny-i2v.vdm', TINY);
const tinyGraph = graphOf(tinySpec, {});
const tinyParams = new Map([...liveParams(tinyGraph, 2, 0.3)].map(([k, v]) => [k, Float32Array.from(v)]));
const tinyRun = path.join(dir, 'run');
saveCheckpoint(tinyRun, tinyGraph, { step: 5, params: tinyParams, ema: tinyParams, rng: { seed: 0 }, data: {}, options: {} });
const frame4 = png('frame4.png', 4, 4);

test('the first frame kept is the image input image_condition joins to the noisy video; a style image is not one', () => {
  const ff = firstFrameInput(graphOf(I2V, small));
  assert.equal(ff && { input: ff.input.name, t: ff.t, post: ff.post }, { input: 'first', t: 2, post: 64 });
  assert.is(firstFrameInput(graphOf(CONTROL, small)), null);
  assert.is(firstFrameInput(tinyGraph)?.input.name, 'first');
});

gpuTest('sampling from a PNG first frame on the adapter matches the float64 sampler with the same conditions, first frame kept (replacement) or not; the note reaches the caller', async () => {
  const notes: string[] = [];
  const options: SampleSpecOptions = { spec: tinySpec, out: path.join(dir, 'out-ok'), mp4: false, settings: { n: 2, images: [png('frame6.png', 6, 6)], caption: 'red square', clip: false } };
  const r = await sampleSpec(tinyRun, options, { note: (m) => notes.push(m), stream: { write: () => true } });
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  assert.ok(notes.some((m) => /frame6\.png is 6x6: resized to 4x4 for input 'first'/.test(m)), notes.join('\n'));
  const s = r.result.settings;
  const g = graphOf(tinySpec, { b: 2 * s.n });
  const inputs = new Map([...sampleConditions(g, s).inputs].map(([name, data]) => [name, { axes: g.inputs.find((i) => i.name === name)!.axes, data: Float64Array.from(data) }]));
  const reference = (keepFirst: boolean) => referenceSample(g, new Map([...tinyParams].map(([k, v]) => [k, Float64Array.from(v)])), inputs,
    { sampler: s.sampler, steps: s.steps, eta: s.eta, guidance: s.guidance, clip: s.clip, seed: s.seed, keepFirst });
  assert.ok(s.keepFirst, 'keep-first is on by default');
  const ref = reference(true);
  const err = relError(r.result.samples, ref);
  assert.ok(err < 1e-4, `relative error ${err}`);
  // frame 0 of each sample [c=3, t=2, h=4, w=4] is the given frame, exactly (the f32 input's values)
  const given = inputs.get('first')!.data;
  for (let j = 0; j < 2; j++) for (let c = 0; c < 3; c++) for (let p = 0; p < 16; p++) {
    const at = ((j * 3 + c) * 2) * 16 + p;
    assert.is(r.result.samples[at], Math.fround(given[(j * 3 + c) * 16 + p]), `sample ${j}, channel ${c}, pixel ${p}: frame 0 is the given frame`);
  }
  assert.ok(relError(ref, reference(false)) > 1e-3, 'keep-first changes the samples');
  // the tensors file records what the samples were conditioned on
  const meta = readSafetensorsHeader(path.join(options.out!, 'samples.safetensors')).metadata;
  assert.match(meta['vdm.image'], /frame6\.png$/);
  assert.is(meta['vdm.keep_first'], 'first');
  assert.is(meta['vdm.caption'], 'red square');
  // --no-keep-first: the model alone, as the float64 sampler without replacement
  const free = await sampleSpec(tinyRun, { ...options, out: path.join(dir, 'out-free'), settings: { ...options.settings, keepFirst: false } }, { stream: { write: () => true } });
  assert.ok(free.ok && free.result.settings.keepFirst === false);
  assert.is(readSafetensorsHeader(path.join(dir, 'out-free', 'samples.safetensors')).metadata['vdm.keep_first'], undefined);
  if (free.ok) assert.ok(relError(free.result.samples, reference(false)) < 1e-4, 'without keep-first');
  // the image reaches the model: another first frame gives other samples
  const other = await sampleSpec(tinyRun, { ...options, out: path.join(dir, 'out-other'), settings: { ...options.settings, images: [png('dark.png', 4, 4, () => 0)] } }, { stream: { write: () => true } });
  assert.ok(other.ok && relError(other.result.samples, r.result.samples) > 1e-3);
});

// A small motion-conditioned model: the map patchified and added to the tokens, as in the spec.
const TINY_MOTION = `model TinyMotion {
  dims b = 2, c = 3, t = 2, h = 4, w = 4
  input x    : video[b, c, t, h, w]
  input s    : timestep[b]
  input flow : motion[b, c=2, t, h, w]
  let patch = (t: 1, h: 2, w: 2)
  z = linear(patchify(x, patch: patch), 8) + linear(silu(linear(sinusoidal(s, dim: 8), 8)), 8)
  z = z + linear(patchify(flow, patch: patch), 8, init: "zeros") as motion_proj
  output out : video[b, c, t, h, w] = unpatchify(linear(silu(z), 12), patch: patch)
}

diffusion {
  schedule cosine(steps: 30, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 4, eta: 0.0)
}
`;

gpuTest('sampling with --motion on the adapter matches the float64 sampler with the same map; the map reaches the model and is recorded', async () => {
  const spec = file('tiny-motion.vdm', TINY_MOTION);
  const g1 = graphOf(spec, {});
  // liveParams perturbs every parameter, so the zero-initialised projection carries the map
  const params = new Map([...liveParams(g1, 2, 0.3)].map(([k, v]) => [k, Float32Array.from(v)]));
  const run = path.join(dir, 'run-motion');
  saveCheckpoint(run, g1, { step: 1, params, ema: params, rng: { seed: 0 }, data: {}, options: {} });
  const map = (k: number) => Array.from({ length: 2 }, (_, d) => Array.from({ length: 2 }, (_, f) => Array.from({ length: 4 }, (_, y) => Array.from({ length: 4 }, (_, x) => k * (d === 0 ? x - 1.5 : 0.5 * y - f)))));
  const flow = file('tiny-flow.json', JSON.stringify(map(1)));
  const options: SampleSpecOptions = { spec, out: path.join(dir, 'out-motion'), mp4: false, settings: { n: 2, motions: [flow], guidance: null, clip: false } };
  const r = await sampleSpec(run, options, { stream: { write: () => true } });
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  const s = r.result.settings;
  const g = graphOf(spec, { b: s.n });
  const inputs = new Map([...sampleConditions(g, s).inputs].map(([name, data]) => [name, { axes: g.inputs.find((i) => i.name === name)!.axes, data: Float64Array.from(data) }]));
  assert.equal([...inputs.get('flow')!.data.subarray(64)], map(1).flat(3), 'every sample gets the map');
  const ref = referenceSample(g, new Map([...params].map(([k, v]) => [k, Float64Array.from(v)])), inputs,
    { sampler: s.sampler, steps: s.steps, eta: s.eta, guidance: s.guidance, clip: s.clip, seed: s.seed, keepFirst: false });
  const err = relError(r.result.samples, ref);
  assert.ok(err < 1e-4, `relative error ${err}`);
  assert.match(readSafetensorsHeader(path.join(options.out!, 'samples.safetensors')).metadata['vdm.motion'], /tiny-flow\.json$/);
  const other = await sampleSpec(run, { ...options, out: path.join(dir, 'out-motion-2'), settings: { ...options.settings, motions: [`flow=${file('tiny-flow-2.json', JSON.stringify(map(-2)))}`] } }, { stream: { write: () => true } });
  assert.ok(other.ok && relError(other.result.samples, r.result.samples) > 1e-3, 'another map gives other samples');
});

test('a bad or missing condition stops sampleSpec before anything is written', async () => {
  const out = path.join(dir, 'never');
  const cases: [Partial<SampleSettings>, RegExp][] = [
    [{ caption: 'a' }, /takes image input 'first': pass --image FILE\.png/],
    [{ images: [path.join(dir, 'gone.png')], caption: 'a' }, /gone\.png: cannot be read/],
    [{ images: [frame4] }, /takes text input 'txt': pass --caption/],
  ];
  for (const [settings, pattern] of cases) {
    try {
      await sampleSpec(tinyRun, { spec: tinySpec, out, mp4: false, settings }, { stream: { write: () => true } });
      assert.unreachable(`${JSON.stringify(settings)} was not refused`);
    } catch (e) {
      assert.instance(e, SampleSetupError);
      assert.match((e as Error).message, pattern);
    }
    assert.not.ok(fs.existsSync(out), 'nothing was written');
  }
});

const vdm = (...args: string[]) => vdmAsync(['sample', ...args], dir);

gpuTest('vdm sample --image NAME=FILE --caption: the files and a resize note; a bad --image: one message, exit 1, nothing written', async () => {
  const ok = await vdm('run', '--spec', 'tiny-i2v.vdm', '--n', '1', '--image', 'first=frame8.png', '--caption', 'red square', '--out', 'cli-ok');
  assert.is(ok.code, 0, ok.err);
  assert.match(ok.err, /note: --image frame8\.png is 8x8: resized to 4x4 for input 'first'/);
  assert.ok(fs.existsSync(path.join(dir, 'cli-ok/samples.safetensors')));
  const bad = await vdm('run', '--spec', 'tiny-i2v.vdm', '--image', 'nope.png', '--caption', 'a', '--out', 'cli-bad');
  assert.is(bad.code, 1);
  assert.match(bad.err, /^vdm sample: --image nope\.png: cannot be read \(ENOENT\)\n$/);
  assert.is(bad.out, '');
  assert.not.ok(fs.existsSync(path.join(dir, 'cli-bad')));
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
