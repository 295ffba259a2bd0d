// Per-dispatch GPU timing with timestamp queries: each profiled dispatch gets its own compute pass
// whose timestampWrites record the pass's begin and end; the resolved nanosecond pairs give its duration.
import type { Gpu } from './gpu.ts';

export interface DispatchTiming {
  /** step label (defaults to the kernel key) */
  label: string;
  key: string;
  ms: number;
}

export interface KernelTiming {
  key: string;
  calls: number;
  totalMs: number;
  meanMs: number;
}

/** A query set holds at most 4096 queries (2048 dispatches); longer programs use several. */
const QUERIES_PER_SET = 4096;

export class TimestampRecorder {
  private readonly sets: GPUQuerySet[] = [];
  private readonly resolve: GPUBuffer;
  readonly byteLength: number;

  constructor(gpu: Gpu, readonly dispatches: number) {
    if (!gpu.features.has('timestamp-query')) throw new Error('profiling needs the timestamp-query feature, which this adapter lacks');
    const queries = dispatches * 2;
    for (let q = 0; q < queries; q += QUERIES_PER_SET) {
      this.sets.push(gpu.device.createQuerySet({ type: 'timestamp', count: Math.min(QUERIES_PER_SET, queries - q) }));
    }
    this.byteLength = queries * 8;
    this.resolve = gpu.device.createBuffer({
      size: Math.max(8, this.byteLength), usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** timestampWrites for dispatch number `i` of the run */
  writesFor(i: number): GPUComputePassTimestampWrites {
    const q = i * 2;
    const local = q % QUERIES_PER_SET;
    return { querySet: this.sets[Math.floor(q / QUERIES_PER_SET)], beginningOfPassWriteIndex: local, endOfPassWriteIndex: local + 1 };
  }

  /** Records resolve + copy of every timestamp into `dst` at `dstOffset`. */
  encodeReadout(enc: GPUCommandEncoder, dst: GPUBuffer, dstOffset: number): void {
    this.sets.forEach((set, s) => enc.resolveQuerySet(set, 0, set.count, this.resolve, s * QUERIES_PER_SET * 8));
    enc.copyBufferToBuffer(this.resolve, 0, dst, dstOffset, this.byteLength);
  }

  /** Durations in ms from the mapped timestamp bytes; negative spans (clock resets) read as 0. */
  static durations(bytes: ArrayBuffer, dispatches: number): number[] {
    const t = new BigUint64Array(bytes, 0, dispatches * 2);
    const out: number[] = [];
    for (let i = 0; i < dispatches; i++) {
      const ns = t[2 * i + 1] - t[2 * i];
      out.push(ns > 0n ? Number(ns) / 1e6 : 0);
    }
    return out;
  }

  destroy(): void {
    for (const s of this.sets) s.destroy();
    this.resolve.destroy();
  }
}

/** Groups per-dispatch timings by kernel, slowest total first. */
export function summarizeByKernel(timings: DispatchTiming[]): KernelTiming[] {
  const byKey = new Map<string, KernelTiming>();
  for (const t of timings) {
    const k = byKey.get(t.key) ?? { key: t.key, calls: 0, totalMs: 0, meanMs: 0 };
    k.calls++;
    k.totalMs += t.ms;
    byKey.set(t.key, k);
  }
  const out = [...byKey.values()];
  for (const k of out) k.meanMs = k.totalMs / k.calls;
  return out.sort((a, b) => b.totalMs - a.totalMs);
}
