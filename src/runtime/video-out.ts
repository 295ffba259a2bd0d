// Samples to files a person can look at, and the raw tensors:
//   samples.gif          every sample side by side in a grid, one GIF frame per video frame, looping
//   grid.png             rows = samples, columns = frames
//   samples.safetensors  the samples as sampled (F32, the noisy input's shape), their labels (I32)
//   samples.mp4          the GIF's frames through ffmpeg (H.264), when ffmpeg is installed
// Values map from [−1, 1] to 0–255 (clamped); 3 channels are RGB, 1 gray, 2 red and green, more
// the first 3 (training maps RGB channel k mod 3 to channel k). Small frames are scaled up by an
// integer factor (nearest) so a sample is about 64 pixels across. Everything is encoded in memory
// (MP4 into a temporary file) before anything is written, and each file is written atomically:
// a failure leaves the folder's earlier files as they were, never a part of one.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import gifenc from 'gifenc';
import { PNG } from 'pngjs';
import { ffmpegAvailable } from './data/ffmpeg.ts';
import { serializeSafetensorsParts, writeFileAtomic, type SafeTensor } from './safetensors.ts';

export const SAMPLE_FILES = { gif: 'samples.gif', grid: 'grid.png', tensors: 'samples.safetensors', mp4: 'samples.mp4' } as const;

/** Samples in the noisy input's layout: [n, c, t, h, w] (an image input: t = 1). */
export interface SampleVideos {
  readonly data: Float32Array;
  readonly n: number;
  readonly c: number;
  readonly t: number;
  readonly h: number;
  readonly w: number;
  /** the tensor's shape as the model names it ([n, c, h, w] for images) */
  readonly shape: readonly number[];
}

/** Pixels between tiles, and their colour. */
const GAP = 2;
const BACKGROUND = 24;

/** The integer factor that makes a frame about 64 pixels across (1 to 16). */
export const upscaleOf = (h: number, w: number) => Math.max(1, Math.min(16, Math.ceil(64 / Math.max(h, w))));

const byte = (v: number) => (v >= 1 ? 255 : v <= -1 ? 0 : Math.round((v + 1) * 127.5));

/** RGB bytes of frame f of sample s, h×w×3. */
export function frameRgb(v: SampleVideos, s: number, f: number): Uint8Array {
  const { c, t, h, w, data } = v;
  const plane = h * w;
  const out = new Uint8Array(plane * 3);
  const at = (k: number) => ((s * c + k) * t + f) * plane;
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) {
      const k = c === 1 ? 0 : ch;
      out[p * 3 + ch] = k < c ? byte(data[at(k) + p]) : 0;
    }
  }
  return out;
}

/** An RGBA canvas of width×height filled with the background. */
function canvas(width: number, height: number): Uint8Array {
  const px = new Uint8Array(width * height * 4).fill(BACKGROUND);
  for (let i = 3; i < px.length; i += 4) px[i] = 255;
  return px;
}

/** Draws an h×w RGB frame scaled by `scale` at (x, y) of an RGBA canvas `width` wide. */
function blit(px: Uint8Array, width: number, rgb: Uint8Array, h: number, w: number, scale: number, x: number, y: number): void {
  for (let r = 0; r < h * scale; r++) {
    for (let q = 0; q < w * scale; q++) {
      const src = (Math.floor(r / scale) * w + Math.floor(q / scale)) * 3;
      const dst = ((y + r) * width + x + q) * 4;
      px[dst] = rgb[src];
      px[dst + 1] = rgb[src + 1];
      px[dst + 2] = rgb[src + 2];
    }
  }
}

/** The frames of the animation: the n samples tiled ceil(sqrt(n)) across. RGBA each. */
export function tiledFrames(v: SampleVideos): { width: number; height: number; frames: Uint8Array[] } {
  const scale = upscaleOf(v.h, v.w);
  const cols = Math.ceil(Math.sqrt(v.n));
  const rows = Math.ceil(v.n / cols);
  const [tw, th] = [v.w * scale, v.h * scale];
  const width = cols * tw + (cols + 1) * GAP;
  const height = rows * th + (rows + 1) * GAP;
  const frames = Array.from({ length: v.t }, (_, f) => {
    const px = canvas(width, height);
    for (let s = 0; s < v.n; s++) {
      blit(px, width, frameRgb(v, s, f), v.h, v.w, scale, GAP + (s % cols) * (tw + GAP), GAP + Math.floor(s / cols) * (th + GAP));
    }
    return px;
  });
  return { width, height, frames };
}

/** A looping GIF of the tiled samples at `fps`: one palette for all frames (gray: the 256 grays). */
export function encodeGif(v: SampleVideos, fps: number): Uint8Array {
  const { width, height, frames } = tiledFrames(v);
  const gray = v.c === 1;
  let palette: number[][];
  if (gray) {
    palette = Array.from({ length: 256 }, (_, i) => [i, i, i]);
  } else {
    const all = new Uint8Array(frames.length * width * height * 4);
    frames.forEach((f, i) => all.set(f, i * f.length));
    palette = gifenc.quantize(all, 256);
  }
  const gif = gifenc.GIFEncoder();
  const delay = Math.round(1000 / fps);
  for (const f of frames) {
    const index = gray ? Uint8Array.from({ length: width * height }, (_, p) => f[p * 4]) : gifenc.applyPalette(f, palette);
    gif.writeFrame(index, width, height, { palette, delay, repeat: 0 });
  }
  gif.finish();
  return gif.bytes();
}

/** A PNG with one row per sample and one column per frame. */
export function encodeGrid(v: SampleVideos): Uint8Array {
  const scale = upscaleOf(v.h, v.w);
  const [tw, th] = [v.w * scale, v.h * scale];
  const width = v.t * tw + (v.t + 1) * GAP;
  const height = v.n * th + (v.n + 1) * GAP;
  const png = new PNG({ width, height });
  const px = canvas(width, height);
  for (let s = 0; s < v.n; s++) {
    for (let f = 0; f < v.t; f++) blit(px, width, frameRgb(v, s, f), v.h, v.w, scale, GAP + f * (tw + GAP), GAP + s * (th + GAP));
  }
  png.data = Buffer.from(px.buffer, px.byteOffset, px.byteLength);
  return PNG.sync.write(png);
}

/** The safetensors bytes: `samples` (F32) and, when given, `labels` (I32 [n]), with string metadata. */
export function encodeTensors(v: SampleVideos, labels: Int32Array | null, metadata: Record<string, string>): Uint8Array[] {
  const tensors: Record<string, SafeTensor> = { samples: { dtype: 'F32', shape: [...v.shape], data: v.data } };
  if (labels) tensors.labels = { dtype: 'I32', shape: [labels.length], data: labels };
  return serializeSafetensorsParts(tensors, metadata);
}

/**
 * The tiled frames as H.264 through ffmpeg into `tmp` (dimensions padded to even, yuv420p for
 * players); `null` and the reason when ffmpeg is missing or fails.
 */
function encodeMp4(v: SampleVideos, fps: number, tmp: string, exe: string): string | null {
  if (!ffmpegAvailable(exe)) return `no ${SAMPLE_FILES.mp4}: ffmpeg is not installed (Debian/Ubuntu: \`apt-get install ffmpeg\`, macOS: \`brew install ffmpeg\`); the GIF has the same frames`;
  const { width, height, frames } = tiledFrames(v);
  const rgb = Buffer.alloc(frames.length * width * height * 3);
  frames.forEach((f, i) => { for (let p = 0; p < width * height; p++) rgb.set(f.subarray(p * 4, p * 4 + 3), (i * width * height + p) * 3); });
  let why = '';
  for (const codec of ['libx264', 'mpeg4']) {
    const r = spawnSync(exe, ['-nostdin', '-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps),
      '-i', 'pipe:0', '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2', '-c:v', codec, '-pix_fmt', 'yuv420p', '-movflags', '+faststart', '-f', 'mp4', tmp], { input: rgb, stdio: ['pipe', 'ignore', 'pipe'] });
    if (!r.error && r.status === 0) return null;
    why = r.error?.message ?? (r.stderr?.toString().trim().split('\n').pop() || `exit status ${r.status}`);
  }
  fs.rmSync(tmp, { force: true });
  return `no ${SAMPLE_FILES.mp4}: ffmpeg could not encode it (${why})`;
}

export interface WrittenSamples {
  readonly gif: string;
  readonly grid: string;
  readonly tensors: string;
  /** null when ffmpeg is missing or failed: `notes` says why */
  readonly mp4: string | null;
  readonly notes: readonly string[];
}

export interface WriteOptions {
  readonly fps: number;
  readonly labels?: Int32Array | null;
  readonly metadata?: Record<string, string>;
  /** write an MP4 through ffmpeg (default true) */
  readonly mp4?: boolean;
  /** the ffmpeg executable (default `ffmpeg`) */
  readonly ffmpeg?: string;
}

/** Encodes everything, then writes each file atomically into `dir` (created). */
export function writeSamples(dir: string, v: SampleVideos, o: WriteOptions): WrittenSamples {
  if (!(o.fps > 0) || !Number.isFinite(o.fps)) throw new RangeError(`fps must be a positive number, got ${o.fps}`);
  fs.mkdirSync(dir, { recursive: true });
  const file = (name: string) => path.join(dir, name);
  const gif = encodeGif(v, o.fps);
  const grid = encodeGrid(v);
  const tensors = encodeTensors(v, o.labels ?? null, o.metadata ?? {});
  const notes: string[] = [];
  const tmp = path.join(dir, `.${SAMPLE_FILES.mp4}.${process.pid}.${Date.now()}.tmp`);
  const mp4Problem = o.mp4 === false ? 'no MP4 asked for' : encodeMp4(v, o.fps, tmp, o.ffmpeg ?? 'ffmpeg');
  try {
    writeFileAtomic(file(SAMPLE_FILES.tensors), tensors);
    writeFileAtomic(file(SAMPLE_FILES.gif), [gif]);
    writeFileAtomic(file(SAMPLE_FILES.grid), [grid]);
    if (mp4Problem === null) fs.renameSync(tmp, file(SAMPLE_FILES.mp4));
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  if (mp4Problem !== null && o.mp4 !== false) notes.push(mp4Problem);
  return { gif: file(SAMPLE_FILES.gif), grid: file(SAMPLE_FILES.grid), tensors: file(SAMPLE_FILES.tensors), mp4: mp4Problem === null ? file(SAMPLE_FILES.mp4) : null, notes };
}
