import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gpuTest } from '../gpu.ts';
import { gemmKernel, gemmReference } from '../../src/codegen/kernels/gemm.ts';
import { gemmTilingCandidates, type GemmParams } from '../../src/codegen/kernels/gemm-plan.ts';
import type { AdapterTraits, KernelSpec } from '../../src/codegen/kernels/kernel.ts';
import { contiguous } from '../../src/codegen/kernels/view.ts';
import { tuneFromEnv } from '../../src/runtime/adapter.ts';
import { openGpu, type Gpu } from '../../src/runtime/gpu.ts';
import { Program } from '../../src/runtime/program.ts';
import { adapterIdentity, setTuner, timeKernel, Tuner } from '../../src/runtime/tuning.ts';

process.env.VDM_CACHE_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-tuning-'));

const HARDWARE: AdapterTraits = {
  software: false, features: new Set(['subgroups']), info: { subgroupMinSize: 32, subgroupMaxSize: 32 },
  limits: { maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024, maxComputeWorkgroupSizeY: 1024 },
};
const LAVAPIPE: AdapterTraits = { software: true, features: new Set(['subgroups']), info: { subgroupMinSize: 8, subgroupMaxSize: 8 } };

test('tilings offered: the default first, then tiles that fit the limits and the problem', () => {
  const big = gemmTilingCandidates(HARDWARE, { M: 4096, N: 4096 });
  assert.equal(big[0], { kind: 'tiles', tileM: 64, tileN: 64, tileK: 16, threadRows: 4, threadCols: 4 });
  assert.ok(big.length >= 6 && big.slice(1).every((t) => t.kind === 'tiles' && t.vector), JSON.stringify(big));
  assert.ok(big.some((t) => t.kind === 'tiles' && t.tileM === 128 && t.tileN === 128 && t.tileK === 16));
  // 16 KiB of workgroup memory: 128 x 128 x 16 tiles (16 KiB) fit without statistics, not with them
  const small = { ...HARDWARE, limits: { ...HARDWARE.limits, maxComputeWorkgroupStorageSize: 16384 } };
  const fits = (eps?: number) => gemmTilingCandidates(small, { M: 4096, N: 4096, eps }).some((t) => t.kind === 'tiles' && t.tileM === 128 && t.tileN === 128 && t.tileK === 16);
  assert.ok(fits());
  assert.not.ok(fits(1e-6));
  // a 16-row problem gets no 128-row tiles
  assert.not.ok(gemmTilingCandidates(HARDWARE, { M: 16, N: 4096 }).some((t) => t.kind === 'tiles' && t.tileM > 64));
  // a SIMD software adapter: the subgroup kernel at several row counts
  const soft = gemmTilingCandidates(LAVAPIPE, { M: 1024, N: 1024 });
  assert.ok(soft.length >= 4 && soft.every((t) => t.kind === 'lanes' && t.lanes === 8), JSON.stringify(soft));
});

test('kernels offer variants only when the adapter asks for tuning', () => {
  const p: GemmParams = { a: contiguous([40, 32]), b: contiguous([32, 48]), out: contiguous([40, 48]) };
  assert.is(gemmKernel({ ...p, adapter: HARDWARE }).variants, undefined);
  const spec = gemmKernel({ ...p, adapter: { ...HARDWARE, tune: true } });
  const variants = spec.variants!();
  assert.is(variants.length, gemmTilingCandidates(HARDWARE, { M: 40, N: 48 }).length - 1);
  assert.ok(variants.every((v) => v.key !== spec.key && v.variants === undefined && v.bindings.length === spec.bindings.length));
  // a caller that fixes the tiling gets that kernel alone
  const fixed = gemmKernel({ ...p, adapter: { ...HARDWARE, tune: true }, tiling: { kind: 'tiles', tileM: 32, tileN: 32, tileK: 8, threadRows: 4, threadCols: 4 } });
  assert.is(fixed.variants, undefined);
});

test('VDM_TUNE: auto tunes hardware adapters only; on and off force it', () => {
  assert.is(tuneFromEnv(false, {}), true);
  assert.is(tuneFromEnv(true, {}), false);
  assert.is(tuneFromEnv(true, { VDM_TUNE: 'on' }), true);
  assert.is(tuneFromEnv(false, { VDM_TUNE: 'off' }), false);
  assert.throws(() => tuneFromEnv(false, { VDM_TUNE: 'fast' }), /VDM_TUNE must be one of auto, on, off/);
});

const problem = (adapter: AdapterTraits): GemmParams => ({
  a: contiguous([2, 40, 32]), b: contiguous([32, 48]), bias: contiguous([48]), out: contiguous([2, 40, 48]), activation: 'silu', adapter,
});

gpuTest('the tuner keeps the fastest variant, remembers it on disk per adapter, and retimes what it does not know', async () => {
  const gpu = await openGpu();
  const spec = gemmKernel(problem({ ...gpu, tune: true }));
  const all = [spec, ...spec.variants!()];
  assert.ok(all.length >= 3);
  // a clock on which the second-to-last variant is fastest
  const fastest = all[all.length - 2];
  const timed: string[] = [];
  const clock = async (s: KernelSpec) => { timed.push(s.key); return s === fastest || s.key === fastest.key ? 1 : 5; };
  const bytes = [2 * 40 * 32 * 4, 32 * 48 * 4, 48 * 4, 2 * 40 * 48 * 4];
  const first = new Tuner(gpu, clock);
  assert.is((await first.choose(spec, bytes)).key, fastest.key);
  assert.is(timed.length, all.length);
  assert.equal(first.stats, { problems: 1, fromCache: 0, timed: all.length, changed: 1, ms: first.stats.ms });
  // a new process (a new tuner) reads the choice back without timing anything
  timed.length = 0;
  const second = new Tuner(gpu, clock);
  const again = await second.choose(gemmKernel(problem({ ...gpu, tune: true })), bytes);
  assert.is(again.key, fastest.key);
  assert.is(timed.length, 0);
  assert.is(second.stats.fromCache, 1);
  // another adapter (other limits) does not share the choice
  const other = { ...gpu, limits: { ...gpu.limits, maxComputeWorkgroupStorageSize: gpu.limits.maxComputeWorkgroupStorageSize + 16 } } as Gpu;
  assert.is.not(adapterIdentity(other), adapterIdentity(gpu));
  await new Tuner(other, clock).choose(spec, bytes);
  assert.is(timed.length, all.length);
  // a stored choice that is no longer offered is timed afresh
  timed.length = 0;
  const fewer: KernelSpec = { ...spec, variants: () => all.slice(1, 2) };
  await new Tuner(gpu, clock).choose(fewer, bytes);
  assert.is(timed.length, 2);
  // a kernel without variants is returned as it is
  const plain = gemmKernel(problem(gpu));
  assert.is(await new Tuner(gpu, clock, false).choose(plain, bytes), plain);
});

gpuTest('timing a variant on the adapter: a finite median, Infinity for a kernel that cannot run', async () => {
  const gpu = await openGpu();
  const spec = gemmKernel(problem(gpu));
  const sizes = [2 * 40 * 32, 32 * 48, 48, 2 * 40 * 48];
  const bufs = sizes.map((n) => gpu.device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE }));
  try {
    const ms = await timeKernel(gpu, spec, bufs);
    assert.ok(Number.isFinite(ms) && ms > 0, String(ms));
    const broken: KernelSpec = { ...spec, key: 'broken', wgsl: spec.wgsl.replace('fn main', 'fn main_') };
    assert.is(await timeKernel(gpu, broken, bufs), Infinity);
  } finally {
    for (const b of bufs) b.destroy();
  }
});

gpuTest('a tuned program picks its kernels at the first run and computes what float64 does', async () => {
  const base = await openGpu();
  const gpu: Gpu = { ...base, tune: true };
  const tuner = new Tuner(gpu, undefined, false);
  setTuner(gpu, tuner);
  try {
    const p = problem(gpu);
    const spec = gemmKernel(p);
    const keys = [spec.key, ...spec.variants!().map((v) => v.key)];
    const rand = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s));
    const data = { a: rand(2 * 40 * 32, 1), b: rand(32 * 48, 2), bias: rand(48, 3) };
    const prog = new Program(gpu);
    const out = prog.output('out', 2 * 40 * 48);
    prog.step(spec, [prog.input('a', data.a), prog.input('b', data.b), prog.input('bias', data.bias), out]);
    const { outputs } = await prog.run();
    assert.is(tuner.stats.problems, 1);
    assert.is(tuner.stats.timed, keys.length);
    const ref = gemmReference(p, data);
    const worst = Math.max(...ref.map((r, i) => Math.abs(r - outputs.out[i])));
    assert.ok(worst < 1e-4, `max error ${worst}`);
    await prog.run();
    assert.is(tuner.stats.problems, 1, 'tuned once');
    prog.release();
  } finally {
    setTuner(base, new Tuner(base));
  }
});

test.run();
