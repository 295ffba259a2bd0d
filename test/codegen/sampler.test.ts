// The sampler step kernel: its float64 reference (the table's rearrangement) against the
// definitions in diffusion-math.ts (guide, splitPrediction, ddimStep, ddpmStep on the respaced
// schedule) for every sampler, target, learned sigma and guidance; then the prepare, init and step
// kernels on the adapter against the reference, Philox keys included; a wrong key must fail; the
// keep-first kernel (replacement of frame 0) against its reference and the definition.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { philoxNormal } from '../../src/codegen/kernels/philox.ts';
import {
  keepFirstIndex, SAMPLE_FIRST_FRAME_STREAM, SAMPLE_NOISE_STREAM, SAMPLER_TABLE_COLUMNS, samplerInitKernel, samplerKeepFirstKernel, samplerKeepFirstReference,
  samplerPrepareKernel, samplerStepKernel, samplerStepReference, type KeepFirstParams, type SamplerStepParams,
} from '../../src/codegen/kernels/sampler.ts';
import { samplerTableOf } from '../../src/codegen/sampling.ts';
import type { ScheduleSpec } from '../../src/compiler/ir/diffusion-spec.ts';
import { alphaBar, ddimStep, ddpmStep, eulerStep, guide, noiseSchedule, samplerTimesteps, splitPrediction } from '../../src/compiler/reference/diffusion-math.ts';
import { gaussian } from '../../src/compiler/reference/evaluate.ts';
import { clipPrediction, respacedSchedule } from '../../src/compiler/reference/sampling.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Program } from '../../src/runtime/program.ts';
import { assertCompilesClean, rand, relError, seed } from './ref-check.ts';

const replay = ` (replay: VDM_TEST_SEED=${seed})`;
const normal = gaussian(rand);
const COSINE: ScheduleSpec = { kind: 'cosine', steps: 40, s: 0.008 };
const LINEAR: ScheduleSpec = { kind: 'linear', beta_start: 1e-4, beta_end: 0.1, steps: 40 };
const FLOW: ScheduleSpec = { kind: 'rectified_flow', steps: 40, shift: 3 };

interface Case {
  name: string;
  shape: number[];
  channelAxis: number;
  kind: 'ddpm' | 'ddim' | 'euler';
  eta: number;
  predict: 'epsilon' | 'v' | 'x0';
  learned: boolean;
  guidance: number | null;
  clip: boolean;
  schedule: ScheduleSpec;
  /** steps visited */
  steps: number;
}

const VIDEO = [2, 3, 1, 3, 3]; // [b, c, t, h, w]: 54 elements, a partial last block of four
const base = { shape: VIDEO, channelAxis: 1, learned: false, guidance: null, clip: false, schedule: COSINE, steps: 8 } as const;
const CASES: Case[] = [
  { ...base, name: 'DDIM eta 0, epsilon', kind: 'ddim', eta: 0, predict: 'epsilon' },
  { ...base, name: 'DDIM eta 0.7, v, clipped', kind: 'ddim', eta: 0.7, predict: 'v', clip: true },
  { ...base, name: 'DDIM eta 1, x0, guidance 3', kind: 'ddim', eta: 1, predict: 'x0', guidance: 3, schedule: LINEAR },
  { ...base, name: 'DDIM eta 0, epsilon, guidance 4, clipped, every step', kind: 'ddim', eta: 0, predict: 'epsilon', guidance: 4, clip: true, steps: 40 },
  { ...base, name: 'DDPM, epsilon, every step', kind: 'ddpm', eta: 0, predict: 'epsilon', steps: 40 },
  { ...base, name: 'DDPM, v, respaced, clipped', kind: 'ddpm', eta: 0, predict: 'v', clip: true, schedule: LINEAR },
  { ...base, name: 'DDPM, x0, guidance 2', kind: 'ddpm', eta: 0, predict: 'x0', guidance: 2 },
  { ...base, name: 'DDPM, learned sigma, respaced', kind: 'ddpm', eta: 0, predict: 'epsilon', learned: true },
  { ...base, name: 'DDPM, learned sigma, guidance 1.5, clipped', kind: 'ddpm', eta: 0, predict: 'epsilon', learned: true, guidance: 1.5, clip: true, schedule: LINEAR, steps: 5 },
  { ...base, name: 'DDPM, learned sigma, channels last', kind: 'ddpm', eta: 0, predict: 'epsilon', learned: true, shape: [3, 2, 2, 3, 2], channelAxis: 4 },
  { ...base, name: 'DDIM eta 0.5, learned sigma (variance unused), guidance 2', kind: 'ddim', eta: 0.5, predict: 'epsilon', learned: true, guidance: 2 },
  { ...base, name: 'Euler, rectified flow shift 3, respaced', kind: 'euler', eta: 0, predict: 'v', schedule: FLOW },
  { ...base, name: 'Euler, rectified flow shift 1, guidance 7, every level', kind: 'euler', eta: 0, predict: 'v', guidance: 7, schedule: { ...FLOW, shift: 1 }, steps: 40 },
];

const paramsOf = (c: Case): SamplerStepParams => ({
  shape: c.shape, channelAxis: c.channelAxis, kind: c.kind, predict: c.predict, learnedSigma: c.learned, guidance: c.guidance,
  clip: c.clip, noise: c.kind === 'ddpm' || c.eta > 0, steps: samplerTimesteps(noiseSchedule(c.schedule), c.steps).length,
});

function dataOf(c: Case) {
  const n = c.shape.reduce((a, b) => a * b, 1);
  const outN = (c.learned ? 2 : 1) * n * (c.guidance === null ? 1 : 2);
  const s = noiseSchedule(c.schedule);
  const ts = samplerTimesteps(s, c.steps);
  const out = Float32Array.from({ length: outN }, () => 1.5 * normal());
  // variance values in [-1.5, 1.5]: a little past the interpolation's ends too
  return { n, s, ts, out, x: Float32Array.from({ length: n }, () => 2 * normal()), noise: Float64Array.from({ length: n }, normal), table: samplerTableOf(s, ts, c.kind, c.eta, c.learned) };
}

/** The definitions: what one step of the sampler is, from diffusion-math.ts. */
function definition(c: Case, d: ReturnType<typeof dataOf>, k: number, x: ArrayLike<number>, noise: ArrayLike<number>): Float64Array {
  const { n, s, ts, out } = d;
  const C = c.shape[c.channelAxis];
  const post = c.shape.slice(c.channelAxis + 1).reduce((a, b) => a * b, 1);
  const predAt = (i: number) => (c.learned ? (Math.floor(i / (C * post)) * 2 * C + (Math.floor(i / post) % C)) * post + (i % post) : i);
  const half = (c.learned ? 2 : 1) * n;
  const cond = Float64Array.from({ length: n }, (_, i) => out[predAt(i)]);
  const pred = c.guidance === null ? cond : guide(cond, Float64Array.from({ length: n }, (_, i) => out[predAt(i) + half]), c.guidance);
  const t = ts[k];
  if (c.kind === 'euler') return eulerStep(s, x, pred, t, k + 1 < ts.length ? ts[k + 1] : -1);
  const { x0, eps } = c.clip ? clipPrediction(c.predict, s, x, pred, t) : splitPrediction(c.predict, s, x, pred, t);
  if (c.kind === 'ddim') return ddimStep(s, x0, eps, t, k + 1 < ts.length ? ts[k + 1] : -1, c.eta, noise);
  const v = c.learned ? Float64Array.from({ length: n }, (_, i) => out[predAt(i) + C * post]) : undefined;
  return ddpmStep(respacedSchedule(s, ts), x, x0, ts.length - 1 - k, noise, v);
}

test('the table has a row of SAMPLER_TABLE_COLUMNS per step; DDPM over every step is the schedule itself (respacing changes nothing)', () => {
  const s = noiseSchedule(COSINE);
  const ts = samplerTimesteps(s, 40);
  const rs = respacedSchedule(s, ts);
  for (let t = 0; t < 40; t++) assert.ok(Math.abs(rs.betas[t] - s.betas[t]) < 1e-12 * Math.max(1, 1 / s.betas[t]), `beta ${t}`);
  assert.is(samplerTableOf(s, samplerTimesteps(s, 7), 'ddim', 0, false).length, 7 * SAMPLER_TABLE_COLUMNS.length);
  assert.equal(samplerTimesteps(s, 4), [30, 20, 10, 0]);
});

test('the kernel\'s float64 reference is the definitions: guidance, every target, DDIM with eta, DDPM with a learned sigma, clipping', () => {
  for (const c of CASES) {
    const d = dataOf(c);
    for (let k = 0; k < d.ts.length; k++) {
      const ref = samplerStepReference(paramsOf(c), d.table, k, d.x, d.out, d.noise);
      const def = definition(c, d, k, d.x, d.noise);
      const err = relError(ref, def);
      assert.ok(err < 1e-9, `${c.name}, step ${k} (t = ${d.ts[k]}): relative error ${err}${replay}`);
    }
  }
});

/** Runs prepare, init and step as the sampling program does, from counter (·, k); returns x' and the timesteps written. */
async function runStep(c: Case, d: ReturnType<typeof dataOf>, k: number, rngSeed: number, batch: number, keyStep = 0) {
  const gpu = await openGpu();
  const p = paramsOf(c);
  const copies = c.guidance === null ? 1 : 2;
  const prog = new Program(gpu);
  try {
    const rng = prog.input('rng', Uint32Array.of(rngSeed >>> 0, 0, keyStep, SAMPLE_NOISE_STREAM));
    const counter = prog.output('counter', 2, 'u32');
    prog.write(counter, Uint32Array.of(7, k));
    const table = prog.input('table', Float32Array.from(d.table));
    const out = prog.input('out', d.out);
    const timestep = prog.output('timestep', batch);
    const x = prog.output('x', copies * d.n);
    prog.write(x, Float32Array.from({ length: copies * d.n }, (_, i) => d.x[i % d.n]));
    const specs = [samplerPrepareKernel({ batch, steps: p.steps }), samplerInitKernel({ n: d.n, copies }), samplerStepKernel(p)];
    for (const s of specs) await assertCompilesClean(s);
    prog.step(specs[0], [counter, table, timestep]).step(specs[1], [rng, counter, x]).step(specs[2], [rng, counter, table, out, x]);
    const r = await prog.run();
    return { x: r.outputs.x as Float32Array, timestep: r.outputs.timestep as Float32Array, counter: r.outputs.counter as Uint32Array };
  } finally {
    prog.release();
  }
}

gpuTest('prepare, init and step on the adapter match the reference at the first, a middle and the last step', async () => {
  const rngSeed = 1000 + Math.floor(rand() * 1e6);
  for (const c of CASES) {
    const d = dataOf(c);
    const p = paramsOf(c);
    for (const k of [0, Math.floor(d.ts.length / 2), d.ts.length - 1]) {
      const batch = c.shape[0] * (c.guidance === null ? 1 : 2);
      const got = await runStep(c, d, k, rngSeed, batch);
      assert.equal([...got.counter], [k, k + 1], `${c.name}: counter`);
      assert.equal([...got.timestep], new Array(batch).fill(d.ts[k]), `${c.name}: the timestep input`);
      const x = k === 0 ? philoxNormal({ seed: rngSeed, step: 0, stream: SAMPLE_NOISE_STREAM }, d.n) : d.x;
      const noise = philoxNormal({ seed: rngSeed, step: k + 1, stream: SAMPLE_NOISE_STREAM }, d.n);
      const ref = samplerStepReference(p, d.table, k, x, d.out, noise);
      const err = relError(got.x.subarray(0, d.n), ref);
      assert.ok(err < 5e-5, `${c.name}, step ${k}: relative error ${err}${replay}`);
      if (c.guidance !== null) assert.equal([...got.x.subarray(d.n)], [...got.x.subarray(0, d.n)], `${c.name}: both halves hold x'`);
    }
  }
});

gpuTest('a wrong noise key fails the comparison (the check can fail)', async () => {
  const c = CASES.find((x) => x.kind === 'ddpm')!;
  const d = dataOf(c);
  const got = await runStep(c, d, 2, 77, c.shape[0], 1);
  const ref = samplerStepReference(paramsOf(c), d.table, 2, d.x, d.out, philoxNormal({ seed: 77, step: 3, stream: SAMPLE_NOISE_STREAM }, d.n));
  assert.ok(relError(got.x, ref) > 1e-2, 'a step keyed one step later must not match');
});

gpuTest('keep-first on the adapter: frame 0 of x\' is the given frame noised to the next timestep (its own Philox stream), exactly the frame after the last step', async () => {
  // x [b=2, c=3, t=3, h=2, w=3] under guidance (two copies); the image [2b, c, h, w], its first b entries read
  const p: KeepFirstParams = { frames: 2 * 3 * 6, t: 3, post: 6, n: 2 * 3 * 3 * 6, copies: 2, steps: 0 };
  const s = noiseSchedule(LINEAR);
  const ts = samplerTimesteps(s, 6);
  p.steps = ts.length;
  const table = samplerTableOf(s, ts, 'ddpm', 0, false);
  const image = Float32Array.from({ length: 2 * p.frames }, (_, i) => (i < p.frames ? Math.tanh(normal()) : 9));
  const x0 = Float32Array.from({ length: p.n }, () => normal());
  const x = Float32Array.from({ length: 2 * p.n }, (_, i) => x0[i % p.n]); // both halves hold x', as the step kernel leaves them
  const rngSeed = 1000 + Math.floor(rand() * 1e6);
  const spec = samplerKeepFirstKernel(p);
  await assertCompilesClean(spec);
  const gpu = await openGpu();
  for (const k of [0, 3, ts.length - 1]) {
    const prog = new Program(gpu);
    let got: Float32Array;
    try {
      const rng = prog.input('rng', Uint32Array.of(rngSeed >>> 0, 0, 0, SAMPLE_NOISE_STREAM));
      const counter = prog.input('counter', Uint32Array.of(k, k + 1));
      const xs = prog.output('x', 2 * p.n);
      prog.write(xs, x);
      prog.step(spec, [rng, counter, prog.input('table', Float32Array.from(table)), prog.input('image', image), xs]);
      got = (await prog.run()).outputs.x as Float32Array;
    } finally {
      prog.release();
    }
    const noise = philoxNormal({ seed: rngSeed, step: k + 1, stream: SAMPLE_FIRST_FRAME_STREAM }, p.frames);
    const ref = samplerKeepFirstReference(p, table, k, image, x, noise);
    // the definition: sqrt ᾱ' f + sqrt(1 − ᾱ') ε at frame 0, the other frames untouched
    const ab = alphaBar(s, k + 1 < ts.length ? ts[k + 1] : -1);
    for (let i = 0; i < p.frames; i++) {
      const o = keepFirstIndex(p, i);
      assert.ok(Math.abs(ref[o] - (Math.sqrt(ab) * image[i] + Math.sqrt(1 - ab) * noise[i])) < 1e-12);
    }
    const err = relError(got.subarray(0, p.n), ref);
    assert.ok(err < 5e-5, `step ${k}: relative error ${err}${replay}`);
    assert.equal([...got.subarray(p.n)], [...got.subarray(0, p.n)], 'both halves');
    if (k === ts.length - 1) {
      for (let i = 0; i < p.frames; i++) assert.is(got[keepFirstIndex(p, i)], image[i], `element ${i}: the given frame, exactly`);
    } else {
      const wrong = samplerKeepFirstReference(p, table, k, image, x, philoxNormal({ seed: rngSeed, step: k + 1, stream: SAMPLE_NOISE_STREAM }, p.frames));
      assert.ok(relError(got.subarray(0, p.n), wrong) > 1e-3, 'the step noise\'s stream must not match');
    }
  }
});

test.run();
