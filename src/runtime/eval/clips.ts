// Statistics of a batch of clips [n, c, t, h, w] with values in [-1, 1], as `vdm eval` reports
// them for samples beside the training data: per-frame pixel mean and spread, and temporal
// consistency (the mean absolute difference of adjacent frames).

export interface ClipShape {
  readonly n: number;
  readonly c: number;
  readonly t: number;
  readonly h: number;
  readonly w: number;
}

export interface Clips {
  readonly shape: ClipShape;
  /** [n, c, t, h, w] row-major */
  readonly data: Float32Array;
}

export const clipAt = (clips: Clips, s: number, k: number, f: number) => {
  const { c, t, h, w } = clips.shape;
  return ((s * c + k) * t + f) * h * w;
};

/** Per frame index: the mean and standard deviation of every value of that frame over all clips. */
export function frameStats(clips: Clips): { mean: number; std: number }[] {
  const { n, c, t, h, w } = clips.shape;
  return Array.from({ length: t }, (_, f) => {
    let sum = 0, sq = 0;
    for (let s = 0; s < n; s++) for (let k = 0; k < c; k++) {
      const at = clipAt(clips, s, k, f);
      for (let p = 0; p < h * w; p++) { const v = clips.data[at + p]; sum += v; sq += v * v; }
    }
    const count = n * c * h * w;
    const mean = sum / count;
    return { mean, std: Math.sqrt(Math.max(0, sq / count - mean * mean)) };
  });
}

/** Mean |x[f + 1] − x[f]| over every value of every pair of adjacent frames (0 for one frame). */
export function temporalConsistency(clips: Clips): number {
  const { n, c, t, h, w } = clips.shape;
  if (t < 2) return 0;
  let sum = 0;
  for (let s = 0; s < n; s++) for (let k = 0; k < c; k++) for (let f = 0; f + 1 < t; f++) {
    const a = clipAt(clips, s, k, f), b = clipAt(clips, s, k, f + 1);
    for (let p = 0; p < h * w; p++) sum += Math.abs(clips.data[b + p] - clips.data[a + p]);
  }
  return sum / (n * c * (t - 1) * h * w);
}
