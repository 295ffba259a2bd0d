import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import {
  adamwKernel, adamwParams, adamwReference, ADAMW_FIELDS, chunkCount, emaDecayAt, chunkTable, gradNormKernels, gradNormReference,
  learningRate, NO_INDEX, nonfiniteClearKernel, nonfiniteKernel, nonfiniteReference, segmentAt,
  type AdamWConfig, type ArenaLayout, type ArenaSegment, type OptimizerState,
} from '../../src/codegen/kernels/optimizer.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Program, type Tensor } from '../../src/runtime/program.ts';
import { assertCompilesClean, randomArray, relError, seed } from './ref-check.ts';

const replay = ` (replay: VDM_TEST_SEED=${seed})`;

/**
 * Segments of the given lengths, each starting at a multiple of 64 (as arena parts must), so the
 * arena has padding between them; every other one is excluded from weight decay.
 */
function arena(lengths: number[]): { segments: ArenaSegment[]; size: number } {
  let at = 0;
  const segments = lengths.map((length, k) => {
    const s = { offset: at, length, weightDecay: k % 2 === 0 };
    at = Math.ceil((at + length) / 64) * 64;
    return s;
  });
  return { segments, size: at };
}

/** Random values in the segments, NaN in the padding: a kernel that reads or writes padding shows up. */
function fill(segments: readonly ArenaSegment[], size: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(size).fill(NaN);
  for (const s of segments) out.set(randomArray(s.length, lo, hi), s.offset);
  return out;
}

const LENGTHS = [1, 63, 64, 65, 1000, 4097, 3, 9000];
const tensorsOf = (prog: Program, names: string[], data: Float32Array[]) => names.map((n, i) => prog.input(n, data[i]));

test('the chunk table covers every segment element once and no padding; segmentAt maps indices back', () => {
  const { segments, size } = arena(LENGTHS);
  const layout: ArenaLayout = { segments, chunkSize: 1000 };
  const table = chunkTable(layout);
  assert.is(table.length, 4 * chunkCount(layout));
  const seen = new Uint8Array(size);
  for (let c = 0; c < table.length; c += 4) {
    const [begin, end, flags, k] = table.subarray(c, c + 4);
    const s = segments[k];
    assert.ok(begin >= s.offset && end <= s.offset + s.length && end - begin <= 1000 && end > begin, `chunk ${c / 4}`);
    assert.is(flags, s.weightDecay ? 1 : 0);
    for (let i = begin; i < end; i++) seen[i]++;
  }
  for (let i = 0; i < size; i++) assert.is(seen[i], segmentAt(segments, i) ? 1 : 0, `element ${i}`);
  assert.equal(segmentAt(segments, segments[5].offset + 7), { segment: 5, element: 7 });
  assert.is(segmentAt(segments, segments[1].offset + 63), undefined, 'padding');
});

gpuTest('gradient norm over the segments (padding holds NaN): several chunk sizes, the same bits on every run', async () => {
  const gpu = await openGpu();
  for (const [lengths, chunkSize] of [[LENGTHS, 256], [LENGTHS, undefined], [[5], 64], [[100_000], 1024]] as const) {
    const { segments, size } = arena([...lengths]);
    const layout: ArenaLayout = { segments, chunkSize };
    const { partials, finish, count } = gradNormKernels(layout);
    for (const spec of [partials, finish]) await assertCompilesClean(spec);
    const grad = fill(segments, size, -3, 3);
    const prog = new Program(gpu);
    try {
      const chunks = prog.input('chunks', chunkTable(layout));
      const g = prog.input('grad', grad);
      const parts = prog.scratch('partials', count);
      const norm = prog.output('norm', 1);
      prog.step(partials, [chunks, g, parts]).step(finish, [parts, norm]);
      const first = (await prog.run()).outputs.norm[0];
      const again = (await prog.run()).outputs.norm[0];
      const ref = gradNormReference(segments, grad);
      assert.ok(relError([first], [ref]) < 1e-5, `lengths ${lengths} chunk ${chunkSize}: ${first} vs ${ref}${replay}`);
      assert.is(Object.is(first, again), true, 'deterministic');
    } finally {
      prog.release();
    }
  }
});

/** Runs gradient norm + AdamW for each gradient in turn on one Program; returns the state after each step. */
async function runAdamW(layout: ArenaLayout, init: Float32Array[], grads: Float32Array[], cfg: AdamWConfig, lrs: number[], ema = true) {
  const gpu = await openGpu();
  const prog = new Program(gpu);
  try {
    const norm = gradNormKernels(layout);
    const adamw = adamwKernel({ ...layout, ema });
    await assertCompilesClean(adamw);
    const hp = prog.input('hp', adamwParams(cfg, lrs[0], 1));
    const chunks = prog.input('chunks', chunkTable(layout));
    const grad = prog.input('grad', grads[0]);
    const parts = prog.scratch('partials', norm.count);
    const normT = prog.output('norm', 1);
    const state: Tensor[] = tensorsOf(prog, ['param', 'm', 'v', 'ema'].slice(0, ema ? 4 : 3), init);
    prog.step(norm.partials, [chunks, grad, parts]).step(norm.finish, [parts, normT]).step(adamw, [hp, chunks, normT, grad, ...state]);
    const out: { norm: number; state: Float32Array[] }[] = [];
    for (let t = 1; t <= grads.length; t++) {
      prog.write(hp, adamwParams(cfg, lrs[t - 1], t));
      prog.write(grad, grads[t - 1]);
      const { outputs } = await prog.run();
      out.push({ norm: outputs.norm[0], state: (await prog.read(state)) as Float32Array[] });
    }
    return out;
  } finally {
    prog.release();
  }
}

const toState = (a: Float32Array[]): OptimizerState => ({ param: Float64Array.from(a[0]), m: Float64Array.from(a[1]), v: Float64Array.from(a[2]), ema: Float64Array.from(a[3]) });

/**
 * Asserts the GPU state matches the reference within `tol` relative to each element's magnitude (the
 * sum of |terms| it is built from, >= |value|: the plain relative error where terms do not cancel),
 * and that the padding kept its NaN.
 */
function assertState(gpu: Float32Array[], ref: OptimizerState, mag: OptimizerState, segments: readonly ArenaSegment[], what: string, tol = 1e-5) {
  (['param', 'm', 'v', 'ema'] as const).slice(0, gpu.length).forEach((name, k) => {
    let worst = 0, at = -1;
    for (const s of segments) {
      for (let i = s.offset; i < s.offset + s.length; i++) {
        const diff = Math.abs(gpu[k][i] - ref[name][i]);
        const e = diff === 0 ? 0 : diff / mag[name][i];
        if (!(e <= worst)) { worst = e; at = i; }
      }
    }
    assert.ok(worst < tol, `${what}: ${name}[${at}] = ${gpu[k][at]} vs ${ref[name][at]}: relative error ${worst}${replay}`);
    assert.ok(gpu[k].every((x, i) => segmentAt(segments, i) || Number.isNaN(x)), `${what}: ${name} padding was written`);
  });
}

gpuTest('AdamW over 3 steps matches the float64 reference (< 1e-5 relative), decay on and off per segment, with and without EMA', async () => {
  const { segments, size } = arena(LENGTHS);
  for (const [chunkSize, ema] of [[256, true], [4096, false]] as const) {
    const layout: ArenaLayout = { segments, chunkSize };
    // A large rate and decay so that three updates move parameters far beyond f32 rounding.
    const cfg: AdamWConfig = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1e9, emaDecay: 0.99 };
    const lrs = [0.05, 0.1, 0.08];
    const init = [fill(segments, size, -1, 1), fill(segments, size, -0.01, 0.01), fill(segments, size, 0, 1e-4), fill(segments, size, -1, 1)];
    const grads = [0, 1, 2].map(() => fill(segments, size, -0.1, 0.1));
    const gpu = await runAdamW(layout, init.slice(0, ema ? 4 : 3), grads, cfg, lrs, ema);
    let ref = toState(init), mag: OptimizerState | undefined;
    for (let t = 0; t < 3; t++) {
      const r = adamwReference(segments, ref, grads[t], cfg, lrs[t], t + 1, mag);
      ({ state: ref, magnitude: mag } = r);
      assert.is(r.clip, 1, 'no clipping');
      assert.ok(relError([gpu[t].norm], [r.norm]) < 1e-5, `step ${t + 1} norm${replay}`);
      assertState(gpu[t].state, ref, mag, segments, `chunk ${chunkSize} step ${t + 1}`);
    }
    // The decay flag matters: decayed and undecayed segments differ from a run with all decay off.
    const noDecay = adamwReference(segments, toState(init), grads[0], { ...cfg, weightDecay: 0 }, lrs[0], 1).state.param;
    const moved = (k: number) => Math.abs(gpu[0].state[0][segments[k].offset + 0] - noDecay[segments[k].offset + 0]);
    assert.ok(moved(0) > 1e-5 && moved(1) < 1e-6, 'weight decay applies to flagged segments only');
  }
});

gpuTest('clipping engages when the gradient norm exceeds max_norm: every gradient is scaled by max_norm / (norm + 1e-6)', async () => {
  const { segments, size } = arena([700, 65, 2049]);
  const layout: ArenaLayout = { segments, chunkSize: 512 };
  const cfg: AdamWConfig = { maxGradNorm: 0.5, weightDecay: 0.01, emaDecay: 0.9 };
  const init = [fill(segments, size, -1, 1), fill(segments, size, 0, 0), fill(segments, size, 0, 0), fill(segments, size, -1, 1)];
  const grads = [0, 1].map(() => fill(segments, size, -5, 5));
  const lrs = [1e-2, 1e-2];
  const gpu = await runAdamW(layout, init, grads, cfg, lrs);
  let ref = toState(init), mag: OptimizerState | undefined;
  for (let t = 0; t < 2; t++) {
    const r = adamwReference(segments, ref, grads[t], cfg, lrs[t], t + 1, mag);
    ({ state: ref, magnitude: mag } = r);
    assert.ok(r.clip < 0.01, `clip factor ${r.clip}`);
    assertState(gpu[t].state, ref, mag, segments, `clipped step ${t + 1}`);
  }
  // After the first step m = (1 - beta1) · clip · g exactly, from zero moments.
  const { norm } = gpu[0];
  const i = segments[2].offset + 17;
  const clip = 0.5 / (norm + 1e-6);
  assert.ok(Math.abs(gpu[0].state[1][i] / (0.1 * clip * grads[0][i]) - 1) < 1e-5, `m ${gpu[0].state[1][i]}`);
});

gpuTest('nonfinite check: the count and the first bad index (padding NaN ignored); AdamW skips the step', async () => {
  const { segments, size } = arena(LENGTHS);
  const layout: ArenaLayout = { segments, chunkSize: 512 };
  const gpu = await openGpu();
  const check = nonfiniteKernel(layout);
  for (const spec of [check, nonfiniteClearKernel()]) await assertCompilesClean(spec);
  const grad = fill(segments, size, -1, 1);
  const cases: [string, number[]][] = [
    ['all finite', []],
    ['one NaN', [segments[7].offset + 8000]],
    ['NaN, +Inf and -Inf', [segments[7].offset + 100, segments[5].offset + 4096, segments[3].offset + 1]],
    ['first element of the arena', [0, segments[4].offset + 999]],
  ];
  const bad = [NaN, Infinity, -Infinity];
  const prog = new Program(gpu);
  try {
    const chunks = prog.input('chunks', chunkTable(layout));
    const g = prog.input('grad', grad);
    const flag = prog.output('flag', 2, 'u32');
    // Run twice in one submit: the clear makes the second check independent of the first.
    prog.step(nonfiniteClearKernel(), [flag]).step(check, [chunks, g, flag]).step(nonfiniteClearKernel(), [flag]).step(check, [chunks, g, flag]);
    for (const [what, at] of cases) {
      const x = grad.slice();
      at.forEach((i, k) => { x[i] = bad[k % 3]; });
      prog.write(g, x);
      const got = Array.from((await prog.run()).outputs.flag);
      assert.equal(got, nonfiniteReference(segments, x), what);
      assert.equal(got, [at.length, at.length ? Math.min(...at) : NO_INDEX], what);
      if (at.length) assert.ok(segmentAt(segments, got[1]), 'maps back to a parameter');
    }
  } finally {
    prog.release();
  }

  // A NaN gradient makes the norm NaN: AdamW leaves every arena as it was.
  const init = [fill(segments, size, -1, 1), fill(segments, size, -1, 1), fill(segments, size, 0, 1), fill(segments, size, -1, 1)];
  const x = fill(segments, size, -1, 1);
  x[segments[6].offset + 2] = NaN;
  const [after] = await runAdamW(layout, init, [x], {}, [0.1]);
  assert.ok(Number.isNaN(after.norm), 'the norm is NaN');
  after.state.forEach((a, k) => assert.ok(a.every((v, i) => Object.is(v, init[k][i])), `arena ${k} unchanged`));
  assert.ok(adamwReference(segments, toState(init), x, {}, 0.1, 1).skipped);
});

test('learning rate: linear warm-up to the peak, cosine to the final rate, flat after', () => {
  const s = { peak: 3e-4, warmupSteps: 100, totalSteps: 1100, final: 1e-5 };
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.abs(b) + 1e-18;
  assert.is(learningRate(s, 0), 0);
  assert.ok(close(learningRate(s, 1), 3e-6));
  assert.ok(close(learningRate(s, 50), 1.5e-4));
  assert.ok(close(learningRate(s, 100), 3e-4), 'peak at the end of warm-up');
  assert.ok(close(learningRate(s, 600), (3e-4 + 1e-5) / 2), 'halfway down the cosine');
  assert.ok(close(learningRate(s, 1100), 1e-5), 'final at the end of decay');
  assert.ok(close(learningRate(s, 5000), 1e-5), 'flat after');
  assert.ok(learningRate(s, 101) < 3e-4 && learningRate(s, 1099) > 1e-5);
  assert.ok(close(learningRate({ peak: 1, warmupSteps: 0, totalSteps: 10 }, 0), 1), 'no warm-up');
  assert.ok(close(learningRate({ peak: 1, warmupSteps: 10, totalSteps: 10 }, 20), 1), 'no decay phase');
});

test('the AdamWParams uniform: 48 bytes, step-dependent bias corrections computed in float64', () => {
  const p = adamwParams({ betas: [0.9, 0.999], emaDecay: 0.9999 }, 1e-3, 3);
  assert.is(p.byteLength, 48);
  const at = (f: (typeof ADAMW_FIELDS)[number]) => p[ADAMW_FIELDS.indexOf(f)];
  assert.is(at('lr'), Math.fround(1e-3));
  assert.is(at('bias_correction1'), Math.fround(1 - 0.9 ** 3));
  assert.is(at('bias_correction2'), Math.fround(1 - 0.999 ** 3));
  assert.is(at('one_minus_beta2'), Math.fround(1e-3));
  assert.is(at('one_minus_ema_decay'), Math.fround(1 - 4 / 13), 'warm-up: (1 + 3) / (10 + 3) until it reaches 0.9999');
  assert.is(at('weight_decay'), Math.fround(0.01));
  assert.is(at('max_norm'), 1);
  const flat = adamwParams({ emaDecay: 0.9999, emaWarmup: false }, 1e-3, 3);
  assert.is(flat[ADAMW_FIELDS.indexOf('one_minus_ema_decay')], Math.fround(1e-4));
});

test('EMA warm-up: min(decay, (1 + step) / (10 + step)), so a short run averages its last steps', () => {
  assert.is(emaDecayAt({}, 1), 2 / 11);
  assert.is(emaDecayAt({}, 1000), 1001 / 1010);
  assert.is(emaDecayAt({}, 200000), 0.9999);
  assert.is(emaDecayAt({ emaDecay: 0.99 }, 5000), 0.99);
  assert.is(emaDecayAt({ emaWarmup: false }, 1), 0.9999);
});

test('bad parameters fail with clear messages', () => {
  const seg = (offset: number, length: number): ArenaSegment => ({ offset, length, weightDecay: true });
  assert.throws(() => chunkTable({ segments: [] }), /no segments/);
  assert.throws(() => chunkTable({ segments: [seg(0, 10), seg(5, 10)] }), /overlap/);
  assert.throws(() => chunkTable({ segments: [seg(0, 0)] }), /length >= 1/);
  assert.throws(() => adamwKernel({ segments: [seg(0, 4)], workgroupSize: 48 }), /power of two/);
  assert.throws(() => adamwParams({ betas: [0.9, 1] }, 1e-3, 1), /beta2 must be in \[0, 1\)/);
  assert.throws(() => adamwParams({}, 1e-3, 0), /counted from 1/);
  assert.throws(() => learningRate({ peak: 1, warmupSteps: 10, totalSteps: 5 }, 1), /warmupSteps <= totalSteps/);
});

test.run();
