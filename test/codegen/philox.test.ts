import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import type { KernelSpec } from '../../src/codegen/kernels/kernel.ts';
import {
  mulhi32, philox4x32, philoxBits, philoxNormal, PHILOX_WGSL, randomKernel, randomReference, rngParams,
  type RandomParams, type RngKey,
  philoxLogitNormalTimesteps,
} from '../../src/codegen/kernels/philox.ts';
import { runKernel } from '../runtime/kernels.ts';
import { assertCompilesClean, rand, seed } from './ref-check.ts';

const hex = (w: ArrayLike<number>) => Array.from(w, (x) => x.toString(16).padStart(8, '0')).join(' ');
const words = (s: string) => s.split(' ').map((x) => parseInt(x, 16));

// Random123's known-answer vectors for philox4x32-10: counter, key, result.
const KAT = [
  ['00000000 00000000 00000000 00000000', '00000000 00000000', '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
  ['ffffffff ffffffff ffffffff ffffffff', 'ffffffff ffffffff', '408f276d 41c83b0e a20bc7c6 6d5451fd'],
  ['243f6a88 85a308d3 13198a2e 03707344', 'a4093822 299f31d0', 'd16cfe09 94fdcceb 5001e420 24126ea1'],
].map(([ctr, key, out]) => ({ ctr: words(ctr), key: words(key), out }));

/** A fresh key every run, replayable through VDM_TEST_SEED. */
const u32 = () => Math.floor(rand() * 2 ** 32);
const freshKey = (): RngKey => ({ seed: (u32() >>> 12) * 2 ** 32 + u32(), step: u32(), stream: u32() >>> 16 });
const replay = ` (replay: VDM_TEST_SEED=${seed})`;

async function draw(p: RandomParams, k: RngKey): Promise<ArrayBuffer> {
  const [out] = await runKernel(randomKernel(p), [rngParams(k), p.n]);
  return out.buffer as ArrayBuffer;
}

function assertSameBits(gpu: Uint32Array | Int32Array, ref: Uint32Array | Int32Array, what: string) {
  assert.is(gpu.length, ref.length, `${what}: length`);
  const bad = ref.findIndex((x, i) => gpu[i] !== x);
  assert.is(bad, -1, `${what}: element ${bad}: ${gpu[bad]} vs ${ref[bad]}${replay}`);
}

test('CPU: mulhi32 is the exact high word; philox4x32-10 reproduces the known-answer vectors', () => {
  for (let t = 0; t < 2000; t++) {
    const [a, b] = t < 4 ? [[0, 0], [0xffffffff, 0xffffffff], [0xffffffff, 1], [0x10000, 0x10000]][t] : [rand() * 2 ** 32 >>> 0, rand() * 2 ** 32 >>> 0];
    assert.is(mulhi32(a, b), Number((BigInt(a) * BigInt(b)) >> 32n), `mulhi32(${a}, ${b})`);
  }
  for (const { ctr, key, out } of KAT) assert.is(hex(philox4x32(ctr, key)), out, `counter ${hex(ctr)} key ${hex(key)}`);
});

gpuTest('GPU: the WGSL philox4x32_10 gives the known-answer vectors bit for bit', async () => {
  const spec: KernelSpec = {
    key: 'test-philox-kat', entryPoint: 'main', dispatch: [1, 1, 1],
    bindings: [{ name: 'inputs', access: 'read' }, { name: 'out', access: 'read_write' }],
    wgsl: `@group(0) @binding(0) var<storage, read> inputs: array<vec4u>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4u>;
${PHILOX_WGSL}
@compute @workgroup_size(${KAT.length}) fn main(@builtin(local_invocation_index) i: u32) {
  out[i] = philox4x32_10(inputs[2u * i], inputs[2u * i + 1u].xy);
}`,
  };
  await assertCompilesClean(spec);
  const inputs = Uint32Array.from(KAT.flatMap(({ ctr, key }) => [...ctr, ...key, 0, 0]));
  const [out] = await runKernel(spec, [inputs, 4 * KAT.length]);
  const got = new Uint32Array(out.buffer);
  KAT.forEach(({ out: want }, i) => assert.is(hex(got.subarray(4 * i, 4 * i + 4)), want, `vector ${i}`));
});

gpuTest('raw words, uniforms and timesteps are bit-identical to the CPU (partial last blocks, several T)', async () => {
  for (const n of [1, 6, 4099, 20_000]) {
    const k = freshKey();
    for (const kind of ['bits', 'uniform'] as const) {
      const p: RandomParams = { kind, n };
      await assertCompilesClean(randomKernel(p));
      const ref = randomReference(p, k) as Uint32Array | Float32Array;
      assertSameBits(new Uint32Array(await draw(p, k)), new Uint32Array(ref.buffer), `${kind} n=${n}`);
    }
    for (const steps of [1, 7, 1000]) {
      const p: RandomParams = { kind: 'timesteps', n, steps };
      await assertCompilesClean(randomKernel(p));
      const got = new Int32Array(await draw(p, k));
      assertSameBits(got, randomReference(p, k) as Int32Array, `timesteps n=${n} T=${steps}`);
      assert.ok(got.every((t) => t >= 0 && t < steps), `timesteps in [0, ${steps})`);
    }
  }
});

gpuTest('normals agree with the float64 Box-Muller within 1e-6 relative (1e5 elements)', async () => {
  const n = 100_001;
  const p: RandomParams = { kind: 'normal', n };
  await assertCompilesClean(randomKernel(p));
  const k = freshKey();
  const got = new Float32Array(await draw(p, k));
  const ref = philoxNormal(k, n);
  let worst = 0, at = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.abs(got[i] - ref[i]) / Math.max(Math.abs(ref[i]), 1e-30);
    if (!(e <= worst)) { worst = e; at = i; }
  }
  assert.ok(worst < 1e-6, `element ${at}: ${got[at]} vs ${ref[at]}, relative error ${worst}${replay}`);
});

gpuTest('statistics over 1e5 draws: normals have mean ~0 and variance ~1, uniforms mean ~1/2, every timestep occurs', async () => {
  const n = 100_000;
  const k = freshKey();
  const z = new Float32Array(await draw({ kind: 'normal', n }, k));
  const mean = z.reduce((a, x) => a + x, 0) / n;
  const variance = z.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  const fourth = z.reduce((a, x) => a + x ** 4, 0) / n;
  // Bounds of 6 standard errors: sd(mean) = 0.0032, sd(var) = 0.0045, sd(E z^4) = 0.030.
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}${replay}`);
  assert.ok(Math.abs(variance - 1) < 0.03, `variance ${variance}${replay}`);
  assert.ok(Math.abs(fourth - 3) < 0.2, `fourth moment ${fourth}${replay}`);
  // Pairs come from one (u1, u2): their cosine and sine must still be uncorrelated.
  let pair = 0;
  for (let i = 0; i < n; i += 2) pair += z[i] * z[i + 1];
  assert.ok(Math.abs(pair / (n / 2)) < 0.03, `correlation within pairs ${pair / (n / 2)}${replay}`);

  const u = new Float32Array(await draw({ kind: 'uniform', n }, { ...k, stream: k.stream + 1 }));
  const um = u.reduce((a, x) => a + x, 0) / n;
  assert.ok(u.every((x) => x >= 0 && x < 1) && Math.abs(um - 0.5) < 0.006, `uniform mean ${um}${replay}`);

  const T = 1000;
  const t = new Int32Array(await draw({ kind: 'timesteps', n, steps: T }, { ...k, stream: k.stream + 2 }));
  const counts = new Array(T).fill(0);
  for (const x of t) counts[x]++;
  const chi2 = counts.reduce((a, c) => a + (c - n / T) ** 2 / (n / T), 0);
  // chi-square with 999 degrees of freedom: mean 999, sd 44.7
  assert.ok(counts.every((c) => c > 0) && chi2 < 999 + 6 * 44.7, `timestep chi-square ${chi2}${replay}`);
});

gpuTest('logit-normal timesteps: the float64 draws up to a level at rounding boundaries, and most levels in the middle', async () => {
  const n = 100_000, T = 1000;
  const ln = { mean: 0, std: 1 };
  const p: RandomParams = { kind: 'timesteps', n, steps: T, logitNormal: ln };
  await assertCompilesClean(randomKernel(p));
  const k = freshKey();
  const got = new Int32Array(await draw(p, k));
  const ref = philoxLogitNormalTimesteps(k, n, T, ln);
  let off = 0;
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(got[i] - ref[i]) <= 1 && got[i] >= 0 && got[i] < T, `element ${i}: ${got[i]} vs ${ref[i]}${replay}`);
    if (got[i] !== ref[i]) off++;
  }
  assert.ok(off < n / 1000, `${off} of ${n} a level off${replay}`);
  // P(T/4 <= k < 3T/4) = P(|z| < ln 3) = 0.7267 for N(0, 1), 0.5 for uniform draws; sd 0.0014
  const middle = got.filter((t) => t >= T / 4 && t < (3 * T) / 4).length / n;
  assert.ok(Math.abs(middle - 0.7267) < 0.01, `middle half holds ${middle}${replay}`);
  // a shifted mean moves the mass: mean 1 puts P(k >= T/2) = P(z > -1) = 0.8413
  const up = new Int32Array(await draw({ ...p, logitNormal: { mean: 1, std: 1 } }, { ...k, stream: k.stream + 1 }));
  const upper = up.filter((t) => t >= T / 2).length / n;
  assert.ok(Math.abs(upper - 0.8413) < 0.01, `upper half holds ${upper}${replay}`);
});

gpuTest('one compiled kernel serves every step and stream: the key lives in the uniform', async () => {
  const p: RandomParams = { kind: 'bits', n: 64 };
  const spec = randomKernel(p);
  const base = freshKey();
  const keys = [base, { ...base, step: (base.step + 1) >>> 0 }, { ...base, stream: base.stream + 1 }, { ...base, seed: base.seed + 2 ** 32 }];
  const outs: Uint32Array[] = [];
  for (const k of keys) {
    assert.is(randomKernel(p).key, spec.key);
    const got = new Uint32Array((await runKernel(spec, [rngParams(k), p.n]))[0].buffer);
    assertSameBits(got, philoxBits(k, p.n), `key ${JSON.stringify(k)}`);
    outs.push(got);
  }
  for (let a = 0; a < outs.length; a++) {
    for (let b = a + 1; b < outs.length; b++) assert.ok(outs[a].some((x, i) => x !== outs[b][i]), `keys ${a} and ${b} draw the same words`);
  }
  assert.equal(Array.from(rngParams({ seed: 2 ** 32 + 5, step: 7, stream: 3 })), [5, 1, 7, 3], 'the uniform layout');
});

test('bad parameters fail with clear messages', () => {
  assert.throws(() => randomKernel({ kind: 'timesteps', n: 4 }), /steps \(T\)/);
  assert.throws(() => randomKernel({ kind: 'normal', n: 0 }), /positive integer/);
  assert.throws(() => randomKernel({ kind: 'gamma' as 'normal', n: 4 }), /unknown kind 'gamma'/);
  assert.throws(() => randomKernel({ kind: 'timesteps', n: 4, steps: 10, logitNormal: { mean: 0, std: 0 } }), /logitNormal/);
  assert.throws(() => randomKernel({ kind: 'normal', n: 4, logitNormal: { mean: 0, std: 1 } }), /logitNormal applies to timesteps/);
  assert.throws(() => rngParams({ seed: -1, step: 0, stream: 0 }), /seed/);
  assert.throws(() => rngParams({ seed: 1, step: 2 ** 32, stream: 0 }), /step must be a u32/);
});

test.run();
