// A folder of the user's clips: .gif files, videos ffmpeg can read (.mp4, .webm, …), subfolders
// of PNG frames (one clip each, frames in natural order) and single .png images (t = 1). The clips
// are listed when the dataset opens and decoded one at a time as batches are read.
import fs from 'node:fs';
import path from 'node:path';
import { gifFrames, pngFrames, tooFewFrames } from './decode.ts';
import { DataError } from './errors.ts';
import { FFMPEG_EXTENSIONS, ffmpegAvailable, ffmpegFrames, missingFfmpeg } from './ffmpeg.ts';
import { LABELS_FILE, readLabels, type LabelRow } from './labels.ts';
import { writeFrame } from './pixels.ts';
import { permutation } from './rng.ts';
import { checkBatchRequest, type Batch, type DatasetOptions, type SampleShape, type VideoDataset } from './types.ts';

export interface Clip {
  /** Name inside the folder (what labels.csv uses). */
  readonly name: string;
  readonly path: string;
  readonly kind: 'gif' | 'ffmpeg' | 'frames';
  /** PNG files in frame order (kind 'frames'; a single .png is a one-frame clip). */
  readonly frames?: readonly string[];
}

/** Natural order: digit runs compare as numbers, so frame2.png comes before frame10.png. */
export function naturalCompare(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const [x, y] = [ra[i], rb[i]];
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) {
      const [nx, ny] = [x.replace(/^0+(?=\d)/, ''), y.replace(/^0+(?=\d)/, '')];
      if (nx.length !== ny.length) return nx.length - ny.length;
      if (nx !== ny) return nx < ny ? -1 : 1;
    }
    return x < y ? -1 : 1;
  }
  return ra.length !== rb.length ? ra.length - rb.length : a < b ? -1 : a > b ? 1 : 0;
}

/** The clips in a folder, in natural order; folders without PNG frames come back as problems. */
export function listClips(dir: string): { clips: Clip[]; problems: DataError[] } {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new DataError(dir, `cannot be read as a folder of videos (${(err as Error).message})`, 'pass `synthetic` or a folder of .gif/.mp4/.webm files or of PNG-frame folders', false);
  }
  const clips: Clip[] = [];
  const problems: DataError[] = [];
  for (const e of entries.sort((a, b) => naturalCompare(a.name, b.name))) {
    if (e.name.startsWith('.')) continue;
    const file = path.join(dir, e.name);
    const ext = path.extname(e.name).toLowerCase();
    const isDir = e.isDirectory() || (e.isSymbolicLink() && fs.statSync(file, { throwIfNoEntry: false })?.isDirectory());
    if (isDir) {
      const frames = fs.readdirSync(file).filter((f) => !f.startsWith('.') && f.toLowerCase().endsWith('.png')).sort(naturalCompare);
      if (frames.length === 0) problems.push(new DataError(file, 'is a folder without .png frames', 'export the clip as PNG frames (frame0001.png, …), or move the folder out'));
      else clips.push({ name: e.name, path: file, kind: 'frames', frames: frames.map((f) => path.join(file, f)) });
    } else if (ext === '.gif') {
      clips.push({ name: e.name, path: file, kind: 'gif' });
    } else if (ext === '.png') {
      clips.push({ name: e.name, path: file, kind: 'frames', frames: [file] });
    } else if (FFMPEG_EXTENSIONS.includes(ext)) {
      clips.push({ name: e.name, path: file, kind: 'ffmpeg' });
    }
  }
  return { clips, problems };
}

/** Decodes frames 0, stride, … of a clip: t frames of h×w RGB in [0, 255]. */
async function clipFrames(clip: Clip, shape: SampleShape, stride: number, ffmpeg: string): Promise<Float32Array[]> {
  const { t, h, w } = shape;
  if (clip.kind === 'gif') return gifFrames(clip.path, t, stride, h, w);
  if (clip.kind === 'frames') return pngFrames(clip.path, clip.frames!, t, stride, h, w);
  const needed = (t - 1) * stride + 1;
  const frames = await ffmpegFrames(clip.path, needed, h, w, ffmpeg);
  if (frames.length < needed) throw tooFewFrames(clip.path, frames.length, needed, t, stride);
  return frames.filter((_, i) => i % stride === 0);
}

export async function folderDataset(dir: string, shape: SampleShape, options: DatasetOptions = {}): Promise<VideoDataset> {
  const seed = options.seed ?? 0;
  const stride = options.frameStride ?? 1;
  const ffmpeg = options.ffmpeg ?? 'ffmpeg';
  const skipBad = options.skipBad ?? false;
  const problems: string[] = [];
  const drop = (err: DataError) => {
    if (!skipBad || !err.skippable) throw err;
    problems.push(err.message);
  };

  const listed = listClips(dir);
  listed.problems.forEach(drop);
  let clips = listed.clips;
  let rows = new Map<string, LabelRow>();
  const labelsFile = path.join(dir, LABELS_FILE);
  if (options.label || options.scalar) {
    if (!fs.existsSync(labelsFile)) {
      const what = options.label ? `class labels (${options.label.classes} classes)` : 'a speed per clip';
      throw new DataError(labelsFile, `is missing, and the model needs ${what}`, `write one line per clip: file,label${options.scalar ? ',speed' : ''} (e.g. \`clip1.gif,3${options.scalar ? ',1.5' : ''}\`)`, false);
    }
    const labels = readLabels(labelsFile, dir, new Set(clips.map((c) => c.name)), { classes: options.label?.classes, range: options.scalar?.range });
    rows = new Map(labels.rows);
    const badNames = new Set<string>();
    for (const p of labels.problems) {
      drop(p.error);
      if (p.name !== null) badNames.add(p.name);
    }
    clips = clips.filter((c) => {
      if (badNames.has(c.name)) return false;
      const row = rows.get(c.name);
      const missing = options.label && row?.label === undefined ? 'label' : options.scalar && row?.speed === undefined ? 'speed' : null;
      if (missing) drop(new DataError(c.path, `has no ${missing} in ${LABELS_FILE}`, `add a line \`${c.name},LABEL${options.scalar ? ',SPEED' : ''}\``));
      return !missing;
    });
  }
  if (clips.length === 0) {
    throw new DataError(dir, 'has no usable clips', 'add .gif, .mp4 or .webm files, or folders of PNG frames (one folder per clip)', false);
  }
  const video = clips.find((c) => c.kind === 'ffmpeg');
  if (video && !ffmpegAvailable(ffmpeg)) throw missingFfmpeg(video.path, ffmpeg);

  const bad = new Set<number>();
  const orders = new Map<number, Uint32Array>();
  const orderOf = (epoch: number) => {
    let p = orders.get(epoch);
    if (!p) {
      if (orders.size >= 2) orders.delete(orders.keys().next().value!);
      p = permutation(clips.length, seed, epoch);
      orders.set(epoch, p);
    }
    return p;
  };
  const n = clips.length;
  return {
    shape,
    size: n,
    get skipped() { return problems.length; },
    problems,
    async batch(index: number, batchSize: number): Promise<Batch> {
      checkBatchRequest(index, batchSize);
      const out = new Float32Array(batchSize * shape.c * shape.t * shape.h * shape.w);
      const label = options.label ? new Int32Array(batchSize) : undefined;
      const scalar = options.scalar ? new Float32Array(batchSize) : undefined;
      for (let j = 0; j < batchSize; j++) {
        const position = index * batchSize + j;
        const order = orderOf(Math.floor(position / n));
        // A bad clip's place goes to the next good one in this epoch's order: a property of
        // the data, not of what was read before, so batches stay reproducible.
        let done = false;
        for (let k = 0; k < n && !done; k++) {
          const c = order[(position % n + k) % n];
          if (bad.has(c)) continue;
          try {
            const frames = await clipFrames(clips[c], shape, stride, ffmpeg);
            frames.forEach((f, i) => writeFrame(f, out, j, i, shape));
          } catch (err) {
            if (!(err instanceof DataError)) throw err;
            drop(err);
            bad.add(c);
            continue;
          }
          const row = rows.get(clips[c].name);
          if (label) label[j] = row!.label!;
          if (scalar) scalar[j] = row!.speed!;
          done = true;
        }
        if (!done) throw new DataError(dir, `has no readable clips (all ${n} failed to decode)`, 'see the problems listed above', false);
      }
      return { size: batchSize, video: out, label, scalar };
    },
  };
}
