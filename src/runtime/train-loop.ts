// The training loop: a lowered training step (codegen/training.ts) run step after step on the
// adapter by the Trainer, fed from a dataset, with checkpoints, a JSONL log, a loss curve and
// progress. Two calls, so that everything a user can get wrong is found before a GPU is touched:
//   prepareTraining(graph, options)  settings (the checkpoint's under the ones given), the folder,
//                                    the checkpoint to resume, the dataset and what it must fill
//   train(gpu, program, prepared)    the loop
//
// Step k (from 1) reads batch k - 1 of the dataset, draws its noise, timesteps and condition
// dropout from Philox keyed by (seed, k, stream) and takes learning rate lr(k): everything a step
// does is a function of the step number and the state the previous one left, so a run resumed from
// a checkpoint at step k continues exactly as the uninterrupted run would have, bit for bit.
//
// Nothing is read back per step. Every `logEvery` steps the loss, gradient norm and non-finite flag
// are read and logged; every `every` steps (and at the end, or when stopped) a checkpoint is saved
// too. A non-finite gradient seen at a read ends the run with the step window and the parameter
// it was first seen in, and nothing is saved: the last checkpoint stays the last good one.
// Stopping: `signal` (an AbortSignal; the CLI aborts it on SIGINT/SIGTERM) ends the run after the
// step in flight, with a checkpoint of that step.
import fs from 'node:fs';
import path from 'node:path';
import { learningRate, type AdamWConfig } from '../codegen/kernels/optimizer.ts';
import { philoxUniform } from '../codegen/kernels/philox.ts';
import { STREAMS, type TrainingProgram } from '../codegen/training.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import type { Json } from '../compiler/ir/json.ts';
import { initParams } from '../compiler/reference/evaluate.ts';
import { listCheckpoints, resumeLatest, saveCheckpoint, type LoadedCheckpoint } from './checkpoint.ts';
import { conditionTensors, needsFacts } from './data/conditions.ts';
import { dataNeeds, openDataset, type DataNeeds, type VideoDataset } from './data/index.ts';
import type { Gpu } from './gpu.ts';
import { writeLossCurve } from './loss-curve.ts';
import { createProgress, type ProgressStream } from './progress.ts';
import { readTrainLog, TrainLog } from './train-log.ts';
import { Trainer } from './trainer.ts';

/** Files a run writes beside its checkpoints. */
export const TRAIN_LOG_FILE = 'train.jsonl';
export const LOSS_CURVE_FILE = 'loss.svg';

/** What a run is set up with; the keys are the CLI's flags. */
export interface TrainSettings {
  /** `synthetic` or a folder of clips */
  readonly data: string;
  /** the step training ends at (a resumed run continues to it) */
  readonly steps: number;
  /** peak learning rate, after a linear warm-up, then cosine decay to 0 at `steps` */
  readonly lr: number;
  readonly warmup: number;
  /** seeds the initialisation, the synthetic data, the noise, timesteps and condition dropout */
  readonly seed: number;
  /** checkpoint (and log) every this many steps */
  readonly every: number;
  /** read the loss for the log and the curve every this many steps */
  readonly logEvery: number;
  readonly ema: boolean;
  /** the EMA's decay once warmed up: min(emaDecay, (1 + step) / (10 + step)) at each step */
  readonly emaDecay: number;
  /** skip clips that do not decode instead of stopping */
  readonly skipBad: boolean;
}

export const DEFAULT_SETTINGS = { data: 'synthetic', steps: 1000, lr: 1e-4, seed: 0, every: 100, logEvery: 10, ema: true, emaDecay: 0.9999, skipBad: false } as const;
/** Warm-up when none is given: a tenth of the run, at most 100 steps. */
export const defaultWarmup = (steps: number) => Math.min(100, Math.floor(steps / 10));

export interface TrainOptions {
  /** the folder of checkpoints, log and curve */
  readonly out: string;
  /** continue from the newest checkpoint in `out` (or start, when it has none) */
  readonly resume?: boolean;
  /** settings given explicitly; the others come from the checkpoint when resuming, else the defaults */
  readonly settings?: Partial<TrainSettings>;
  /** AdamW's hyper-parameters besides the rate (defaults: codegen/kernels/optimizer.ts) */
  readonly adamw?: AdamWConfig;
  /** checkpoints kept, newest first (default 3) */
  readonly keep?: number;
}

/** A setting, folder or input that makes the run impossible as asked. */
export class TrainSetupError extends Error {
  override name = 'TrainSetupError';
}

/** A non-finite loss or gradient: the run stopped without saving. */
export class DivergedError extends Error {
  override name = 'DivergedError';
  constructor(message: string, readonly from: number, readonly to: number, readonly path: string | null, readonly checkpoint: string | null) {
    super(message);
  }
}

export interface PreparedTraining {
  readonly graph: Graph;
  readonly out: string;
  readonly settings: TrainSettings;
  /** the checkpoint to continue from; null for a fresh run */
  readonly checkpoint: LoadedCheckpoint | null;
  readonly dataset: VideoDataset;
  readonly needs: DataNeeds;
  readonly batch: number;
  readonly adamw: AdamWConfig;
  readonly keep: number;
  /** things to tell the user: settings taken over from the checkpoint, overrides, skipped files */
  readonly notes: readonly string[];
}

const FLAGS: Record<keyof TrainSettings, string> = {
  data: '--data', steps: '--steps', lr: '--lr', warmup: '--warmup', seed: '--seed', every: '--every', logEvery: '--log-every', ema: '--ema', emaDecay: '--ema-decay', skipBad: '--skip-bad',
};

/** Checks one setting; the message names its flag. */
function checkSetting<K extends keyof TrainSettings>(key: K, value: unknown): TrainSettings[K] {
  const bad = (want: string) => new TrainSetupError(`${FLAGS[key]} must be ${want}, got ${String(value)}`);
  switch (key) {
    case 'data':
      if (typeof value !== 'string' || value === '') throw bad('`synthetic` or a folder');
      break;
    case 'steps': case 'every': case 'logEvery':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw bad('a positive integer');
      break;
    case 'warmup':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad('a non-negative integer');
      break;
    case 'seed':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad('an integer from 0 to 2^53 - 1');
      break;
    case 'lr':
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw bad('a positive number');
      break;
    case 'emaDecay':
      if (typeof value !== 'number' || !(value >= 0 && value < 1)) throw bad('a number in [0, 1), e.g. 0.9999');
      break;
    case 'ema': case 'skipBad':
      if (typeof value !== 'boolean') throw bad('true or false');
      break;
  }
  return value as TrainSettings[K];
}

/** The checkpoint's settings (as saved in its options), those that read back well-formed. */
function savedSettings(options: Readonly<Record<string, Json>>): Partial<TrainSettings> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(FLAGS) as (keyof TrainSettings)[]) {
    if (!(key in options)) continue;
    try {
      out[key] = checkSetting(key, options[key]);
    } catch {
      // a malformed value falls back to the default rather than locking the run out
    }
  }
  return out as Partial<TrainSettings>;
}

/** Given settings over the checkpoint's over the defaults; notes where a given one changes the checkpoint's. */
export function resolveSettings(given: Partial<TrainSettings>, saved: Partial<TrainSettings> | null, notes: string[] = []): TrainSettings {
  const pick = <K extends keyof TrainSettings>(key: K, fallback: TrainSettings[K]): TrainSettings[K] => {
    const g = given[key];
    if (g !== undefined) {
      const value = checkSetting(key, g);
      if (saved && saved[key] !== undefined && saved[key] !== value) notes.push(`${FLAGS[key]} ${String(value)} replaces the checkpoint's ${String(saved[key])}`);
      return value;
    }
    return saved?.[key] ?? fallback;
  };
  const steps = pick('steps', DEFAULT_SETTINGS.steps);
  const settings: TrainSettings = {
    data: pick('data', DEFAULT_SETTINGS.data),
    steps,
    lr: pick('lr', DEFAULT_SETTINGS.lr),
    warmup: pick('warmup', defaultWarmup(steps)),
    seed: pick('seed', DEFAULT_SETTINGS.seed),
    every: pick('every', DEFAULT_SETTINGS.every),
    logEvery: pick('logEvery', DEFAULT_SETTINGS.logEvery),
    ema: pick('ema', DEFAULT_SETTINGS.ema),
    emaDecay: pick('emaDecay', DEFAULT_SETTINGS.emaDecay),
    skipBad: pick('skipBad', DEFAULT_SETTINGS.skipBad),
  };
  if (settings.warmup > settings.steps) throw new TrainSetupError(`--warmup ${settings.warmup} is longer than the run (--steps ${settings.steps})`);
  return settings;
}

/**
 * Condition dropout for classifier-free guidance: label j of step `step` becomes the null class
 * with probability p, decided by Philox (seed, step, dropout stream) at j.
 */
export function dropLabels(labels: Int32Array, nullClass: number, p: number, seed: number, step: number): Int32Array {
  if (!(p > 0)) return labels;
  const u = philoxUniform({ seed, step, stream: STREAMS.dropout }, labels.length);
  return labels.map((l, j) => (u[j] < p ? nullClass : l));
}

const elements = (axes: readonly (readonly [string, number])[]) => axes.reduce((n, [, s]) => n * s, 1);

/** The inputs besides the noisy sample and the (first) timestep: each one the data must fill. */
function checkInputs(graph: Graph, needs: DataNeeds): void {
  const time = graph.inputs.find((i) => i.kind === 'timestep');
  const filled = new Set([needs.sample.input, time?.name, needs.label?.input, needs.scalar?.input, ...needs.conditions.map((c) => c.input)]);
  const unfilled = graph.inputs.filter((i) => !filled.has(i.name));
  if (unfilled.length) {
    const list = unfilled.map((i) => `'${i.name}' (${i.kind})`).join(', ');
    throw new TrainSetupError(`model ${graph.model} has input${unfilled.length > 1 ? 's' : ''} ${list} that the training data cannot fill: `
      + 'vdm train provides the clip, the timestep, one class label, one scalar (speed), the first frame as an image the clip\'s size, and on synthetic data a trajectory, a caption embedding and a motion map per sample');
  }
  for (const name of [needs.label?.input, needs.scalar?.input]) {
    const input = name === undefined ? undefined : graph.inputs.find((i) => i.name === name);
    if (input && elements(input.axes) !== needs.sample.batch) {
      throw new TrainSetupError(`input '${input.name}' has ${elements(input.axes)} values per batch; vdm train fills one per sample (${needs.sample.batch})`);
    }
  }
}

/**
 * Everything short of the GPU: resolves the settings, refuses a fresh run into a folder that holds
 * checkpoints, loads the checkpoint to resume (SpecMismatchError for another spec's), opens the
 * dataset (DataError for a folder that cannot be read) and checks the model's inputs can be filled.
 */
export async function prepareTraining(graph: Graph, options: TrainOptions): Promise<PreparedTraining> {
  const out = options.out;
  const notes: string[] = [];
  const stat = fs.statSync(out, { throwIfNoEntry: false });
  if (stat && !stat.isDirectory()) throw new TrainSetupError(`--out ${out} is a file; name a folder for the checkpoints`);
  let checkpoint: LoadedCheckpoint | null = null;
  if (options.resume) {
    checkpoint = resumeLatest(out, graph, (w) => notes.push(w));
    if (!checkpoint) notes.push(`${out} holds no checkpoint to resume: starting at step 0`);
  } else {
    const existing = listCheckpoints(out);
    if (existing.length) {
      const last = existing[existing.length - 1];
      throw new TrainSetupError(`${out} already holds checkpoints (the newest is ${path.basename(last.file)}): continue that run with --resume, or pass another --out`);
    }
  }
  const saved = checkpoint ? { ...savedSettings(checkpoint.options), seed: checkpoint.rng.seed } : null;
  const settings = resolveSettings(options.settings ?? {}, saved, notes);
  if (checkpoint && checkpoint.step > settings.steps) {
    throw new TrainSetupError(`the checkpoint is at step ${checkpoint.step}, past --steps ${settings.steps}: pass a larger --steps to train further`);
  }
  let needs: DataNeeds;
  try {
    needs = dataNeeds(graph);
  } catch (e) {
    throw new TrainSetupError((e as Error).message);
  }
  checkInputs(graph, needs);
  const facts = needsFacts(needs);
  if (settings.data !== 'synthetic' && facts.length) {
    const list = facts.map((c) => `'${c.input}' (${c.kind})`).join(', ');
    throw new TrainSetupError(`model ${graph.model} takes ${list}, which only the synthetic data can fill (from its objects' tracks, captions and motion): train it with --data synthetic`);
  }
  let dataset: VideoDataset;
  try {
    dataset = await openDataset(settings.data, needs.sample.shape, {
      seed: settings.seed,
      skipBad: settings.skipBad,
      ...(needs.label ? { label: { classes: needs.label.classes } } : {}),
      ...(needs.scalar ? { scalar: { range: needs.scalar.range } } : {}),
    });
  } catch (e) {
    if (e instanceof RangeError) throw new TrainSetupError(e.message);
    throw e;
  }
  notes.push(...dataset.problems);
  return {
    graph, out, settings, checkpoint, dataset, needs, batch: needs.sample.batch, adamw: { emaDecay: settings.emaDecay, ...options.adamw }, keep: options.keep ?? 3, notes,
  };
}

export interface TrainHooks {
  /** Stops the run after the step in flight, with a checkpoint. */
  readonly signal?: AbortSignal;
  /** Progress and messages during the loop (default process.stderr). */
  readonly stream?: ProgressStream;
  /** Draw a progress bar (default: whether the stream is a terminal). */
  readonly tty?: boolean;
  /** Milliseconds on a monotonic clock (default performance.now). */
  readonly now?: () => number;
}

export interface TrainResult {
  readonly model: string;
  /** finished: reached `steps`; stopped: the signal ended it early */
  readonly status: 'finished' | 'stopped';
  /** the step the run started after (the checkpoint's; 0 for a fresh run) */
  readonly startStep: number;
  /** the last step taken */
  readonly step: number;
  readonly settings: TrainSettings;
  /** the newest checkpoint this run saved; null when it saved none */
  readonly checkpoint: string | null;
  readonly log: string;
  readonly curve: string;
  /** the first and last losses this run read */
  readonly firstLoss: { readonly step: number; readonly loss: number } | null;
  readonly lastLoss: { readonly step: number; readonly loss: number } | null;
  /** wall-clock seconds of the loop, and of its first step alone (which compiles the kernels) */
  readonly seconds: number;
  readonly firstStepSeconds: number;
  /** steps per second after the first step; NaN with fewer than two */
  readonly stepsPerSecond: number;
  /** clips skipped under skipBad */
  readonly skipped: number;
}

/** The result of a resumed run whose checkpoint is at --steps already (no GPU needed); null otherwise. */
export function nothingToDo(prepared: PreparedTraining): TrainResult | null {
  const at = prepared.checkpoint?.step;
  if (at === undefined || at < prepared.settings.steps) return null;
  return {
    model: prepared.graph.model, status: 'finished', startStep: at, step: at, settings: prepared.settings, checkpoint: null,
    log: path.join(prepared.out, TRAIN_LOG_FILE), curve: path.join(prepared.out, LOSS_CURVE_FILE),
    firstLoss: null, lastLoss: null, seconds: 0, firstStepSeconds: NaN, stepsPerSecond: NaN, skipped: 0,
  };
}

/** Runs `program` (lowered from prepared.graph, with its `ema` setting) to prepared.settings.steps. */
export async function train(gpu: Gpu, program: TrainingProgram, prepared: PreparedTraining, hooks: TrainHooks = {}): Promise<TrainResult> {
  const { graph, out, settings, checkpoint, dataset, needs, batch } = prepared;
  const now = hooks.now ?? (() => performance.now());
  const startStep = checkpoint?.step ?? 0;
  const init = checkpoint
    ? { params: checkpoint.params, ema: checkpoint.ema, m: checkpoint.adam?.m, v: checkpoint.adam?.v }
    : { params: initParams(graph, settings.seed, true) };
  const logFile = path.join(out, TRAIN_LOG_FILE);
  const curveFile = path.join(out, LOSS_CURVE_FILE);
  const trainer = Trainer.load(gpu, program, init, prepared.adamw);
  let log: TrainLog;
  try {
    fs.mkdirSync(out, { recursive: true });
    log = TrainLog.open(logFile, { resumeStep: startStep });
  } catch (e) {
    trainer.release();
    const code = (e as NodeJS.ErrnoException).code;
    throw code ? new TrainSetupError(`--out ${out}: cannot write there (${code})`) : e;
  }
  // A resumed run continues the clock of the one it resumes.
  const before = readTrainLog(logFile).at(-1)?.seconds;
  const offset = startStep > 0 && Number.isFinite(before) ? before! : 0;
  const progress = createProgress({ total: settings.steps, startStep, stream: hooks.stream, tty: hooks.tty, now });
  const schedule = { peak: settings.lr, warmupSteps: settings.warmup, totalSteps: settings.steps };
  const dropout = graph.diffusion?.guidance?.dropout ?? 0;
  const label = needs.label;
  if (dropout > 0 && label && !label.null) progress.log(`note: input '${label.input}' has no null class, so guidance dropout is not applied`);
  const options: Record<string, Json> = { ...settings, batch };
  const started = now();
  let firstStepMs = NaN;
  let lastRead = startStep;
  let lastSaved: string | null = null;
  let firstLoss: TrainResult['firstLoss'] = null;
  let lastLoss: TrainResult['lastLoss'] = null;
  let reported = dataset.problems.length; // those found on opening were notes already
  let step = startStep;
  let status: TrainResult['status'] = 'finished';
  try {
    if (hooks.signal?.aborted) status = 'stopped';
    for (let k = startStep + 1; k <= settings.steps && status === 'finished'; k++) {
      const t0 = now();
      const data = await dataset.batch(k - 1, batch);
      for (; reported < dataset.problems.length; reported++) progress.log(`skipped: ${dataset.problems[reported]}`);
      const inputs = new Map<string, Float32Array | Int32Array>();
      if (label) inputs.set(label.input, label.null ? dropLabels(data.label!, label.classes, dropout, settings.seed, k) : data.label!);
      if (needs.scalar) inputs.set(needs.scalar.input, data.scalar!);
      const dropped = dropout > 0 ? philoxUniform({ seed: settings.seed, step: k, stream: STREAMS.dropout }, batch) : null;
      for (const [name, tensor] of conditionTensors(needs, data, dropped ? (j) => dropped[j] < dropout : undefined)) inputs.set(name, tensor);
      const lr = learningRate(schedule, k);
      await trainer.step(data.video, inputs, k, lr, settings.seed);
      step = k;
      if (k === startStep + 1) firstStepMs = now() - t0;
      if (hooks.signal?.aborted) status = 'stopped';
      const save = k % settings.every === 0 || k === settings.steps || status === 'stopped';
      if (save || k % settings.logEvery === 0) {
        const stats = await trainer.stats();
        const seconds = offset + (now() - started) / 1000;
        log.append({ step: k, loss: stats.loss, grad_norm: stats.gradNorm, lr, seconds });
        if (stats.nonfinite.count > 0 || !Number.isFinite(stats.loss)) {
          log.sync();
          writeLossCurve(curveFile, readTrainLog(logFile), { spec: graph.model });
          const window = lastRead + 1 === k ? `at step ${k}` : `between steps ${lastRead + 1} and ${k}`;
          const what = stats.nonfinite.count > 0
            ? `a non-finite gradient ${window}, first in ${stats.nonfinite.path ?? 'an unknown parameter'} (${stats.nonfinite.count} values)`
            : `a non-finite loss (${stats.loss}) ${window}`;
          const last = lastSaved ?? checkpoint?.file ?? null;
          const next = last ? `the last good checkpoint is ${last}; --resume from it with a lower --lr (or a longer --warmup)`
            : 'there is no checkpoint before it; start again with a lower --lr (or a longer --warmup)';
          throw new DivergedError(`training diverged: ${what}; nothing was saved, ${next}`, lastRead + 1, k, stats.nonfinite.path, last);
        }
        lastRead = k;
        lastLoss = { step: k, loss: stats.loss };
        firstLoss ??= lastLoss;
        if (save) {
          log.sync(); // the log reaches the checkpoint's step before the checkpoint exists
          const state = await trainer.state();
          lastSaved = saveCheckpoint(out, graph, {
            step: k, params: state.params, ema: state.ema, adam: { m: state.m, v: state.v },
            rng: { seed: settings.seed, step: k },
            data: { source: settings.data, batch_index: k, batch_size: batch, samples: k * batch, skipped: dataset.skipped },
            options,
          }, { keep: prepared.keep }).file;
          writeLossCurve(curveFile, readTrainLog(logFile), { spec: graph.model });
          progress.log(`step ${k}: saved ${lastSaved}`);
        }
      }
      // the bar moves every step, with the latest loss read (none before the first read)
      if (lastLoss) progress.update(k, { loss: lastLoss.loss, lr });
    }
  } finally {
    progress.finish();
    log.close();
    trainer.release();
  }
  // A run that had nothing left to do still leaves a curve of what its log holds.
  if (!lastSaved) writeLossCurve(curveFile, readTrainLog(logFile), { spec: graph.model });
  const seconds = (now() - started) / 1000;
  const done = step - startStep;
  return {
    model: graph.model, status, startStep, step, settings, checkpoint: lastSaved, log: logFile, curve: curveFile,
    firstLoss, lastLoss, seconds,
    firstStepSeconds: firstStepMs / 1000,
    stepsPerSecond: done >= 2 ? (done - 1) / (seconds - firstStepMs / 1000) : NaN,
    skipped: dataset.skipped,
  };
}
