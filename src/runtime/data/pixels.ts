// Frames from 8-bit pixels to the model's layout: cover-resize, center-crop, channels, [-1, 1].
//
// Resampling is by area (a box filter): the source is scaled so that it covers h×w (the larger of
// the two ratios), the middle h×w is kept, and each output pixel averages the source pixels under
// it, weighted by how much of each it covers. Integer downscales are exact block means; upscales
// come out blocky (nearest, blended across pixel edges) rather than blurred.
import type { SampleShape } from './types.ts';

/** An 8-bit frame: `channels` = 3 (RGB) or 4 (RGBA, composited over black). */
export interface RawFrame {
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
  readonly data: Uint8Array | Uint8ClampedArray;
}

interface AxisWeights {
  readonly first: Int32Array;
  readonly count: Int32Array;
  /** Per output pixel, `count` weights (padded to the widest) summing to 1. */
  readonly weights: Float64Array;
  readonly stride: number;
}

/** Box weights of `dst` output pixels over `src` input pixels at `scale`, centred. */
function axisWeights(src: number, dst: number, scale: number): AxisWeights {
  const offset = (src - dst / scale) / 2;
  const span = 1 / scale;
  const stride = Math.ceil(span) + 1;
  const first = new Int32Array(dst);
  const count = new Int32Array(dst);
  const weights = new Float64Array(dst * stride);
  for (let i = 0; i < dst; i++) {
    const a = offset + i * span;
    const b = a + span;
    const k0 = Math.max(0, Math.floor(a));
    const k1 = Math.min(src, Math.ceil(b));
    first[i] = k0;
    count[i] = k1 - k0;
    let sum = 0;
    for (let k = k0; k < k1; k++) {
      const wk = Math.max(0, Math.min(b, k + 1) - Math.max(a, k));
      weights[i * stride + k - k0] = wk;
      sum += wk;
    }
    for (let k = 0; k < k1 - k0; k++) weights[i * stride + k] /= sum;
  }
  return { first, count, weights, stride };
}

/** Cover-resizes and center-crops to h×w; returns RGB values in [0, 255], interleaved. */
export function resizeCrop(frame: RawFrame, h: number, w: number): Float32Array {
  const { width: sw, height: sh, channels: ch, data } = frame;
  const scale = Math.max(h / sh, w / sw);
  const xs = axisWeights(sw, w, scale);
  const ys = axisWeights(sh, h, scale);
  // Horizontal pass over every source row, alpha premultiplied (transparency shows black).
  const rows = new Float64Array(sh * w * 3);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < xs.count[x]; k++) {
        const p = (y * sw + xs.first[x] + k) * ch;
        const wt = xs.weights[x * xs.stride + k] * (ch === 4 ? data[p + 3] / 255 : 1);
        r += wt * data[p];
        g += wt * data[p + 1];
        b += wt * data[p + 2];
      }
      const o = (y * w + x) * 3;
      rows[o] = r;
      rows[o + 1] = g;
      rows[o + 2] = b;
    }
  }
  const out = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let k = 0; k < ys.count[y]; k++) {
      const wt = ys.weights[y * ys.stride + k];
      const row = (ys.first[y] + k) * w * 3;
      for (let i = 0; i < w * 3; i++) out[y * w * 3 + i] += wt * rows[row + i];
    }
  }
  return out;
}

/**
 * Writes one RGB frame (h×w, values in [0, 255]) as frame `f` of sample `s` of a [b, c, t, h, w]
 * batch. c = 1 is luma (BT.601); other c take channel k from RGB channel k mod 3, which lets
 * latent-sized specs (c = 4) train on pixels.
 */
export function writeFrame(rgb: ArrayLike<number>, out: Float32Array, s: number, f: number, shape: SampleShape): void {
  const { c, t, h, w } = shape;
  const plane = h * w;
  for (let k = 0; k < c; k++) {
    const base = ((s * c + k) * t + f) * plane;
    for (let p = 0; p < plane; p++) {
      const v = c === 1 ? 0.299 * rgb[p * 3] + 0.587 * rgb[p * 3 + 1] + 0.114 * rgb[p * 3 + 2] : rgb[p * 3 + (k % 3)];
      out[base + p] = v / 127.5 - 1;
    }
  }
}
