// Opens the WebGPU adapter through Dawn (the `webgpu` package) and runs KernelSpecs.
// Minimal core: later layers add pooling, batching and profiling on top of this API.
import { createRequire } from 'node:module';
import type { KernelSpec } from '../codegen/kernel.ts';

export class NoAdapterError extends Error {}

// dawn.node crashes or hangs when the object returned by create() is garbage-collected,
// so it is held here for the life of the process.
let dawnGpu: GPU | undefined;
let devicePromise: Promise<Gpu> | undefined;

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: GPUAdapterInfo;
  features: Set<string>;
}

async function loadDawn(): Promise<GPU> {
  if (dawnGpu) return dawnGpu;
  const require = createRequire(import.meta.url);
  const { create, globals } = require('webgpu') as { create(opts: string[]): GPU; globals: object };
  Object.assign(globalThis, globals);
  dawnGpu = create([]);
  (globalThis as Record<string, unknown>).__vdmDawn = dawnGpu;
  return dawnGpu;
}

/** The process-wide GPU. Throws NoAdapterError with an actionable message when none exists. */
export function openGpu(): Promise<Gpu> {
  devicePromise ??= (async () => {
    const gpu = await loadDawn();
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new NoAdapterError(
        'no WebGPU adapter found. On Debian/Ubuntu as root, `bash scripts/install-gpu.sh` installs ' +
        'Mesa lavapipe (a software adapter); elsewhere install a Vulkan driver. `vdm doctor` checks again.');
    }
    const wanted: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
    const requiredLimits: Record<string, number> = {};
    for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
      'maxComputeWorkgroupSizeZ', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension'] as const) {
      requiredLimits[k] = adapter.limits[k];
    }
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    return { device, adapter, info: adapter.info, features: new Set(requiredFeatures) };
  })();
  return devicePromise;
}

const pipelines = new Map<string, GPUComputePipeline>();

export function pipelineFor(gpu: Gpu, spec: KernelSpec): GPUComputePipeline {
  let p = pipelines.get(spec.key);
  if (!p) {
    const module = gpu.device.createShaderModule({ code: spec.wgsl, label: spec.key });
    p = gpu.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: spec.entryPoint }, label: spec.key });
    pipelines.set(spec.key, p);
  }
  return p;
}

export type HostArray = Float32Array | Int32Array | Uint32Array;

export function upload(gpu: Gpu, data: HostArray, usage = GPUBufferUsage.STORAGE): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buf = gpu.device.createBuffer({ size, usage: usage | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buf.unmap();
  return buf;
}

export async function readback(gpu: Gpu, buf: GPUBuffer, byteLength: number): Promise<ArrayBuffer> {
  const size = Math.ceil(byteLength / 4) * 4;
  const staging = gpu.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = gpu.device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, staging, 0, size);
  gpu.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0, byteLength);
  staging.unmap();
  staging.destroy();
  return out;
}

/** Records one dispatch per (spec, buffers) pair into a single encoder and submits once. */
export function dispatchAll(gpu: Gpu, steps: { spec: KernelSpec; buffers: GPUBuffer[] }[]): void {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const { spec, buffers } of steps) {
    const pipeline = pipelineFor(gpu, spec);
    const bindGroup = gpu.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...spec.dispatch);
  }
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}

/**
 * One-shot helper for tests: uploads inputs, poisons outputs with NaN (so an unwritten element
 * fails a comparison), runs the kernel and reads the outputs back as Float32Arrays.
 * `args` follow spec.bindings order; a number is the element count of an output.
 */
export async function runKernel(spec: KernelSpec, args: (HostArray | number)[]): Promise<Float32Array[]> {
  const gpu = await openGpu();
  const buffers: GPUBuffer[] = [];
  const outputs: { buf: GPUBuffer; n: number }[] = [];
  spec.bindings.forEach((b, i) => {
    const a = args[i];
    if (typeof a === 'number') {
      const buf = upload(gpu, new Float32Array(a).fill(NaN));
      buffers.push(buf);
      outputs.push({ buf, n: a });
    } else {
      buffers.push(upload(gpu, a, b.access === 'uniform' ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE));
    }
  });
  gpu.device.pushErrorScope('validation');
  dispatchAll(gpu, [{ spec, buffers }]);
  const err = await gpu.device.popErrorScope();
  if (err) throw new Error(`kernel ${spec.key}: ${err.message}`);
  const result = await Promise.all(outputs.map(async ({ buf, n }) => new Float32Array(await readback(gpu, buf, n * 4))));
  for (const b of buffers) b.destroy();
  return result;
}
