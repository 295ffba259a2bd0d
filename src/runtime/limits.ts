// Size checks made before any allocation: WebGPU reports an oversized buffer as an asynchronous
// validation error far from its cause, and some drivers abort the process instead.

export interface BufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxUniformBufferBindingSize: number;
}

export class TensorTooLargeError extends Error {
  override name = 'TensorTooLargeError';
  constructor(
    readonly tensor: string,
    readonly bytes: number,
    readonly limit: number,
    readonly limitName: string,
  ) {
    super(
      `tensor '${tensor}' needs ${formatBytes(bytes)} (${bytes} bytes) but this adapter's ${limitName} is ` +
      `${formatBytes(limit)} (${limit} bytes). Reduce the batch size, the frame count or resolution, ` +
      `or the channel/hidden dims so that this tensor fits, or split it across several buffers.`);
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export type BindingUse = 'storage' | 'uniform' | 'none';

/** Throws TensorTooLargeError when a tensor of `bytes` cannot be a buffer (or binding) on this adapter. */
export function checkTensorFits(limits: BufferLimits, tensor: string, bytes: number, use: BindingUse = 'storage'): void {
  if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`tensor '${tensor}': invalid byte size ${bytes}`);
  if (bytes > limits.maxBufferSize) throw new TensorTooLargeError(tensor, bytes, limits.maxBufferSize, 'maxBufferSize');
  if (use === 'storage' && bytes > limits.maxStorageBufferBindingSize) {
    throw new TensorTooLargeError(tensor, bytes, limits.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize');
  }
  if (use === 'uniform' && bytes > limits.maxUniformBufferBindingSize) {
    throw new TensorTooLargeError(tensor, bytes, limits.maxUniformBufferBindingSize, 'maxUniformBufferBindingSize');
  }
}
