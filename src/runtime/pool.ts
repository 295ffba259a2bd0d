// Buffers grouped by size class and reused: creating and destroying GPU buffers per step costs
// driver calls and fragments memory, while a training loop asks for the same sizes every step.
import type { Gpu } from './gpu.ts';
import { checkTensorFits } from './limits.ts';

/** Every pooled buffer can be bound as storage or uniform and copied both ways. */
export const POOL_USAGE = (): number =>
  GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

const MIN_CLASS = 256;

/**
 * Rounds up to one of 2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k (at least 256 bytes): at most 25% slack,
 * few enough classes that similar tensors share buffers. Clamped to `cap` so rounding alone never
 * pushes a tensor that fits over the adapter's limit.
 */
export function sizeClass(bytes: number, cap = Infinity): number {
  if (bytes <= MIN_CLASS) return MIN_CLASS;
  const pow = 2 ** Math.floor(Math.log2(bytes));
  const step = Math.max(pow / 4, 4);
  const rounded = Math.ceil(bytes / step) * step;
  return Math.max(Math.ceil(bytes / 4) * 4, Math.min(rounded, Math.floor(cap / 4) * 4));
}

export interface PoolStats {
  /** buffers created by the pool */
  created: number;
  /** acquisitions served from released buffers */
  reused: number;
  /** buffers handed out and not yet released */
  inUse: number;
  /** bytes held in free lists */
  freeBytes: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly out = new Set<GPUBuffer>();
  readonly stats: PoolStats = { created: 0, reused: 0, inUse: 0, freeBytes: 0 };

  constructor(readonly gpu: Gpu) {}

  /**
   * A buffer of at least `bytes` bytes for tensor `name`. Checks the adapter's limits first,
   * so an oversized tensor fails with TensorTooLargeError before anything is allocated. `exact`:
   * the size itself (16-byte multiple) instead of its size class.
   */
  acquire(name: string, bytes: number, exact = false): GPUBuffer {
    checkTensorFits(this.gpu.limits, name, bytes, 'storage');
    const size = exact ? Math.max(MIN_CLASS, Math.ceil(bytes / 16) * 16) : sizeClass(bytes, Math.min(this.gpu.limits.maxBufferSize, this.gpu.limits.maxStorageBufferBindingSize));
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
      this.stats.reused++;
      this.stats.freeBytes -= size;
    } else {
      buf = this.gpu.device.createBuffer({ size, usage: POOL_USAGE(), label: name });
      this.stats.created++;
    }
    this.out.add(buf);
    this.stats.inUse = this.out.size;
    return buf;
  }

  /** Returns a buffer for reuse. The caller must not use it afterwards. */
  release(buf: GPUBuffer): void {
    if (!this.out.delete(buf)) throw new Error('BufferPool.release: buffer was not acquired from this pool (or released twice)');
    const list = this.free.get(buf.size) ?? [];
    list.push(buf);
    this.free.set(buf.size, list);
    this.stats.inUse = this.out.size;
    this.stats.freeBytes += buf.size;
  }

  /** Destroys the free buffers (memory goes back to the driver); buffers in use are untouched. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.freeBytes = 0;
  }
}

const pools = new WeakMap<GPUDevice, BufferPool>();

/** The shared pool of a device. */
export function poolFor(gpu: Gpu): BufferPool {
  let p = pools.get(gpu.device);
  if (!p) { p = new BufferPool(gpu); pools.set(gpu.device, p); }
  return p;
}
