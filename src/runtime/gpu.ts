// The process-wide WebGPU device and the low-level operations on it: pipelines (one per
// distinct kernel), uploads, readbacks, batched dispatches. Program (program.ts) builds on these.
import type { KernelSpec } from '../codegen/kernels/kernel.ts';
import { acquireAdapter, adapterModeFromEnv, loadDawn, NoAdapterError, tuneFromEnv, type AdapterMode } from './adapter.ts';
import { checkTensorFits } from './limits.ts';
import { gpuWait } from './wait.ts';

export { NoAdapterError };

/** Limits the runtime reads; snapshot of the device's (= the adapter's real) limits. */
export interface GpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxUniformBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupSizeZ: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  [name: string]: number;
}

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: GPUAdapterInfo;
  /** features enabled on the device (a subset of WANTED_FEATURES) */
  features: Set<string>;
  limits: GpuLimits;
  /** true for software adapters (lavapipe/llvmpipe, SwiftShader) */
  software: boolean;
  /** kernels offer variants, timed at first use (runtime/tuning.ts); VDM_TUNE, default: hardware only */
  tune: boolean;
}

// 'subgroups' is newer than some @webgpu/types releases, hence the cast.
export const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[];

function limitsRecord(source: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  // Dawn exposes limits as prototype getters, which for-in visits.
  for (const k in source) {
    const v = (source as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') out[k] = v;
  }
  return out;
}

/** Opens a device on an adapter from `gpu` with every wanted feature it has and all its real limits. */
export async function openDevice(gpu: Pick<GPU, 'requestAdapter'>, mode: AdapterMode = 'auto'): Promise<Gpu> {
  const { adapter, software } = await acquireAdapter(gpu, mode);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const adapterLimits = limitsRecord(adapter.limits);
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits: adapterLimits });
  } catch {
    // An implementation may list a limit it refuses as a requirement: fall back to the ones compute needs.
    const computeKeys = ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
      'maxComputeWorkgroupSizeZ', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension'];
    const requiredLimits = Object.fromEntries(computeKeys.map((k) => [k, adapterLimits[k]]));
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  }
  return {
    device, adapter, info: adapter.info, features: new Set(requiredFeatures),
    limits: limitsRecord(device.limits) as GpuLimits, software, tune: tuneFromEnv(software),
  };
}

let devicePromise: Promise<Gpu> | undefined;

/**
 * The process-wide GPU (VDM_ADAPTER selects auto/hardware/software/none).
 * Throws NoAdapterError with an actionable message when no adapter exists.
 */
export function openGpu(): Promise<Gpu> {
  devicePromise ??= (async () => {
    const gpu = await openDevice(loadDawn(), adapterModeFromEnv());
    void gpu.device.lost.then((info) => {
      devicePromise = undefined; // the next openGpu() starts afresh
      if (info.reason !== 'destroyed') process.stderr.write(`vdm: the GPU device was lost: ${info.message}\n`);
    });
    return gpu;
  })();
  devicePromise.catch(() => { devicePromise = undefined; });
  return devicePromise;
}

const pipelineCaches = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/** Throws a clear error when `spec` cannot run on this device (features, dispatch size, bindings). */
export function checkKernel(gpu: Gpu, spec: KernelSpec): void {
  const missing = (spec.features ?? []).filter((f) => !gpu.features.has(f));
  if (missing.length) {
    throw new Error(`kernel ${spec.key} needs the WebGPU feature(s) ${missing.join(', ')}, which this adapter lacks`);
  }
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (spec.dispatch.some((d) => !Number.isInteger(d) || d < 0 || d > max)) {
    throw new Error(`kernel ${spec.key}: dispatch [${spec.dispatch.join(', ')}] must be integers in 0..${max} (maxComputeWorkgroupsPerDimension)`);
  }
  const storage = spec.bindings.filter((b) => b.access !== 'uniform').length;
  if (storage > gpu.limits.maxStorageBuffersPerShaderStage) {
    throw new Error(`kernel ${spec.key} binds ${storage} storage buffers; this adapter allows ${gpu.limits.maxStorageBuffersPerShaderStage}`);
  }
}

/** One pipeline per distinct kernel per device, keyed by KernelSpec.key. */
export function pipelineFor(gpu: Gpu, spec: KernelSpec): GPUComputePipeline {
  let cache = pipelineCaches.get(gpu.device);
  if (!cache) { cache = new Map(); pipelineCaches.set(gpu.device, cache); }
  let p = cache.get(spec.key);
  if (!p) {
    checkKernel(gpu, spec);
    const module = gpu.device.createShaderModule({ code: spec.wgsl, label: spec.key });
    p = gpu.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: spec.entryPoint }, label: spec.key });
    cache.set(spec.key, p);
  }
  return p;
}

/** Number of distinct pipelines compiled on this device (for tests and diagnostics). */
export function pipelineCount(gpu: Gpu): number {
  return pipelineCaches.get(gpu.device)?.size ?? 0;
}

export type HostArray = Float32Array | Int32Array | Uint32Array;

export function upload(gpu: Gpu, data: HostArray, usage = GPUBufferUsage.STORAGE, name = 'upload'): GPUBuffer {
  checkTensorFits(gpu.limits, name, data.byteLength, usage & GPUBufferUsage.UNIFORM ? 'uniform' : 'storage');
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buf = gpu.device.createBuffer({ size, usage: usage | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: true, label: name });
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
  await gpuWait(gpu.software, () => staging.mapAsync(GPUMapMode.READ));
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
