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
  /** milliseconds per iteration: the best of the timed batches */
  ms: number;
  /** the median of the timed batches, ms per iteration */
  medianMs: number;
  iterations: number;
  /** timed batches */
  trials: number;
}

/**
 * `batch(n)` runs n iterations with one submit and one wait and returns elapsed ms.
 * One warm-up batch (pipeline compilation happens there), one probe iteration to size
 * the timed batches to about `targetMs` each (skipped when the warm-up alone took that long), then
 * `trials` timed batches. A software adapter shares the CPU with everything else on the machine, and
 * what others take only ever adds time: the best batch is the steadiest estimate of the work itself.
 */
export async function timeBatches(batch: (n: number) => Promise<number>, targetMs: number, maxIterations = 50, trials = 5): Promise<Timing> {
  const warm = await batch(1);
  // A warm-up already past the target (compilation included) makes a probe pointless: time 2.
  const probe = warm >= targetMs ? targetMs : await batch(1);
  const iterations = Math.max(2, Math.min(maxIterations, Math.round(targetMs / Math.max(probe, 0.01))));
  const per: number[] = [];
  for (let t = 0; t < trials; t++) per.push((await batch(iterations)) / iterations);
  per.sort((a, b) => a - b);
  return { ms: per[0], medianMs: per[Math.floor(per.length / 2)], iterations, trials };
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
