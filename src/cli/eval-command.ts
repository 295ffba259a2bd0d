// `vdm eval CKPT_OR_RUN_DIR --spec SPEC`: samples a trained model (or reads samples `vdm sample`
// wrote) and compares them with clips of the data it trained on (evaluate.ts's evalSpec, the
// metrics runtime/eval). This file parses and checks the flags, prints a table or one JSON
// object, and maps every expected failure to one message and exit 1.
import type { Argv, CommandModule } from 'yargs';
import { evalSpec, type EvalResult } from '../evaluate.ts';
import { PipelineError, type SampleStart } from '../pipeline.ts';
import { NoAdapterError } from '../runtime/adapter.ts';
import { CheckpointError } from '../runtime/checkpoint.ts';
import { DataError } from '../runtime/data/index.ts';
import { TensorTooLargeError } from '../runtime/limits.ts';
import { SafetensorsError } from '../runtime/safetensors.ts';
import { SampleSetupError } from '../runtime/sample-run.ts';
import { printDiagnostics } from './report.ts';
import { renderTable } from './table.ts';

export interface EvalArgs {
  readonly source: string;
  readonly spec?: string;
  readonly data?: string;
  readonly n?: number;
  readonly seed?: number;
  readonly samples?: string;
  readonly steps?: number;
  readonly out?: string;
  readonly ema?: boolean;
  readonly json?: boolean;
  readonly root?: string;
}

const DESCRIBE = 'compare samples of a trained model with the data it trained on: pixel statistics, temporal consistency, a Fréchet distance';

// Lines under 80 columns: yargs wraps at 80 and would break longer ones mid-sentence.
const EPILOGUE = `What it does: samples --n clips from the checkpoint (the spec's sampler,
--seed; written to --out as vdm sample writes them), or reads the samples of
--samples FILE, and draws --n clips of the data the model trained on: the
built-in moving shapes (--data synthetic, at the checkpoint's clip size, seed
--seed) or the clips of a folder (--data DIR, as vdm train reads it). Then it
compares the two sets; values are pixels in [-1, 1].

  frame F mean ± std    per frame index, the mean and spread of every pixel
  temporal consistency  mean |frame f+1 - frame f| (0: a still clip); samples
                        should move about as much as the data
  trajectory accel.     built-in data only: the object's centroid, found in
                        each frame, and its mean |acceleration| in pixels per
                        frame² (the data's shapes keep their speed and bounce
                        off the edges: small)
  shape-colour acc.     built-in data only: the fraction of clips that show a
                        square, circle or triangle in a palette colour on most
                        frames (the class's shape for class-conditional models)
  Fréchet distance      samples against data, as FID / FVD compute it, over the
                        features of a fixed network: 64 random 3x3x3 3D
                        convolution filters over every channel (weights
                        N(0, 1/fan-in) from a fixed seed, untrained), ReLU,
                        averaged over the clip, with each channel's mean and
                        std. Not I3D: compare it only between runs at the same
                        clip size; 0 means the same feature statistics.

CKPT_OR_RUN_DIR: a checkpoint file, or a folder \`vdm train\` wrote (its newest
checkpoint); --spec names the spec it was trained on.`;

export const evalCommand = (done: (code: number) => void): CommandModule<object, EvalArgs> => ({
  command: 'eval <source>',
  describe: DESCRIBE,
  builder: (y: Argv) =>
    y.usage(`vdm eval <CKPT_OR_RUN_DIR> --spec SPEC [options]\n\n${DESCRIBE}`)
      .positional('source', { type: 'string', demandOption: true, describe: 'a checkpoint file, or a run folder (its newest checkpoint)' })
      .option('spec', { type: 'string', requiresArg: true, describe: 'the .vdm file the checkpoint was trained on' })
      .option('data', { type: 'string', requiresArg: true, describe: 'synthetic (the built-in moving shapes), or a folder of clips [default: synthetic]' })
      .option('n', { type: 'number', requiresArg: true, describe: 'clips on each side [default: 16; with --samples: all in the file]' })
      .option('seed', { type: 'number', requiresArg: true, describe: 'seed of the sampling noise and of the synthetic clips [default: 0]' })
      .option('samples', { type: 'string', requiresArg: true, describe: 'evaluate the samples.safetensors vdm sample wrote instead of sampling' })
      .option('steps', { type: 'number', requiresArg: true, describe: 'sampling steps [default: the spec\'s sampler]' })
      .option('out', { alias: 'o', type: 'string', requiresArg: true, describe: 'folder for the samples [default: <run folder>/eval/step-NNNNNN]' })
      .option('ema', { type: 'boolean', describe: 'sample with the EMA weights (--no-ema: the raw weights) [default: true]' })
      .option('json', { type: 'boolean', describe: 'print one JSON object (every frame) instead of the table' })
      .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' })
      .example('vdm eval runs/tiny-video-dit --spec specs/tiny-video-dit.vdm', '16 samples against 16 synthetic clips')
      .example('vdm eval runs/tiny-video-dit --spec specs/tiny-video-dit.vdm --samples runs/tiny-video-dit/samples/step-001000/samples.safetensors', 'the samples vdm sample wrote')
      .example('vdm eval runs/mine --spec my.vdm --data clips/ --n 32 --json', 'against a folder, as JSON')
      .epilogue(EPILOGUE) as unknown as Argv<EvalArgs>,
  handler: async (argv) => {
    // yargs reports unknown flags only after the handler has run: do not start for them.
    if (Object.keys(argv).some((k) => !KNOWN_KEYS.has(k))) { done(2); return; }
    done(await evalMain(argv));
  },
});

const KNOWN_KEYS = new Set(['_', '$0', 'source', 'spec', 'data', 'n', 'seed', 'samples', 'steps', 'out', 'o', 'ema', 'json', 'root', 'help', 'h']);

const num = (v: number, digits = 4) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : `${(v * 100).toFixed(0)}%`);

/** Frame indices shown in the table: all of up to 8, else the first two, the middle and the last. */
const shownFrames = (t: number) => (t <= 8 ? [...Array(t).keys()] : [0, 1, Math.floor(t / 2), t - 1]);

export function formatEvalTable(r: EvalResult): string {
  const { report: e, clip } = r;
  const how = r.samples.from === 'file'
    ? `${e.clips.samples} from ${r.samples.file}`
    : `${e.clips.samples} sampled (${r.samples.settings.sampler} ${r.samples.settings.steps} steps, seed ${r.samples.settings.seed}, ${r.samples.weights === 'ema' ? 'EMA weights' : 'weights'}) into ${r.samples.out}`;
  const data = r.data.source === 'synthetic' ? `${e.clips.data} clips of the built-in moving shapes (seed ${r.data.seed})` : `${e.clips.data} clips of ${r.data.source}`;
  const frames = shownFrames(clip.t);
  const rows: string[][] = frames.map((f) => {
    const s = e.frames[f];
    return [`frame ${f} mean ± std`, `${num(s.mean.samples, 3)} ± ${num(s.std.samples, 3)}`, `${num(s.mean.data, 3)} ± ${num(s.std.data, 3)}`];
  });
  rows.push(['temporal consistency', num(e.temporalConsistency.samples), num(e.temporalConsistency.data)]);
  if (e.objectSpeed) rows.push(['object speed (px/frame)', num(e.objectSpeed.samples, 3), num(e.objectSpeed.data, 3)]);
  if (e.trajectoryAcceleration) rows.push(['trajectory accel. (px/frame²)', num(e.trajectoryAcceleration.samples, 3), num(e.trajectoryAcceleration.data, 3)]);
  if (e.shapeColourAccuracy) rows.push(['shape-colour accuracy', pct(e.shapeColourAccuracy.samples), pct(e.shapeColourAccuracy.data)]);
  if (e.shapeFit) rows.push(['shape fit (IoU with a clean shape)', num(e.shapeFit.samples, 3), num(e.shapeFit.data, 3)]);
  const lines = [
    `evaluating ${r.model} at step ${r.step} (${r.checkpoint}), clips [c=${clip.c}, t=${clip.t}, h=${clip.h}, w=${clip.w}]`,
    `samples: ${how}`,
    `data:    ${data}`,
    '',
    renderTable(['', 'samples', 'data'], rows, new Set([1, 2])),
    '',
    `Fréchet distance, samples vs data (fixed random 3D-conv features): ${num(e.frechet, 3)}`,
    ...(frames.length < clip.t ? [`(${clip.t - frames.length} of ${clip.t} frames left out of the table; --json has every frame)`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** The result as one JSON object (non-finite numbers as null). */
export function evalJson(r: EvalResult): string {
  const samples = r.samples.from === 'file' ? { from: 'file', file: r.samples.file } : {
    from: 'sampled', out: r.samples.out, weights: r.samples.weights, seconds: r.samples.seconds,
    sampler: r.samples.settings.sampler, steps: r.samples.settings.steps, eta: r.samples.settings.eta, guidance: r.samples.settings.guidance, seed: r.samples.settings.seed,
    files: r.samples.files,
  };
  return `${JSON.stringify({ model: r.model, checkpoint: r.checkpoint, step: r.step, clip: r.clip, samples, data: r.data, ...r.report }, null, 2)}\n`;
}

export async function evalMain(args: EvalArgs): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`vdm eval: ${message}\n`);
    return 1;
  };
  for (const [flag, v] of [['--n', args.n], ['--seed', args.seed], ['--steps', args.steps]] as const) {
    if (v !== undefined && Number.isNaN(v)) return fail(`${flag} must be a number`);
  }
  if (args.samples !== undefined) {
    for (const [flag, v] of [['--steps', args.steps], ['--out', args.out], ['--ema', args.ema]] as const) {
      if (v !== undefined) return fail(`${flag} applies when vdm eval samples the model, not to --samples`);
    }
  }
  // Under --json stdout holds the JSON alone: the header goes to stderr.
  const say = args.json ? (m: string) => process.stderr.write(m) : (m: string) => process.stdout.write(m);
  try {
    const r = await evalSpec(args.source, {
      spec: args.spec, root: args.root, data: args.data, n: args.n, seed: args.seed, samples: args.samples, out: args.out,
      settings: { ...(args.steps !== undefined ? { steps: args.steps } : {}), ...(args.ema !== undefined ? { ema: args.ema } : {}) },
    }, {
      note: (m) => process.stderr.write(`note: ${m}\n`),
      start: (info: SampleStart) => say(`sampling ${info.settings.n} clips from ${info.checkpoint.file} (step ${info.checkpoint.step}): ${info.settings.sampler} ${info.settings.steps} steps, seed ${info.settings.seed}\n`),
    });
    if (!r.ok) {
      printDiagnostics(r.file, r.diagnostics);
      return 1;
    }
    process.stdout.write(args.json ? evalJson(r.result) : formatEvalTable(r.result));
    return 0;
  } catch (err) {
    if (err instanceof SampleSetupError || err instanceof PipelineError || err instanceof CheckpointError || err instanceof NoAdapterError
      || err instanceof SafetensorsError || err instanceof TensorTooLargeError || err instanceof DataError) {
      return fail(err.message);
    }
    throw err;
  }
}
