// A Fréchet distance between samples and data over the features of a small fixed network, the
// way FID / FVD compare Inception or I3D features, with a network vdm can carry: 64 random 3D
// filters (3 x 3 x 3 over every channel, weights N(0, 1/fan-in) from a fixed seed, no training),
// ReLU, averaged over every position of the clip, beside each channel's mean and standard
// deviation. Numbers are comparable only between runs at the same clip shape.
//   d² = |μ₁ − μ₂|² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)
import { Rng } from '../data/rng.ts';
import { clipAt, type Clips } from './clips.ts';

export const FEATURE_FILTERS = 64;
const FEATURE_SEED = 20261205;

function filters(c: number): Float64Array {
  const rng = new Rng(FEATURE_SEED, c);
  const fan = c * 27;
  return Float64Array.from({ length: FEATURE_FILTERS * fan }, () =>
    Math.sqrt(-2 * Math.log(1 - rng.float())) * Math.cos(2 * Math.PI * rng.float()) / Math.sqrt(fan));
}

/** [n, FEATURE_FILTERS + 2c]: the fixed network's features of each clip. */
export function clipFeatures(clips: Clips): Float64Array[] {
  const { n, c, t, h, w } = clips.shape;
  const wts = filters(c);
  const at = (s: number, k: number, f: number, y: number, x: number) => {
    // edges replicate, so every clip size has a feature at every position
    const [ff, yy, xx] = [Math.min(t - 1, Math.max(0, f)), Math.min(h - 1, Math.max(0, y)), Math.min(w - 1, Math.max(0, x))];
    return clips.data[clipAt(clips, s, k, ff) + yy * w + xx];
  };
  return Array.from({ length: n }, (_, s) => {
    const feat = new Float64Array(FEATURE_FILTERS + 2 * c);
    const patch = new Float64Array(c * 27);
    for (let f = 0; f < t; f++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let i = 0;
      for (let k = 0; k < c; k++) for (let df = -1; df <= 1; df++) for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) patch[i++] = at(s, k, f + df, y + dy, x + dx);
      for (let o = 0; o < FEATURE_FILTERS; o++) {
        let acc = 0;
        for (let j = 0; j < patch.length; j++) acc += wts[o * patch.length + j] * patch[j];
        if (acc > 0) feat[o] += acc;
      }
    }
    for (let o = 0; o < FEATURE_FILTERS; o++) feat[o] /= t * h * w;
    for (let k = 0; k < c; k++) {
      let sum = 0, sq = 0;
      for (let f = 0; f < t; f++) for (let p = 0; p < h * w; p++) { const v = clips.data[clipAt(clips, s, k, f) + p]; sum += v; sq += v * v; }
      const mean = sum / (t * h * w);
      feat[FEATURE_FILTERS + 2 * k] = mean;
      feat[FEATURE_FILTERS + 2 * k + 1] = Math.sqrt(Math.max(0, sq / (t * h * w) - mean * mean));
    }
    return feat;
  });
}

/** Mean and covariance (divided by n − 1; zero for one row) of rows of equal length. */
export function meanCovariance(rows: readonly Float64Array[]): { mean: Float64Array; cov: Float64Array[] } {
  const d = rows[0].length, n = rows.length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let i = 0; i < d; i++) mean[i] += r[i] / n;
  const cov = Array.from({ length: d }, () => new Float64Array(d));
  for (const r of rows) for (let i = 0; i < d; i++) for (let j = 0; j <= i; j++) cov[i][j] += ((r[i] - mean[i]) * (r[j] - mean[j])) / Math.max(1, n - 1);
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) cov[j][i] = cov[i][j];
  return { mean, cov };
}

/** Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric matrix, by cyclic Jacobi rotations. */
export function symmetricEigen(m: readonly Float64Array[]): { values: Float64Array; vectors: Float64Array[] } {
  const d = m.length;
  const a = m.map((r) => Float64Array.from(r));
  const v = Array.from({ length: d }, (_, i) => Float64Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) off += a[i][j] * a[i][j];
    if (off < 1e-30) break;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) {
      if (Math.abs(a[p][q]) < 1e-300) continue;
      const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
      const tan = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const cos = 1 / Math.sqrt(tan * tan + 1), sin = tan * cos;
      for (let k = 0; k < d; k++) {
        const [akp, akq] = [a[k][p], a[k][q]];
        a[k][p] = cos * akp - sin * akq;
        a[k][q] = sin * akp + cos * akq;
      }
      for (let k = 0; k < d; k++) {
        const [apk, aqk] = [a[p][k], a[q][k]];
        a[p][k] = cos * apk - sin * aqk;
        a[q][k] = sin * apk + cos * aqk;
      }
      for (let k = 0; k < d; k++) {
        const [vkp, vkq] = [v[k][p], v[k][q]];
        v[k][p] = cos * vkp - sin * vkq;
        v[k][q] = sin * vkp + cos * vkq;
      }
    }
  }
  return { values: Float64Array.from(a, (r, i) => r[i]), vectors: v };
}

/** The Fréchet distance d² between Gaussians (μ₁, Σ₁) and (μ₂, Σ₂). */
export function frechetDistance(m1: Float64Array, c1: readonly Float64Array[], m2: Float64Array, c2: readonly Float64Array[]): number {
  const d = m1.length;
  let mean = 0, trace = 0;
  for (let i = 0; i < d; i++) { mean += (m1[i] - m2[i]) ** 2; trace += c1[i][i] + c2[i][i]; }
  // Σ₁^½ = V diag(√λ) Vᵀ; then the square roots of the eigenvalues of Σ₁^½ Σ₂ Σ₁^½ (symmetric, PSD)
  const e = symmetricEigen(c1);
  const root = Array.from({ length: d }, (_, i) => Float64Array.from({ length: d }, (_, j) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += e.vectors[i][k] * Math.sqrt(Math.max(0, e.values[k])) * e.vectors[j][k];
    return s;
  }));
  const mul = (a: readonly Float64Array[], b: readonly Float64Array[]) => a.map((r) => Float64Array.from({ length: d }, (_, j) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += r[k] * b[k][j];
    return s;
  }));
  const inner = mul(mul(root, c2), root);
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) inner[i][j] = inner[j][i] = (inner[i][j] + inner[j][i]) / 2;
  const cross = symmetricEigen(inner).values.reduce((s, l) => s + Math.sqrt(Math.max(0, l)), 0);
  return Math.max(0, mean + trace - 2 * cross);
}

/** The Fréchet distance between two sets of clips of one shape, over clipFeatures. */
export function clipFrechetDistance(a: Clips, b: Clips): number {
  const fa = meanCovariance(clipFeatures(a)), fb = meanCovariance(clipFeatures(b));
  return frechetDistance(fa.mean, fa.cov, fb.mean, fb.cov);
}
