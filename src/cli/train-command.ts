// `vdm train SPEC`: trains a model on the WebGPU adapter (the loop is runtime/train-loop.ts, the
// steps before it pipeline.ts's trainSpec). This file parses and checks the flags, turns SIGINT
// and SIGTERM into an AbortSignal the loop stops at (after the step in flight, with a checkpoint),
// prints a header, notes and a summary, and maps every expected failure to one message and exit 1.
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PipelineError, trainSpec, tuningStats, type TrainStart } from '../pipeline.ts';
import { NoAdapterError } from '../runtime/adapter.ts';
import { formatRate } from '../runtime/progress.ts';
import { CheckpointError } from '../runtime/checkpoint.ts';
import { DataError } from '../runtime/data/index.ts';
import { checkWritableFolder, FileError } from '../runtime/files.ts';
import { TensorTooLargeError } from '../runtime/limits.ts';
import { SafetensorsError } from '../runtime/safetensors.ts';
import { TrainLogError } from '../runtime/train-log.ts';
import { DivergedError, TrainSetupError, type TrainResult, type TrainSettings } from '../runtime/train-loop.ts';
import { parseDimArgs } from './dim-args.ts';
import { printDiagnostics, tuningLine } from './report.ts';

export interface TrainArgs {
  readonly spec: string;
  readonly data?: string;
  readonly steps?: number;
  readonly batch?: number;
  readonly lr?: number;
  readonly warmup?: number;
  readonly out?: string;
  readonly resume?: boolean;
  readonly seed?: number;
  readonly dim?: readonly (string | number)[];
  readonly every?: number;
  readonly 'log-every'?: number;
  readonly 'skip-bad'?: boolean;
  readonly ema?: boolean;
  readonly 'ema-decay'?: number;
  readonly recompute?: boolean;
  readonly root?: string;
}

/** Exit statuses of a run stopped by a signal: 128 + the signal's number, as shells report them. */
export const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

const DESCRIBE = 'train a model on the WebGPU adapter: checkpoints, a JSONL log and a loss curve in --out';

// Lines under 80 columns: yargs wraps at 80 and would break longer ones mid-sentence.
const EPILOGUE = `What it does: each step takes a batch of clips (--data), noises it at random
timesteps of the spec's diffusion schedule (uniform, or as its \`timesteps\`
entry says) and takes one AdamW step on the
model's loss (gradients clipped to norm 1, an EMA of the weights kept: its
decay at step k is min(--ema-decay, (1 + k) / (10 + k)), so a short run's EMA
averages its last few hundred steps). The
learning rate rises linearly over --warmup steps to --lr, then follows a cosine
down to 0 at --steps.

Outputs, in --out (default: runs/<spec name>):
  step-NNNNNN.safetensors  a checkpoint every --every steps and at the end, the
                           last 3 kept: weights by dotted path (what
                           \`vdm run --params\` reads), ema.*, adam.m.*, adam.v.*
  latest.json              names the newest checkpoint
  train.jsonl              step, loss, grad_norm, lr, seconds (--log-every)
  loss.svg                 the loss curve; open it in a browser

Stopping: Ctrl-C (SIGINT) or SIGTERM finishes the step in flight, saves a
checkpoint and exits with 130 (SIGINT) or 143 (SIGTERM); a second Ctrl-C quits
at once without saving. A loss or gradient that turns NaN or Inf stops the run
(exit 1), names the parameter and leaves the last checkpoint as it was.

Resuming: --resume continues from the newest checkpoint in --out with the
settings it was saved with (flags given again replace them) and takes exactly
the steps the uninterrupted run would have taken, bit for bit. Without --resume
a folder that already holds checkpoints is refused.

Data: \`synthetic\` (moving shapes; class label = shape and direction, scalar =
speed) or a folder of .gif/.mp4/.webm clips or PNG-frame folders, with a
labels.csv when the model takes a label or a scalar. An image input of the
clip's size gets the clip's first frame. On synthetic data a trajectory input
gets points around the object's centre per frame, a motion input each object's
displacement to the next frame at its pixels (0 on the background), and a text
input one embedding row per word of a caption ("red square moving up-left";
fixed random word vectors, not a language model). With guidance dropout in the diffusion section,
labels become the null class and text embeddings zero at that rate.`;

export const trainCommand = (done: (code: number) => void): CommandModule<object, TrainArgs> => ({
  command: 'train <spec>',
  describe: DESCRIBE,
  builder: (y: Argv) =>
    y.usage(`vdm train <spec> [options]\n\n${DESCRIBE}`)
      .positional('spec', { type: 'string', demandOption: true, describe: 'a .vdm file with a model and a diffusion section' })
      .option('data', { type: 'string', requiresArg: true, describe: 'synthetic, or a folder of clips [default: synthetic]' })
      .option('steps', { type: 'number', requiresArg: true, describe: 'train to this step [default: 1000]' })
      .option('batch', { type: 'number', requiresArg: true, describe: 'clips per step (sets the dim b) [default: the spec\'s b]' })
      .option('lr', { type: 'number', requiresArg: true, describe: 'peak learning rate [default: 1e-4]' })
      .option('warmup', { type: 'number', requiresArg: true, describe: 'warm-up steps [default: a tenth of --steps, at most 100]' })
      .option('out', { alias: 'o', type: 'string', requiresArg: true, describe: 'folder for checkpoints, log and curve [default: runs/<spec name>]' })
      .option('resume', { type: 'boolean', describe: 'continue from the newest checkpoint in --out' })
      .option('seed', { type: 'number', requiresArg: true, describe: 'seed of the initialisation, data, noise and dropout [default: 0]' })
      .option('every', { type: 'number', requiresArg: true, describe: 'save a checkpoint every N steps [default: 100]' })
      .option('log-every', { type: 'number', requiresArg: true, describe: 'log the loss every N steps [default: 10]' })
      .option('skip-bad', { type: 'boolean', describe: 'skip clips that do not decode, instead of stopping' })
      .option('ema', { type: 'boolean', describe: 'keep an EMA of the weights (--no-ema: do not) [default: true]' })
      .option('ema-decay', { type: 'number', describe: 'the EMA\'s decay, reached after a warm-up of min(decay, (1 + step) / (10 + step)) [default: 0.9999]' })
      .option('recompute', { type: 'boolean', describe: 'run each block\'s forward again before its backward: less memory, same numbers (vdm info --train shows both)' })
      .option('dim', { type: 'string', requiresArg: true, describe: 'override a dim: --dim NAME=SIZE (repeatable)' })
      .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' })
      .example('vdm train specs/tiny-video-dit.vdm', 'train on synthetic clips into runs/tiny-video-dit')
      .example('vdm train specs/tiny-video-dit.vdm --steps 5000 --lr 3e-4 --batch 4', 'a longer run, 4 clips per step')
      .example('vdm train specs/tiny-video-dit.vdm --resume', 'continue after Ctrl-C or a crash')
      .example('vdm train my.vdm --data clips/ --out runs/mine --every 500', 'your own clips')
      .epilogue(EPILOGUE) as unknown as Argv<TrainArgs>,
  handler: async (argv) => {
    // yargs reports unknown flags only after the handler has run: do not start a run for them.
    if (Object.keys(argv).some((k) => !KNOWN_KEYS.has(k))) { done(2); return; }
    done(await trainMain(argv));
  },
});

const KNOWN_KEYS = new Set(['_', '$0', 'spec', 'data', 'steps', 'batch', 'lr', 'warmup', 'out', 'o', 'resume', 'seed', 'every',
  'log-every', 'logEvery', 'skip-bad', 'skipBad', 'ema', 'ema-decay', 'emaDecay', 'recompute', 'dim', 'root', 'help', 'h']);

const asList = (v: unknown): (string | number)[] | undefined =>
  (v === undefined ? undefined : Array.isArray(v) ? v : [v as string | number]);

const fmt = (x: number) => (Number.isFinite(x) ? (x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toPrecision(4)) : String(x));

/** The flags that name the run's model (dims) and folder: what --resume needs repeated. */
function resumeCommand(args: TrainArgs, out: string): string {
  const dims = (asList(args.dim) ?? []).map((d) => ` --dim ${d}`).join('');
  return `vdm train ${args.spec}${args.batch !== undefined ? ` --batch ${args.batch}` : ''}${dims} --out ${out} --resume`;
}

function header(info: TrainStart): string {
  const { prepared: p, parameters, gpu } = info;
  const s = p.settings;
  const from = p.checkpoint ? `resuming at step ${p.checkpoint.step} from ${p.checkpoint.file}\n` : '';
  return `${from}training ${p.graph.model} (${parameters.toLocaleString('en-US')} parameters) on ${gpu.info.description || gpu.info.vendor || 'the adapter'}: `
    + `steps ${(p.checkpoint?.step ?? 0) + 1}-${s.steps}, batch ${p.batch}, ${s.data === 'synthetic' ? 'synthetic data' : `data ${s.data}`}, `
    + `lr ${s.lr} (warm-up ${s.warmup}, cosine to 0), seed ${s.seed}${s.ema ? '' : ', no EMA'}; checkpoints every ${s.every} steps in ${p.out}\n`;
}

function summary(r: TrainResult, args: TrainArgs, out: string, signal: string | null): string {
  const lines: string[] = [];
  const done = r.step - r.startStep;
  if (r.status === 'stopped') lines.push(`stopped by ${signal ?? 'a signal'} at step ${r.step} of ${r.settings.steps}; continue with: ${resumeCommand(args, out)}`);
  else if (done === 0) lines.push(`already at step ${r.step} of ${r.settings.steps}: nothing to do (pass a larger --steps to train further)`);
  else lines.push(`finished: step ${r.step} of ${r.settings.steps}`);
  if (r.lastLoss) lines.push(`loss ${fmt(r.lastLoss.loss)} at step ${r.lastLoss.step}${r.firstLoss && r.firstLoss !== r.lastLoss ? ` (${fmt(r.firstLoss.loss)} at step ${r.firstLoss.step})` : ''}`);
  if (done > 0) {
    const rate = Number.isFinite(r.stepsPerSecond) ? `, then ${formatRate(r.stepsPerSecond)} steps/s` : '';
    lines.push(`${done} step${done === 1 ? '' : 's'} in ${r.seconds.toFixed(1)} s: ${r.firstStepSeconds.toFixed(1)} s for the first (it compiles the kernels)${rate}`);
  }
  if (r.skipped) lines.push(`skipped ${r.skipped} clip${r.skipped === 1 ? '' : 's'} that did not decode`);
  if (r.checkpoint) lines.push(`checkpoint: ${r.checkpoint}`);
  lines.push(`log:        ${r.log}`, `loss curve: ${r.curve}`);
  return `${lines.join('\n')}\n`;
}

/** A whole number from the command line, or a message saying what it must be. */
function wholeArg(name: string, v: number | undefined): string | null {
  return v === undefined || (Number.isSafeInteger(v) && v >= 1) ? null : `--${name} must be a positive integer, got ${v}`;
}

export async function trainMain(args: TrainArgs): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`vdm train: ${message}\n`);
    return 1;
  };
  const { dims, errors } = parseDimArgs(asList(args.dim));
  if (errors.length) {
    printDiagnostics('vdm', errors);
    return 1;
  }
  const badBatch = wholeArg('batch', args.batch);
  if (badBatch) return fail(badBatch);
  if (args.batch !== undefined) {
    if (dims.b !== undefined && dims.b !== args.batch) return fail(`--batch ${args.batch} and --dim b=${dims.b} disagree; give one`);
    dims.b = args.batch;
  }
  const out = args.out ?? path.join('runs', path.basename(args.spec).replace(/\.vdm$/, ''));
  // A folder that cannot be written is told now, not after the spec, the data and the GPU.
  try {
    checkWritableFolder(out);
  } catch (err) {
    if (err instanceof FileError) return fail(err.message);
    throw err;
  }
  const settings: Partial<TrainSettings> = {
    data: args.data, steps: args.steps, lr: args.lr, warmup: args.warmup, seed: args.seed,
    every: args.every, logEvery: args['log-every'], skipBad: args['skip-bad'], ema: args.ema, emaDecay: args['ema-decay'],
  };
  for (const k of Object.keys(settings) as (keyof TrainSettings)[]) if (settings[k] === undefined) delete settings[k];

  // SIGINT/SIGTERM: stop after the step in flight with a checkpoint; a second one quits at once.
  const controller = new AbortController();
  let stoppedBy: keyof typeof SIGNAL_EXIT | null = null;
  const onSignal = (sig: keyof typeof SIGNAL_EXIT) => () => {
    if (stoppedBy) process.exit(SIGNAL_EXIT[sig]);
    stoppedBy = sig;
    process.stderr.write(`\nvdm train: ${sig}: stopping after this step and saving a checkpoint (again to quit without saving)\n`);
    controller.abort(sig);
  };
  const handlers = { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') };
  for (const [sig, h] of Object.entries(handlers)) process.on(sig, h);
  let gpu: TrainStart['gpu'] | undefined;
  try {
    const r = await trainSpec(args.spec, { dims, root: args.root, out, resume: args.resume, settings, recompute: args.recompute }, {
      signal: controller.signal,
      note: (m) => process.stderr.write(`note: ${m}\n`),
      start: (info) => { gpu = info.gpu; process.stdout.write(header(info)); },
    });
    if (!r.ok) {
      printDiagnostics(args.spec, r.diagnostics);
      return 1;
    }
    process.stdout.write(summary(r.result, args, out, stoppedBy));
    const tuning = gpu && tuningStats(gpu);
    if (tuning?.problems) process.stdout.write(`${tuningLine(tuning)}\n`);
    return r.result.status === 'stopped' && stoppedBy ? SIGNAL_EXIT[stoppedBy] : 0;
  } catch (err) {
    if (err instanceof TrainSetupError || err instanceof PipelineError || err instanceof CheckpointError || err instanceof DataError
      || err instanceof DivergedError || err instanceof NoAdapterError || err instanceof TrainLogError || err instanceof SafetensorsError
      || err instanceof TensorTooLargeError) {
      return fail(err.message);
    }
    throw err;
  } finally {
    for (const [sig, h] of Object.entries(handlers)) process.off(sig, h);
  }
}
