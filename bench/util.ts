// Shared pieces of the benchmark: deterministic inputs, batch timing, result comparison.

/** Deterministic uniform values in [-scale, scale): both sides see the same inputs on every run. */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export interface Timing {
  /** milliseconds per iteration */
  ms: number;
  iterations: number;
}

/**
 * `batch(n)` runs n iterations with one submit and one wait and returns elapsed ms.
 * One warm-up batch (pipeline compilation happens there), one probe iteration to size
 * the timed batch to about `targetMs` (skipped when the warm-up alone took that long), then the timed batch.
 */
export async function timeBatches(batch: (n: number) => Promise<number>, targetMs: number, maxIterations = 50): Promise<Timing> {
  const warm = await batch(1);
  // A warm-up already past the target (compilation included) makes a probe pointless: time 2.
  const probe = warm >= targetMs ? targetMs : await batch(1);
  const iterations = Math.max(2, Math.min(maxIterations, Math.round(targetMs / Math.max(probe, 0.01))));
  const ms = (await batch(iterations)) / iterations;
  return { ms, iterations };
}

/** Largest |a - b| relative to the largest |b|: one number that says whether two results agree. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return diff / Math.max(mag, 1e-30);
}

export const gflops = (flops: number, ms: number): number => flops / (ms * 1e6);
