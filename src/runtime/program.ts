// A Program is a fixed sequence of kernel dispatches over named tensors. run() records the whole
// sequence (optionally repeated) into one command encoder, submits once and waits once (wait.ts):
// every wait costs a round of Dawn event polling, so per-kernel waits would dominate small kernels.
import type { KernelSpec } from '../codegen/kernels/kernel.ts';
import { checkKernel, type Gpu, type HostArray, pipelineFor } from './gpu.ts';
import { checkTensorFits } from './limits.ts';
import { type BufferPool, poolFor } from './pool.ts';
import { type DispatchTiming, TimestampRecorder } from './profile.ts';
import { tunerFor } from './tuning.ts';
import { gpuWait } from './wait.ts';

export type TensorDtype = 'f32' | 'i32' | 'u32';
export type TensorRole = 'input' | 'output' | 'scratch';

export interface Tensor {
  readonly name: string;
  readonly dtype: TensorDtype;
  readonly elements: number;
  readonly byteLength: number;
  /** where the tensor starts in `buffer`: 0, or its place in an arena (see Program.part) */
  readonly byteOffset: number;
  readonly role: TensorRole;
  readonly buffer: GPUBuffer;
}

export interface Step {
  spec: KernelSpec;
  tensors: Tensor[];
  label: string;
  bindGroup?: GPUBindGroup;
}

export interface RunOptions {
  /** record the sequence this many times (benchmarks: one submit for many iterations) */
  repeat?: number;
  /** time each dispatch with timestamp queries; needs the timestamp-query feature */
  profile?: boolean;
  /** read outputs back (default true) */
  read?: boolean;
}

export interface RunResult {
  /** output name -> contents (Float32Array for f32, Int32Array / Uint32Array otherwise) */
  outputs: Record<string, HostArray>;
  /** one entry per dispatch, in recording order, when profiling */
  timings?: DispatchTiming[];
  /** host wall time from submit to results mapped */
  wallMs: number;
}

const BYTES: Record<TensorDtype, number> = { f32: 4, i32: 4, u32: 4 };

function dtypeOf(data: HostArray): TensorDtype {
  return data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : 'u32';
}

export class Program {
  private readonly tensors: Tensor[] = [];
  private readonly steps: Step[] = [];
  private readonly parts = new Set<Tensor>();
  private staging?: GPUBuffer;
  private released = false;
  private running = false;
  private tuned = false;

  /**
   * `exactSizes`: buffers of the tensors' own sizes rather than the pool's size classes, for a
   * program that lives for a whole run (a trainer): its footprint is then what the memory plan says.
   */
  constructor(readonly gpu: Gpu, readonly pool: BufferPool = poolFor(gpu), readonly exactSizes = false) {}

  private add(name: string, dtype: TensorDtype, elements: number, role: TensorRole): Tensor {
    if (this.released) throw new Error('Program: used after release()');
    if (this.tensors.some((t) => t.name === name)) throw new Error(`Program: tensor '${name}' defined twice`);
    if (!Number.isInteger(elements) || elements <= 0) throw new Error(`Program: tensor '${name}' needs a positive element count, got ${elements}`);
    const byteLength = elements * BYTES[dtype];
    const t: Tensor = { name, dtype, elements, byteLength, byteOffset: 0, role, buffer: this.pool.acquire(name, byteLength, this.exactSizes) };
    this.tensors.push(t);
    return t;
  }

  /** A tensor initialised from host data (weights, activations fed in). */
  input(name: string, data: HostArray): Tensor {
    const t = this.add(name, dtypeOf(data), data.length, 'input');
    this.write(t, data);
    return t;
  }

  /** A tensor read back by run(). */
  output(name: string, elements: number, dtype: TensorDtype = 'f32'): Tensor {
    return this.add(name, dtype, elements, 'output');
  }

  /** An intermediate tensor that stays on the GPU. */
  scratch(name: string, elements: number, dtype: TensorDtype = 'f32'): Tensor {
    return this.add(name, dtype, elements, 'scratch');
  }

  /**
   * A tensor over `elements` elements of `arena` from element `offset` on: kernels bind it as a buffer
   * of its own, while one kernel can still sweep the whole arena (the optimizer over all parameters).
   * The offset must meet the adapter's storage offset alignment (256 bytes: 64 elements).
   */
  part(name: string, arena: Tensor, offset: number, elements: number): Tensor {
    if (this.released) throw new Error('Program: used after release()');
    if (this.tensors.some((t) => t.name === name)) throw new Error(`Program: tensor '${name}' defined twice`);
    const byteOffset = arena.byteOffset + offset * BYTES[arena.dtype];
    const align = this.gpu.limits.minStorageBufferOffsetAlignment;
    if (!Number.isInteger(offset) || offset < 0 || byteOffset % align !== 0) throw new Error(`Program: part '${name}' starts at byte ${byteOffset}, not a multiple of ${align}`);
    if (!Number.isInteger(elements) || elements <= 0 || offset + elements > arena.elements) throw new Error(`Program: part '${name}' [${offset}, ${offset + elements}) lies outside '${arena.name}' (${arena.elements} elements)`);
    const t: Tensor = { name, dtype: arena.dtype, elements, byteLength: elements * BYTES[arena.dtype], byteOffset, role: arena.role, buffer: arena.buffer };
    this.tensors.push(t);
    this.parts.add(t);
    return t;
  }

  /** Overwrites a tensor's contents (queued before the next submit). */
  write(t: Tensor, data: HostArray): void {
    if (data.length !== t.elements) throw new Error(`Program: tensor '${t.name}' has ${t.elements} elements, got ${data.length}`);
    this.gpu.device.queue.writeBuffer(t.buffer, t.byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Appends a dispatch of `spec`; `tensors` follow spec.bindings order. */
  step(spec: KernelSpec, tensors: Tensor[], label = spec.key): this {
    if (tensors.length !== spec.bindings.length) {
      throw new Error(`step ${label}: kernel has ${spec.bindings.length} bindings (${spec.bindings.map((b) => b.name).join(', ')}) but ${tensors.length} tensors were given`);
    }
    checkKernel(this.gpu, spec);
    spec.bindings.forEach((b, i) => {
      const t = tensors[i];
      if (!this.tensors.includes(t)) throw new Error(`step ${label}: tensor '${t?.name}' for binding '${b.name}' belongs to another program`);
      checkTensorFits(this.gpu.limits, t.name, t.byteLength, b.access === 'uniform' ? 'uniform' : 'storage');
      // WebGPU forbids a buffer that one binding writes from being bound again in the same dispatch.
      if (tensors.indexOf(t) !== i && spec.bindings.some((c, j) => tensors[j] === t && c.access === 'read_write')) {
        throw new Error(`step ${label}: tensor '${t.name}' is bound twice in one dispatch and written; give the output its own tensor`);
      }
      // WebGPU tracks usage per buffer, not per range: parts of one arena count as one buffer
      // (parts that are all written, or all read, are one usage and may share a dispatch)
      const other = tensors.find((u, j) => j !== i && u !== t && u.buffer === t.buffer && (spec.bindings[j].access === 'read_write') !== (b.access === 'read_write'));
      if (other) {
        throw new Error(`step ${label}: '${t.name}' and '${other.name}' are parts of the same buffer, one read and one written; a dispatch may not read one part of an arena while it writes another`);
      }
    });
    this.steps.push({ spec, tensors, label });
    return this;
  }

  /** Bytes of device memory this program's buffers occupy (each buffer once, at its allocated size). */
  get deviceBytes(): number {
    return [...new Set(this.tensors.map((t) => t.buffer))].reduce((n, b) => n + b.size, 0);
  }

  get dispatchCount(): number {
    return this.steps.length;
  }

  private bindGroupOf(step: Step): GPUBindGroup {
    step.bindGroup ??= this.gpu.device.createBindGroup({
      label: step.label,
      layout: pipelineFor(this.gpu, step.spec).getBindGroupLayout(0),
      // Bind exactly the tensor (rounded to 16 bytes), not the larger pooled buffer, so arrayLength() is right.
      entries: step.tensors.map((t, binding) => ({
        binding, resource: { buffer: t.buffer, offset: t.byteOffset, size: Math.min(t.buffer.size - t.byteOffset, Math.ceil(t.byteLength / 16) * 16) },
      })),
    });
    return step.bindGroup;
  }

  /** Records every step (× repeat) in one encoder, submits once, waits once, returns the outputs. */
  async run(opts: RunOptions = {}): Promise<RunResult> {
    if (this.released) throw new Error('Program: run() after release()');
    if (this.running) throw new Error('Program: run() called while a previous run() is still pending');
    const repeat = opts.repeat ?? 1;
    if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`Program: repeat must be a positive integer, got ${repeat}`);
    const outputs = opts.read ?? true ? this.tensors.filter((t) => t.role === 'output') : [];
    const dispatches = this.steps.length * repeat;
    const recorder = opts.profile && dispatches > 0 ? new TimestampRecorder(this.gpu, dispatches) : undefined;
    this.running = true;
    try {
      if (this.gpu.tune && !this.tuned) await this.tune();
      // Every Dawn wait in the run (error scopes, the map) polls gently on a software adapter.
      return await gpuWait(this.gpu.software, () => this.submitAndRead(repeat, outputs, recorder));
    } finally {
      this.running = false;
      recorder?.destroy();
    }
  }

  /** Before the first run: each kernel that offers variants becomes the fastest of them on this adapter. */
  private async tune(): Promise<void> {
    this.tuned = true;
    const tuner = tunerFor(this.gpu);
    const chosen = new Map<string, KernelSpec>();
    for (const step of this.steps) {
      if (!step.spec.variants) continue;
      let c = chosen.get(step.spec.key);
      if (!c) {
        c = await tuner.choose(step.spec, step.tensors.map((t) => t.byteLength));
        chosen.set(step.spec.key, c);
      }
      if (c !== step.spec) { step.spec = c; step.bindGroup = undefined; }
    }
  }

  private async submitAndRead(repeat: number, outputs: Tensor[], recorder?: TimestampRecorder): Promise<RunResult> {
    const { device } = this.gpu;
    // One staging buffer gathers every output and the timestamps: a single map, a single wait.
    const offsets: number[] = [];
    let size = 0;
    for (const t of outputs) { offsets.push(size); size += Math.ceil(t.byteLength / 4) * 4; }
    const timestampOffset = Math.ceil(size / 8) * 8;
    if (recorder) size = timestampOffset + recorder.byteLength;
    const staging = size > 0 ? this.stagingOf(size) : undefined;

    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let t0 = 0;
    try {
      const enc = device.createCommandEncoder({ label: 'vdm program' });
      this.record(enc, repeat, recorder);
      outputs.forEach((t, k) => enc.copyBufferToBuffer(t.buffer, t.byteOffset, staging!, offsets[k], Math.ceil(t.byteLength / 4) * 4));
      if (recorder) recorder.encodeReadout(enc, staging!, timestampOffset);
      t0 = performance.now();
      device.queue.submit([enc.finish()]);
    } finally {
      const validation = await device.popErrorScope();
      const oom = await device.popErrorScope();
      if (validation || oom) throw new Error(`program run failed: ${(validation ?? oom)!.message}`);
    }

    const result: RunResult = { outputs: {}, wallMs: 0 };
    if (!staging) {
      await device.queue.onSubmittedWorkDone();
    } else {
      await staging.mapAsync(GPUMapMode.READ, 0, size);
      const mapped = staging.getMappedRange(0, size);
      outputs.forEach((t, k) => {
        const bytes = mapped.slice(offsets[k], offsets[k] + t.byteLength);
        result.outputs[t.name] = t.dtype === 'f32' ? new Float32Array(bytes) : t.dtype === 'i32' ? new Int32Array(bytes) : new Uint32Array(bytes);
      });
      if (recorder) {
        const ms = TimestampRecorder.durations(mapped.slice(timestampOffset, timestampOffset + recorder.byteLength), recorder.dispatches);
        result.timings = ms.map((m, d) => {
          const step = this.steps[d % this.steps.length];
          return { label: step.label, key: step.spec.key, ms: m };
        });
      }
      staging.unmap();
    }
    result.wallMs = performance.now() - t0;
    return result;
  }

  /** Profiled runs give each dispatch its own pass (timestamps are per pass); others share one. */
  private record(enc: GPUCommandEncoder, repeat: number, recorder?: TimestampRecorder): void {
    let i = 0;
    let shared: GPUComputePassEncoder | undefined;
    for (let r = 0; r < repeat; r++) {
      for (const step of this.steps) {
        const pass = recorder ? enc.beginComputePass({ timestampWrites: recorder.writesFor(i++) }) : (shared ??= enc.beginComputePass());
        pass.setPipeline(pipelineFor(this.gpu, step.spec));
        pass.setBindGroup(0, this.bindGroupOf(step));
        pass.dispatchWorkgroups(...step.spec.dispatch);
        if (recorder) pass.end();
      }
    }
    shared?.end();
  }

  private stagingOf(size: number): GPUBuffer {
    if (!this.staging || this.staging.size < size) {
      this.staging?.destroy();
      this.staging = this.gpu.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'vdm staging' });
    }
    return this.staging;
  }

  /** Reads tensors back now (after the runs submitted so far): checkpoints, occasional losses. */
  async read(tensors: readonly Tensor[]): Promise<HostArray[]> {
    if (this.released) throw new Error('Program: read() after release()');
    const { device } = this.gpu;
    const offsets: number[] = [];
    let size = 0;
    for (const t of tensors) { offsets.push(size); size += Math.ceil(t.byteLength / 4) * 4; }
    if (size === 0) return [];
    const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'vdm read' });
    try {
      const enc = device.createCommandEncoder({ label: 'vdm read' });
      tensors.forEach((t, k) => enc.copyBufferToBuffer(t.buffer, t.byteOffset, staging, offsets[k], Math.ceil(t.byteLength / 4) * 4));
      device.queue.submit([enc.finish()]);
      await gpuWait(this.gpu.software, () => staging.mapAsync(GPUMapMode.READ, 0, size));
      const mapped = staging.getMappedRange(0, size);
      return tensors.map((t, k) => {
        const bytes = mapped.slice(offsets[k], offsets[k] + t.byteLength);
        return t.dtype === 'f32' ? new Float32Array(bytes) : t.dtype === 'i32' ? new Int32Array(bytes) : new Uint32Array(bytes);
      });
    } finally {
      staging.destroy();
    }
  }

  /** Returns every tensor's buffer to the pool. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.tensors) if (!this.parts.has(t)) this.pool.release(t.buffer);
    this.staging?.destroy();
  }
}
