// GIF and PNG decoding to frames at the target size, one source frame in memory at a time.
import fs from 'node:fs';
import { decompressFrame, parseGIF, type ParsedFrame } from 'gifuct-js';
import { PNG } from 'pngjs';
import { DataError } from './errors.ts';
import { resizeCrop, type RawFrame } from './pixels.ts';

const REMOVE = 'replace it with a valid file, or remove it';

/** `needed` frames are more than the clip has. */
export function tooFewFrames(file: string, has: number, needed: number, t: number, stride: number, note = ''): DataError {
  const every = stride > 1 ? ` with every ${stride}th frame` : '';
  return new DataError(file, `has ${has} frame${has === 1 ? '' : 's'}${note}, but t = ${t}${every} needs ${needed}`,
    has > 0 ? `use longer clips, a smaller t (e.g. \`--dim t=${Math.floor((has - 1) / stride) + 1}\`), or remove it` : 'replace it with a valid file, or remove it');
}

function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Frames 0, stride, 2·stride, … (t of them) of a GIF, composited as a player shows them. */
export async function gifFrames(file: string, t: number, stride: number, h: number, w: number): Promise<Float32Array[]> {
  const bytes = await fs.promises.readFile(file).catch((err) => { throw new DataError(file, `cannot be read (${why(err)})`, REMOVE); });
  if (bytes.length < 13 || bytes.toString('latin1', 0, 3) !== 'GIF') throw new DataError(file, 'is not a GIF (no GIF header)', REMOVE);
  let gif: ReturnType<typeof parseGIF>;
  try {
    gif = parseGIF(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
  } catch (err) {
    throw new DataError(file, `is a corrupt GIF (${why(err)})`, REMOVE);
  }
  const { width, height } = gif.lsd;
  if (width < 1 || height < 1) throw new DataError(file, `is a corrupt GIF (size ${width}x${height})`, REMOVE);
  type Frame = Parameters<typeof decompressFrame>[0];
  const images = gif.frames.filter((f): f is Frame => 'image' in f);
  // Without the trailer byte the file was cut short, and the decoder fills a cut frame silently:
  // only frames followed by another one are known to be whole.
  const truncated = bytes[bytes.length - 1] !== 0x3b;
  const whole = truncated ? Math.max(0, images.length - 1) : images.length;
  const needed = (t - 1) * stride + 1;
  if (whole < needed) throw tooFewFrames(file, whole, needed, t, stride, truncated ? ' (the file looks truncated: no GIF trailer)' : '');
  // The canvas starts transparent, which shows as black.
  let canvas = new Uint8ClampedArray(width * height * 4);
  const out: Float32Array[] = [];
  for (let i = 0; i < needed; i++) {
    let frame: ParsedFrame;
    try {
      frame = decompressFrame(images[i], gif.gct, true);
    } catch (err) {
      throw new DataError(file, `has a corrupt frame ${i} (${why(err)})`, REMOVE);
    }
    const { left, top, width: fw, height: fh } = frame.dims;
    if (frame.patch.length !== fw * fh * 4) throw new DataError(file, `has a corrupt frame ${i} (truncated image data)`, REMOVE);
    const before = frame.disposalType === 3 ? canvas.slice() : null;
    for (let y = 0; y < fh && top + y < height; y++) {
      for (let x = 0; x < fw && left + x < width; x++) {
        const p = (y * fw + x) * 4;
        if (frame.patch[p + 3] !== 0) canvas.set(frame.patch.subarray(p, p + 4), ((top + y) * width + left + x) * 4);
      }
    }
    if (i % stride === 0) out.push(resizeCrop({ width, height, channels: 4, data: canvas }, h, w));
    if (frame.disposalType === 2) {
      for (let y = top; y < Math.min(height, top + fh); y++) canvas.fill(0, (y * width + left) * 4, (y * width + Math.min(width, left + fw)) * 4);
    } else if (before) {
      canvas = before;
    }
  }
  return out;
}

export async function readPng(file: string): Promise<RawFrame> {
  const bytes = await fs.promises.readFile(file).catch((err) => { throw new DataError(file, `cannot be read (${why(err)})`, REMOVE); });
  try {
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, channels: 4, data: png.data };
  } catch (err) {
    throw new DataError(file, `is not a readable PNG (${why(err)})`, REMOVE);
  }
}

/** Frames 0, stride, … of a clip stored as PNG files (already in frame order). */
export async function pngFrames(clip: string, files: readonly string[], t: number, stride: number, h: number, w: number): Promise<Float32Array[]> {
  const needed = (t - 1) * stride + 1;
  if (files.length < needed) throw tooFewFrames(clip, files.length, needed, t, stride);
  const out: Float32Array[] = [];
  let first: RawFrame | null = null;
  for (let i = 0; i < needed; i += stride) {
    const frame = await readPng(files[i]);
    first ??= frame;
    if (frame.width !== first.width || frame.height !== first.height) {
      throw new DataError(files[i], `is ${frame.width}x${frame.height}, but the clip's first frame is ${first.width}x${first.height}`, 'export every frame of a clip at one size');
    }
    out.push(resizeCrop(frame, h, w));
  }
  return out;
}
