// Waiting for Dawn without starving a software adapter.
//
// While a Dawn promise is pending, dawn.node polls its event queue from a `setImmediate` loop, so
// the Node main thread runs flat out for the whole wait. On a software adapter (lavapipe) the GPU
// work runs on worker threads that share the same cores: measured on 2 cores, a 1024^3 GEMM took
// 110-160 ms per run with a plain await and 72 ms when the loop polled once a millisecond.
// dawn.node looks `setImmediate` up on the global object at every poll, so during a wait the
// global is replaced by one that keeps the tight loop for the first SPIN_MS (short waits keep
// their latency) and then polls every POLL_MS with a timer. Waits may overlap; the original is
// restored when the last one ends. Node's own modules do not go through the global, and other code
// that calls it during a wait is delayed by at most POLL_MS.

import { promisify } from 'node:util';

/** Keep Dawn's tight polling loop this long (ms) at the start of a wait, then poll every POLL_MS. */
const SPIN_MS = 1;
const POLL_MS = 1;

type Immediate = typeof globalThis.setImmediate;

const realSetImmediate: Immediate = globalThis.setImmediate;
let active = 0;
let startedAt = 0;

function throttled(callback: (...args: unknown[]) => void, ...args: unknown[]) {
  if (performance.now() - startedAt < SPIN_MS) return realSetImmediate(callback, ...args);
  return setTimeout(callback, POLL_MS, ...args);
}
// util.promisify(setImmediate) keeps working during a wait.
Object.defineProperty(throttled, promisify.custom, { value: (realSetImmediate as unknown as Record<symbol, unknown>)[promisify.custom] });

/**
 * Awaits `work()` (a Dawn promise: onSubmittedWorkDone, mapAsync, popErrorScope...), polling
 * Dawn's events gently when `gentle` holds (pass `gpu.software`); a plain await otherwise.
 */
export async function gpuWait<T>(gentle: boolean, work: () => Promise<T>): Promise<T> {
  if (!gentle) return await work();
  if (active++ === 0) {
    startedAt = performance.now();
    globalThis.setImmediate = throttled as unknown as Immediate;
  }
  try {
    return await work();
  } finally {
    if (--active === 0) globalThis.setImmediate = realSetImmediate;
  }
}

/** Whether a wait is in progress (for tests). */
export const waiting = (): boolean => active > 0;
