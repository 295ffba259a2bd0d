// Waiting for Dawn without starving a software adapter.
//
// While a Dawn promise is pending, dawn.node polls its event queue from a `setImmediate` loop, so
// the Node main thread runs flat out for the whole wait. On a software adapter (lavapipe) the GPU
// work runs on worker threads that share the same cores: measured on 2 cores, a 1024^3 GEMM took
// 110-160 ms per run with a plain await and 72 ms when the loop polled once a millisecond.
// dawn.node looks `setImmediate` up on the global object at every poll, so during a wait the
// global is replaced by one that keeps the tight loop for the first `spinMs` (short waits keep
// their latency) and then polls every `pollMs` with a timer. Waits may overlap; the original is
// restored when the last one ends. Node's own modules do not go through the global, and other code
// that calls it during a wait is delayed by at most `pollMs`.

import { promisify } from 'node:util';

export interface WaitPolicy {
  /** keep Dawn's tight polling loop this long (ms) before backing off */
  spinMs: number;
  /** then poll this often (ms) */
  pollMs: number;
}

/** For software adapters: back off after 1 ms, then poll every millisecond (~1% latency at 100 ms). */
export const SOFTWARE_WAIT: WaitPolicy = { spinMs: 1, pollMs: 1 };

type Immediate = typeof globalThis.setImmediate;

let active = 0;
let original: Immediate | undefined;
let startedAt = 0;
let policy: WaitPolicy = SOFTWARE_WAIT;

function throttled(this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
  const real = original ?? globalThis.setImmediate;
  if (performance.now() - startedAt < policy.spinMs) return real(callback, ...args);
  return setTimeout(callback, policy.pollMs, ...args);
}

/**
 * Awaits `work()` (a Dawn promise: onSubmittedWorkDone, mapAsync, popErrorScope...), polling
 * Dawn's events gently when `gentle` holds (pass `gpu.software`); a plain await otherwise.
 */
export async function gpuWait<T>(gentle: boolean, work: () => Promise<T>, how: WaitPolicy = SOFTWARE_WAIT): Promise<T> {
  if (!gentle) return await work();
  if (active++ === 0) {
    original = globalThis.setImmediate;
    startedAt = performance.now();
    policy = how;
    // util.promisify(setImmediate) keeps working during a wait.
    Object.defineProperty(throttled, promisify.custom, { value: (original as unknown as Record<symbol, unknown>)[promisify.custom], configurable: true });
    globalThis.setImmediate = throttled as unknown as Immediate;
  }
  try {
    return await work();
  } finally {
    if (--active === 0) {
      globalThis.setImmediate = original!;
      original = undefined;
    }
  }
}

/** Whether a wait is in progress (for tests). */
export const waiting = (): boolean => active > 0;
