// Tuning at first use. A kernel that offers variants (KernelSpec.variants: other tilings of one
// GEMM) is timed with each of them on scratch buffers the size of its bindings, and the fastest is
// kept for this adapter: in memory for the process and in the user cache on disk, so that later
// runs on the same adapter pay nothing. Every variant computes the same values; which one runs only
// changes the speed (and, for a GEMM with a layer-norm prologue, the rounding of the row statistics).
import crypto from 'node:crypto';
import { readEntry, writeEntry } from '../compiler/frontend/user-cache.ts';
import type { KernelSpec } from '../codegen/kernels/kernel.ts';
import { pipelineFor, type Gpu } from './gpu.ts';
import { TimestampRecorder } from './profile.ts';
import { gpuWait } from './wait.ts';

/** Bumped whenever the kernels or the candidate lists change, so that old choices are not reused. */
const FORMAT = 'vdm-tuning-2';
const CACHE_SUB = 'tuning';
/** A variant replaces the default only when it takes less than this fraction of the default's time. */
const MARGIN = 0.97;

/**
 * Median time of one dispatch of `spec` (ms) with buffers bound as given; Infinity when it fails.
 * A first run slower than `cutoffMs` may be returned as it is (the variant has lost already).
 */
export type Measure = (spec: KernelSpec, buffers: GPUBuffer[], cutoffMs: number) => Promise<number>;

export interface TuningStats {
  /** kernels (distinct problems) whose choice was looked up */
  problems: number;
  /** of these, answered by the cache on disk */
  fromCache: number;
  /** variants timed */
  timed: number;
  /** problems where a variant beat the default */
  changed: number;
  /** wall time spent timing (ms) */
  ms: number;
}

/** The adapter as the cache knows it: what it is and what the kernels may use of it. */
export function adapterIdentity(gpu: Pick<Gpu, 'info' | 'features' | 'limits'>): string {
  const { vendor, architecture, device, description } = gpu.info;
  const limits = ['maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY']
    .map((k) => gpu.limits[k]);
  return JSON.stringify([FORMAT, vendor, architecture, device, description, [...gpu.features].sort(), limits]);
}

export class Tuner {
  readonly stats: TuningStats = { problems: 0, fromCache: 0, timed: 0, changed: 0, ms: 0 };
  private readonly cacheKey: string;
  private table: Record<string, string> | undefined;

  constructor(private readonly gpu: Gpu, private readonly measure: Measure = (s, b, c) => timeKernel(gpu, s, b, c), private readonly persist = true) {
    this.cacheKey = crypto.createHash('sha256').update(adapterIdentity(gpu)).digest('hex').slice(0, 32);
  }

  private load(): Record<string, string> {
    if (this.table) return this.table;
    this.table = {};
    const text = this.persist ? readEntry(CACHE_SUB, this.cacheKey) : null;
    if (text) {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') this.table[k] = v;
        }
      } catch { /* a damaged entry is retuned */ }
    }
    return this.table;
  }

  /**
   * The fastest of `spec` and its variants, timed on fresh buffers of `byteLengths` (one per binding)
   * unless this adapter's choice is known.
   */
  async choose(spec: KernelSpec, byteLengths: readonly number[]): Promise<KernelSpec> {
    const variants = spec.variants?.() ?? [];
    if (variants.length === 0) return spec;
    const all = [spec, ...variants];
    const table = this.load();
    this.stats.problems++;
    const known = table[spec.key] !== undefined ? all.find((v) => v.key === table[spec.key]) : undefined;
    if (known) {
      this.stats.fromCache++;
      if (known !== spec) this.stats.changed++;
      return known;
    }
    const t0 = performance.now();
    const buffers = byteLengths.map((n, i) => randomBuffer(this.gpu, n, 17 + i));
    let best = spec, bestMs = Infinity;
    try {
      for (const v of all) {
        const ms = await this.measure(v, buffers, 3 * bestMs);
        this.stats.timed++;
        // the default keeps its place unless a variant is clearly faster (timings jitter by a few %)
        if (ms < (best === spec ? MARGIN : 1) * bestMs) { best = v; bestMs = ms; }
      }
    } finally {
      for (const b of buffers) b.destroy();
    }
    this.stats.ms += performance.now() - t0;
    if (best !== spec) this.stats.changed++;
    table[spec.key] = best.key;
    if (this.persist) writeEntry(CACHE_SUB, this.cacheKey, JSON.stringify(table));
    return best;
  }
}

const tuners = new WeakMap<GPUDevice, Tuner>();

/** The process's tuner for `gpu` (one per device, so its choices and statistics accumulate). */
export function tunerFor(gpu: Gpu): Tuner {
  let t = tuners.get(gpu.device);
  if (!t) { t = new Tuner(gpu); tuners.set(gpu.device, t); }
  return t;
}

/** What tuning has done on `gpu` in this process (zeros when nothing was tuned). */
export function tuningStats(gpu: Gpu): TuningStats {
  return { ...(tuners.get(gpu.device)?.stats ?? { problems: 0, fromCache: 0, timed: 0, changed: 0, ms: 0 }) };
}

/** Replaces the tuner of `gpu` (tests: an injected clock, no disk). */
export function setTuner(gpu: Gpu, tuner: Tuner): void {
  tuners.set(gpu.device, tuner);
}

/** A storage buffer of `byteLength` bytes (rounded up to 16) holding values in [-1, 1). */
export function randomBuffer(gpu: Gpu, byteLength: number, seed: number): GPUBuffer {
  const size = Math.max(16, Math.ceil(byteLength / 16) * 16);
  const buf = gpu.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true, label: 'vdm tuning' });
  const f = new Float32Array(buf.getMappedRange());
  let s = seed >>> 0;
  for (let i = 0; i < f.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; f[i] = s / 2 ** 31 - 1; }
  buf.unmap();
  return buf;
}

/**
 * The median time of one dispatch: with timestamp queries, each of 9 dispatches in its own pass;
 * otherwise the wall time of 3 submits of enough dispatches to last ~5 ms each. A variant whose
 * pipeline or dispatch fails validation reads as Infinity (never chosen); one whose first run
 * (compilation excluded) is slower than `cutoffMs` is not timed further.
 */
export async function timeKernel(gpu: Gpu, spec: KernelSpec, buffers: GPUBuffer[], cutoffMs = Infinity): Promise<number> {
  const { device } = gpu;
  const wait = <T>(p: () => Promise<T>) => gpuWait(gpu.software, p);
  device.pushErrorScope('validation');
  let pipe: GPUComputePipeline | undefined, group: GPUBindGroup | undefined;
  try {
    pipe = pipelineFor(gpu, spec);
    group = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
  } catch {
    pipe = undefined;
  }
  const run = (n: number, recorder?: TimestampRecorder, readout?: GPUBuffer) => {
    const enc = device.createCommandEncoder({ label: 'vdm tuning' });
    let shared: GPUComputePassEncoder | undefined;
    for (let i = 0; i < n; i++) {
      const pass = recorder ? enc.beginComputePass({ timestampWrites: recorder.writesFor(i) }) : (shared ??= enc.beginComputePass());
      pass.setPipeline(pipe!);
      pass.setBindGroup(0, group!);
      pass.dispatchWorkgroups(...spec.dispatch);
      if (recorder) pass.end();
    }
    shared?.end();
    if (recorder) recorder.encodeReadout(enc, readout!, 0);
    device.queue.submit([enc.finish()]);
  };
  if (pipe) {
    const t0 = performance.now();
    run(1);
    await wait(() => device.queue.onSubmittedWorkDone());
    const first = performance.now() - t0;
    if (await wait(() => device.popErrorScope())) return Infinity;
    if (first > cutoffMs) return first;
    if (gpu.features.has('timestamp-query')) {
      const n = 9;
      const recorder = new TimestampRecorder(gpu, n);
      const readout = device.createBuffer({ size: recorder.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      try {
        run(n, recorder, readout);
        await wait(() => readout.mapAsync(GPUMapMode.READ));
        const ms = TimestampRecorder.durations(readout.getMappedRange().slice(0), n).sort((a, b) => a - b);
        readout.unmap();
        if (ms[n >> 1] > 0) return ms[n >> 1];
      } finally {
        recorder.destroy();
        readout.destroy();
      }
    }
    const n = Math.max(1, Math.min(100, Math.ceil(5 / Math.max(first, 1e-3))));
    const times: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t1 = performance.now();
      run(n);
      await wait(() => device.queue.onSubmittedWorkDone());
      times.push((performance.now() - t1) / n);
    }
    return times.sort((a, b) => a - b)[1];
  }
  await wait(() => device.popErrorScope());
  return Infinity;
}
