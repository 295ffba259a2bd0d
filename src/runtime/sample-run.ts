// `vdm sample`, short of the GPU and the spec's checking (pipeline.ts's sampleSpec strings these
// together): the checkpoint a file or run folder names and the dims it was trained at, the
// settings (flags over the spec's sampler and guidance), the conditioning inputs at the sampling
// batch (the unconditional half nulled under guidance), and the loop's progress on stderr.
// Everything a user can get wrong is found before a GPU is touched and reported as one
// SampleSetupError (or a CheckpointError) whose message says what to do.
import fs from 'node:fs';
import path from 'node:path';
import type { SamplingProgram } from '../codegen/sampling.ts';
import type { Graph, GraphInput } from '../compiler/ir/graph.ts';
import { findLatest, readCheckpointHeader } from './checkpoint.ts';
import { wordEmbedding } from './data/conditions.ts';
import type { Gpu } from './gpu.ts';
import { formatDuration, formatRate, type ProgressStream } from './progress.ts';
import { Sampler } from './sampler.ts';
import type { SampleVideos } from './video-out.ts';

/** A flag, checkpoint or conditioning input that makes sampling impossible as asked. */
export class SampleSetupError extends Error {
  override name = 'SampleSetupError';
}

export interface SampleSettings {
  /** samples */
  readonly n: number;
  /** timesteps visited (1 .. T) */
  readonly steps: number;
  readonly sampler: 'ddpm' | 'ddim';
  /** DDIM's eta */
  readonly eta: number;
  /** classifier-free guidance scale; null: none (the conditional model alone, at batch n) */
  readonly guidance: number | null;
  /** the class of every sample; null: sample j gets class j mod classes */
  readonly classId: number | null;
  /** the caption a text input is embedded from */
  readonly caption: string | null;
  readonly seed: number;
  /** frames per second of the GIF and MP4 */
  readonly fps: number;
  /** the checkpoint's EMA weights (when it has them) */
  readonly ema: boolean;
  /** clip the predicted x0 to [-1, 1] at every step */
  readonly clip: boolean;
}

export const DEFAULT_SAMPLE = { n: 4, seed: 0, fps: 8, ema: true, clip: true } as const;

const FLAGS: Record<keyof SampleSettings, string> = {
  n: '--n', steps: '--steps', sampler: '--sampler', eta: '--eta', guidance: '--guidance', classId: '--class', caption: '--caption',
  seed: '--seed', fps: '--fps', ema: '--ema', clip: '--clip',
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
  if (sampler !== 'ddpm' && sampler !== 'ddim') throw bad('sampler', 'ddpm or ddim');
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
  return {
    n, steps, sampler, eta: sampler === 'ddim' ? eta : 0, guidance, classId: given.classId ?? null, caption: given.caption ?? null,
    seed: given.seed ?? DEFAULT_SAMPLE.seed, fps: given.fps ?? DEFAULT_SAMPLE.fps, ema: given.ema ?? DEFAULT_SAMPLE.ema, clip: given.clip ?? DEFAULT_SAMPLE.clip,
  };
}

/** The model's batch when sampling n: 2n under guidance (conditional, then unconditional). */
export const modelBatchOf = (s: Pick<SampleSettings, 'n' | 'guidance'>) => (s.guidance === null ? s.n : 2 * s.n);

export interface SampleConditions {
  /** every model input besides the noisy one and the timestep, at the model's batch */
  readonly inputs: ReadonlyMap<string, Float32Array | Int32Array>;
  /** the class of each sample, when the model takes one */
  readonly labels: Int32Array | null;
}

const describe = (i: GraphInput) => `'${i.name}' (${i.kind})`;

/**
 * The conditioning inputs of `graph` (checked at the sampling batch) for the settings: a class
 * label (--class, else j mod classes), a text input embedded from --caption; under guidance the
 * second half is unconditional (the null class, zero text), as guidance dropout trained it.
 */
export function sampleConditions(graph: Graph, s: SampleSettings): SampleConditions {
  const d = graph.diffusion!;
  const noisy = graph.inputs.find((i) => i.name === d.noisy_input)!;
  const time = graph.inputs.find((i) => i.kind === 'timestep');
  if (!time) throw new SampleSetupError(`model ${graph.model} has no timestep input: the denoiser must see t`);
  const rest = graph.inputs.filter((i) => i !== noisy && i !== time);
  const labelInputs = rest.filter((i) => i.kind === 'label');
  const textInputs = rest.filter((i) => i.kind === 'text');
  const unfillable = [...rest.filter((i) => i.kind !== 'label' && i.kind !== 'text'), ...labelInputs.slice(1), ...textInputs.slice(1)];
  if (unfillable.length) {
    throw new SampleSetupError(`model ${graph.model} takes ${unfillable.map(describe).join(', ')}, which vdm sample cannot fill yet `
      + '(it fills one class label, from --class, and one text input, from --caption)');
  }
  const label = labelInputs[0];
  const text = textInputs[0];
  const guided = s.guidance !== null;
  if (s.classId !== null && !label) throw new SampleSetupError(`--class: model ${graph.model} takes no class label`);
  if (s.caption !== null && !text) throw new SampleSetupError(`--caption: model ${graph.model} takes no text input`);
  if (guided && !(label?.options.null === true) && !text) {
    throw new SampleSetupError(`guidance needs a condition to drop: model ${graph.model} has ${label ? `input ${describe(label)} without a null class (null: true)` : 'no class label or text input'}; `
      + 'sample with --guidance none');
  }
  const B = modelBatchOf(s);
  const inputs = new Map<string, Float32Array | Int32Array>();
  let labels: Int32Array | null = null;
  if (label) {
    const classes = Number(label.options.classes);
    if (s.classId !== null && !(s.classId >= 0 && s.classId < classes)) {
      throw new SampleSetupError(`--class ${s.classId} is not a class of model ${graph.model}: input '${label.name}' has classes 0 to ${classes - 1}`);
    }
    if (label.axes.reduce((n, [, z]) => n * z, 1) !== B) throw new SampleSetupError(`input ${describe(label)} has ${label.axes.map(([a, z]) => `${a}=${z}`).join(', ')}; vdm sample fills one class per sample`);
    labels = Int32Array.from({ length: s.n }, (_, j) => s.classId ?? j % classes);
    const values = new Int32Array(B);
    values.set(labels);
    // unconditional: the null class; a label without one stays (the text is what is dropped)
    if (guided) values.set(label.options.null === true ? new Int32Array(s.n).fill(classes) : labels, s.n);
    inputs.set(label.name, values);
  }
  if (text) {
    if (s.caption === null) throw new SampleSetupError(`model ${graph.model} takes text input '${text.name}': pass --caption "TEXT" (embedded as vdm train embeds its captions)`);
    const [b, l, c] = text.axes.map(([, z]) => z);
    if (text.axes.length !== 3 || b !== B) throw new SampleSetupError(`input ${describe(text)} must be [b, l, c] to be filled from --caption`);
    const values = new Float32Array(b * l * c);
    const words = s.caption.split(/\s+/).filter(Boolean).slice(0, l);
    for (let j = 0; j < s.n; j++) words.forEach((word, k) => values.set(wordEmbedding(word, c), (j * l + k) * c));
    inputs.set(text.name, values); // the unconditional half stays zero
  }
  return { inputs, labels };
}

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
