// `vdm sample`, short of the GPU and the spec's checking (pipeline.ts's sampleSpec strings these
// together): the checkpoint a file or run folder names and the dims it was trained at, the
// settings (flags over the spec's sampler and guidance), the conditioning inputs at the sampling
// batch (sample-conditions.ts: the unconditional half nulled under guidance), and the loop's
// progress on stderr.
// Everything a user can get wrong is found before a GPU is touched and reported as one
// SampleSetupError (or a CheckpointError) whose message says what to do.
import fs from 'node:fs';
import path from 'node:path';
import type { SamplingProgram } from '../codegen/sampling.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { findLatest, readCheckpointHeader } from './checkpoint.ts';
import type { Gpu } from './gpu.ts';
import { formatDuration, formatRate, type ProgressStream } from './progress.ts';
import { fillConditions, SampleSetupError, type ConditionFlags, type SampleConditions } from './sample-conditions.ts';
import { Sampler } from './sampler.ts';
import type { SampleVideos } from './video-out.ts';

export { modelBatchOf, SampleSetupError, type ConditionFlags, type SampleConditions } from './sample-conditions.ts';

export interface SampleSettings extends ConditionFlags {
  /** samples */
  readonly n: number;
  /** timesteps visited (1 .. T) */
  readonly steps: number;
  readonly sampler: 'ddpm' | 'ddim' | 'euler';
  /** DDIM's eta */
  readonly eta: number;
  /** classifier-free guidance scale; null: none (the conditional model alone, at batch n) */
  readonly guidance: number | null;
  readonly seed: number;
  /** frames per second of the GIF and MP4 */
  readonly fps: number;
  /** the checkpoint's EMA weights (when it has them) */
  readonly ema: boolean;
  /** clip the predicted x0 to [-1, 1] at every step */
  readonly clip: boolean;
  /**
   * a video model whose image input is its first frame (image_condition): replace frame 0 by that
   * frame noised to each step's timestep, so the samples start with it (codegen/sampling.ts)
   */
  readonly keepFirst: boolean;
}

export const DEFAULT_SAMPLE = { n: 4, seed: 0, fps: 8, ema: true, clip: true, keepFirst: true } as const;

const FLAGS: Record<keyof SampleSettings, string> = {
  n: '--n', steps: '--steps', sampler: '--sampler', eta: '--eta', guidance: '--guidance', classId: '--class', caption: '--caption',
  images: '--image', textEmbeddings: '--text-embedding', attrs: '--attr', trajectories: '--trajectory', motions: '--motion',
  seed: '--seed', fps: '--fps', ema: '--ema', clip: '--clip', keepFirst: '--keep-first',
};

export interface LocatedCheckpoint {
  readonly file: string;
  readonly step: number;
  /** the model and dims it was trained at, from the spec stored in its metadata */
  readonly model: string;
  readonly dims: Readonly<Record<string, number>>;
  /** the folder it is in */
  readonly dir: string;
}

/** The checkpoint `source` names: a checkpoint file, or the newest whole one in a run folder. */
export function locateCheckpoint(source: string, warn?: (message: string) => void): LocatedCheckpoint {
  const stat = fs.statSync(source, { throwIfNoEntry: false });
  if (!stat) throw new SampleSetupError(`${source}: no such checkpoint or run folder`);
  let file = source;
  if (stat.isDirectory()) {
    const found = findLatest(source, warn);
    if (!found) throw new SampleSetupError(`${source} holds no checkpoint (step-NNNNNN.safetensors): name a folder \`vdm train\` wrote, or a checkpoint file`);
    file = found.file;
  }
  const header = readCheckpointHeader(file);
  let stored: { model?: unknown; dims?: unknown };
  try {
    stored = JSON.parse(header.metadata['vdm.spec']) as typeof stored;
  } catch {
    stored = {};
  }
  const dims = stored.dims && typeof stored.dims === 'object' ? stored.dims as Record<string, number> : {};
  return { file, step: header.step, model: typeof stored.model === 'string' ? stored.model : header.metadata['vdm.model'], dims, dir: path.dirname(file) };
}

/** The flags over the spec's diffusion section over the defaults, checked; the messages name the flags. */
export function resolveSampleSettings(graph: Graph, given: Partial<SampleSettings>): SampleSettings {
  const d = graph.diffusion;
  if (!d) throw new SampleSetupError(`model ${graph.model} has no diffusion section: nothing says how to sample it`);
  const bad = (key: keyof SampleSettings, want: string) => new SampleSetupError(`${FLAGS[key]} must be ${want}, got ${String(given[key])}`);
  const whole = (key: 'n' | 'steps', min: number) => {
    const v = given[key];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) throw bad(key, `a whole number of at least ${min}`);
    return v;
  };
  const T = d.schedule.steps;
  const n = whole('n', 1) ?? DEFAULT_SAMPLE.n;
  const sampler = given.sampler ?? d.sampler.kind;
  if (sampler !== 'ddpm' && sampler !== 'ddim' && sampler !== 'euler') throw bad('sampler', 'ddpm, ddim or euler');
  // rectified flow integrates its ODE with euler; the DDPM schedules have no velocity to integrate
  const flow = d.schedule.kind === 'rectified_flow';
  if (flow !== (sampler === 'euler')) {
    throw new SampleSetupError(flow ? `--sampler ${sampler} needs a DDPM schedule; ${graph.model}'s rectified_flow samples with euler`
      : `--sampler euler integrates a rectified flow; ${graph.model}'s ${d.schedule.kind} schedule samples with ddpm or ddim`);
  }
  const steps = whole('steps', 1) ?? Math.min(d.sampler.steps, T);
  if (steps > T) throw new SampleSetupError(`--steps ${steps} is more than the ${T} steps of ${graph.model}'s schedule`);
  if (given.eta !== undefined) {
    if (sampler !== 'ddim') throw new SampleSetupError('--eta applies to --sampler ddim only (DDPM draws the posterior\'s own noise)');
    if (!(given.eta >= 0 && given.eta <= 1)) throw bad('eta', 'between 0 and 1');
  }
  const eta = given.eta ?? (d.sampler.kind === 'ddim' ? d.sampler.eta : 0);
  if (given.guidance !== undefined && given.guidance !== null && !(Number.isFinite(given.guidance) && given.guidance >= 0)) throw bad('guidance', 'a number of at least 0, or none');
  const guidance = given.guidance === undefined ? (d.guidance?.scale ?? null) : given.guidance;
  if (given.seed !== undefined && !(Number.isSafeInteger(given.seed) && given.seed >= 0)) throw bad('seed', 'an integer from 0 to 2^53 - 1');
  if (given.fps !== undefined && !(Number.isFinite(given.fps) && given.fps > 0 && given.fps <= 100)) throw bad('fps', 'a number above 0, at most 100');
  if (given.classId !== undefined && given.classId !== null && !Number.isSafeInteger(given.classId)) throw bad('classId', 'a whole number');
  const list = (key: 'images' | 'textEmbeddings' | 'attrs' | 'trajectories' | 'motions') => {
    const v = given[key] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(key, 'given as text ([NAME=]VALUE)');
    return v;
  };
  return {
    n, steps, sampler, eta: sampler === 'ddim' ? eta : 0, guidance, classId: given.classId ?? null, caption: given.caption ?? null,
    images: list('images'), textEmbeddings: list('textEmbeddings'), attrs: list('attrs'), trajectories: list('trajectories'), motions: list('motions'),
    seed: given.seed ?? DEFAULT_SAMPLE.seed, fps: given.fps ?? DEFAULT_SAMPLE.fps, ema: given.ema ?? DEFAULT_SAMPLE.ema, clip: given.clip ?? DEFAULT_SAMPLE.clip,
    keepFirst: given.keepFirst ?? DEFAULT_SAMPLE.keepFirst,
  };
}

/**
 * The conditioning inputs of `graph` (checked at the sampling batch) for the settings
 * (sample-conditions.ts): class, caption or text embedding, image, scalar and trajectory inputs;
 * under guidance the second half is unconditional (the null class, zero text), as guidance
 * dropout trained it. Notes (an image resized) come back with them.
 */
export const sampleConditions = (graph: Graph, s: SampleSettings): SampleConditions => fillConditions(graph, s);

/** The samples' sizes by position (kinds fix the order: b, c, t, h, w or b, c, h, w). */
export function sampleLayout(graph: Graph, n: number): Omit<SampleVideos, 'data'> {
  const noisy = graph.inputs.find((i) => i.name === graph.diffusion?.noisy_input);
  if (!noisy || (noisy.kind !== 'video' && noisy.kind !== 'image')) throw new SampleSetupError(`model ${graph.model}: samples must be a video or an image input to be written`);
  const size = noisy.axes.map(([, z]) => z);
  const [, c, t, h, w] = noisy.kind === 'video' ? size : [size[0], size[1], 1, size[2], size[3]];
  return { n, c, t, h, w, shape: [n, ...size.slice(1)] };
}

export interface SampleProgressOptions {
  readonly stream?: ProgressStream;
  /** redraw one line in place (default: whether the stream is a terminal) */
  readonly tty?: boolean;
  readonly now?: () => number;
}

/**
 * Progress of the steps on stderr, like vdm train's: `step 12/50  3.1 steps/s  ETA 12s`, redrawn
 * in place on a terminal, else a line at least every twentieth of the run or 30 seconds. The rate
 * leaves out the first step (it compiles the kernels).
 */
export function sampleProgress(total: number, o: SampleProgressOptions = {}) {
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? (() => performance.now());
  const tty = o.tty ?? stream.isTTY === true;
  let first: [number, number] | null = null;
  let lastStep = 0;
  let lastTime = now();
  let drawn = false;
  const line = (done: number, t: number) => {
    const rate = first && done > first[1] && t > first[0] ? ((done - first[1]) * 1000) / (t - first[0]) : NaN;
    return `step ${done}/${total}  ${formatRate(rate)} steps/s  ETA ${formatDuration((total - done) / rate)}`;
  };
  return {
    update(done: number) {
      const t = now();
      first ??= [t, done];
      if (tty) { stream.write(`\r${line(done, t)}\x1b[K`); drawn = true; return; }
      if (done >= total || done - lastStep >= Math.max(1, Math.round(total / 20)) || t - lastTime >= 30_000) {
        stream.write(`${line(done, t)}\n`);
        lastStep = done;
        lastTime = t;
      }
    },
    finish() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}

export interface SampleRun {
  /** the b samples in the noisy input's layout */
  readonly samples: Float32Array;
  readonly seconds: number;
  readonly firstStepSeconds: number;
}

/** Loads the program with the parameters and conditions and runs every step on the GPU. */
export async function runSampling(gpu: Gpu, program: SamplingProgram, params: ReadonlyMap<string, ArrayLike<number>>,
  conditions: SampleConditions, seed: number, progress?: SampleProgressOptions): Promise<SampleRun> {
  const now = progress?.now ?? (() => performance.now());
  const sampler = Sampler.load(gpu, program, params, conditions.inputs);
  const bar = sampleProgress(program.timesteps.length, progress);
  const t0 = now();
  let firstStep = NaN;
  try {
    const samples = await sampler.sample(seed, {
      now,
      progress: (done) => {
        if (Number.isNaN(firstStep)) firstStep = (now() - t0) / 1000;
        bar.update(done);
      },
    });
    return { samples, seconds: (now() - t0) / 1000, firstStepSeconds: firstStep };
  } finally {
    bar.finish();
    sampler.release();
  }
}
