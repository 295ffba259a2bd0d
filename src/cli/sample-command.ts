// `vdm sample CKPT_OR_RUN_DIR --spec SPEC`: samples a trained model on the WebGPU adapter (the
// steps are pipeline.ts's sampleSpec, the loop runtime/sample-run.ts). This file parses and checks
// the flags, prints a header, notes and where the files went, and maps every expected failure to
// one message and exit 1.
import type { Argv, CommandModule } from 'yargs';
import { PipelineError, sampleSpec, tuningStats, type SampleResult, type SampleStart } from '../pipeline.ts';
import { NoAdapterError } from '../runtime/adapter.ts';
import { CheckpointError } from '../runtime/checkpoint.ts';
import { checkWritableFolder, FileError } from '../runtime/files.ts';
import { TensorTooLargeError } from '../runtime/limits.ts';
import { formatRate } from '../runtime/progress.ts';
import { SafetensorsError } from '../runtime/safetensors.ts';
import { SampleSetupError, type SampleSettings } from '../runtime/sample-run.ts';
import { printDiagnostics, tuningLine } from './report.ts';

export interface SampleArgs {
  readonly source: string;
  readonly spec?: string;
  readonly n?: number;
  readonly steps?: number;
  readonly sampler?: string;
  readonly eta?: number;
  readonly guidance?: string | number;
  readonly class?: number;
  readonly caption?: string;
  readonly image?: string | string[];
  readonly textEmbedding?: string | string[];
  readonly attr?: string | string[];
  readonly trajectory?: string | string[];
  readonly motion?: string | string[];
  readonly seed?: number;
  readonly fps?: number;
  readonly out?: string;
  readonly ema?: boolean;
  readonly clip?: boolean;
  readonly keepFirst?: boolean;
  readonly root?: string;
}

const DESCRIBE = 'sample a trained model on the WebGPU adapter: a GIF, a PNG grid and the tensors';

// Lines under 80 columns: yargs wraps at 80 and would break longer ones mid-sentence.
const EPILOGUE = `What it does: starts from Philox noise (--seed) and runs --steps steps of the
sampler from the noisiest timestep down, all on the GPU; the model's x0 is
clipped to [-1, 1] at each step (--no-clip: not). ddim with --eta 0 is
deterministic; ddpm draws the posterior's noise (a learned sigma's variance
where the spec has one). With guidance, the conditional and unconditional
passes run as one batch of 2n: the unconditional half gets the null class and
zero text. The checkpoint's EMA weights are used when it has them.

CKPT_OR_RUN_DIR: a checkpoint file, or a folder \`vdm train\` wrote (its newest
checkpoint). Checkpoints store the model, not its file: --spec names the spec
it was trained on (another spec is refused with what differs).

Defaults come from the spec's diffusion section: sampler, steps, eta and the
guidance scale. Classes: --class K for every sample, else sample j gets class
j mod classes. Every other conditioning input must be given (else an error
names the flag), the same for every sample:
  text        --caption TEXT (embedded as vdm train embeds captions), or
              --text-embedding FILE.safetensors: one F32 tensor [l, c]
  image       --image FILE.png, read as vdm train reads frames: resized and
              centre-cropped to the input's h, w (with a note), channels from
              RGB (1: gray), values in [-1, 1]
  scalar      --attr NAME=VALUE, within the input's range (no default)
  trajectory  --trajectory FILE.json: [t, n, 2] (x, y) points in [0, 1], or
              [N, t, n, 2], one per sample
  motion      --motion FILE.safetensors (one F32 tensor) or FILE.json (nested
              arrays): [2, t, h, w], per frame and pixel the displacement
              (dx, dy) to the next frame in pixels (x right, y down), or
              [N, 2, t, h, w], one per sample
A model with several inputs of a kind takes NAME=VALUE (--image first=a.png);
the flags repeat. Under guidance the unconditional half gets the null class
and zero text, as guidance dropout trained; images, scalars, trajectories and
motion maps stay. A bad file or value stops before anything is written.

A video model whose image input is its first frame (the one image_condition
joins to the noisy video, as in specs/image-to-video.vdm) keeps that frame:
after every step frame 0 of each sample is replaced by the given frame noised
to the next timestep, sqrt(abar) f + sqrt(1 - abar) e (e: Philox noise on its
own stream), and after the last step by the frame itself: the output's first
frame is the given one, the other frames are denoised seeing it at each step
(replacement, Ho et al. 2022). --no-keep-first: the model alone.

Outputs, in --out (default: <run folder>/samples/step-NNNNNN):
  samples.gif          the samples side by side, looping at --fps
  grid.png             one row per sample, one column per frame
  samples.safetensors  the samples (F32) and their labels (I32)
  samples.mp4          the GIF's frames as H.264, when ffmpeg is installed
Values in [-1, 1] map to 0-255; 3 channels are RGB, 1 gray, 2 red and green,
more the first 3.`;

export const sampleCommand = (done: (code: number) => void): CommandModule<object, SampleArgs> => ({
  command: 'sample <source>',
  describe: DESCRIBE,
  builder: (y: Argv) =>
    y.usage(`vdm sample <CKPT_OR_RUN_DIR> --spec SPEC [options]\n\n${DESCRIBE}`)
      .positional('source', { type: 'string', demandOption: true, describe: 'a checkpoint file, or a run folder (its newest checkpoint)' })
      .option('spec', { type: 'string', requiresArg: true, describe: 'the .vdm file the checkpoint was trained on' })
      .option('n', { type: 'number', requiresArg: true, describe: 'samples [default: 4]' })
      .option('steps', { type: 'number', requiresArg: true, describe: 'sampling steps [default: the spec\'s sampler]' })
      .option('sampler', { type: 'string', requiresArg: true, choices: ['ddpm', 'ddim', 'euler'], describe: 'the sampler [default: the spec\'s]' })
      .option('eta', { type: 'number', requiresArg: true, describe: 'DDIM\'s eta, 0 to 1 (0: deterministic) [default: the spec\'s]' })
      .option('guidance', { type: 'string', requiresArg: true, describe: 'classifier-free guidance scale, or none [default: the spec\'s]' })
      .option('class', { type: 'number', requiresArg: true, describe: 'the class of every sample [default: sample j gets j mod classes]' })
      .option('caption', { type: 'string', requiresArg: true, describe: 'the text a text input is embedded from' })
      .option('text-embedding', { type: 'string', requiresArg: true, describe: 'a text input\'s token embeddings: [NAME=]FILE.safetensors, one F32 tensor [l, c] (repeatable)' })
      .option('image', { type: 'string', requiresArg: true, describe: 'an image input (first frame, style reference): [NAME=]FILE.png (repeatable)' })
      .option('attr', { type: 'string', requiresArg: true, describe: 'a scalar input: NAME=VALUE within its range, e.g. speed=2 (repeatable)' })
      .option('trajectory', { type: 'string', requiresArg: true, describe: 'a trajectory input: [NAME=]FILE.json, [t, n, 2] points in [0, 1] (repeatable)' })
      .option('motion', { type: 'string', requiresArg: true, describe: 'a motion input: [NAME=]FILE.safetensors or .json, [2, t, h, w] (dx, dy) pixels per frame (repeatable)' })
      .option('seed', { type: 'number', requiresArg: true, describe: 'seed of the noise [default: 0]' })
      .option('fps', { type: 'number', requiresArg: true, describe: 'frames per second of the GIF and MP4 [default: 8]' })
      .option('out', { alias: 'o', type: 'string', requiresArg: true, describe: 'folder for the files [default: <run folder>/samples/step-NNNNNN]' })
      .option('ema', { type: 'boolean', describe: 'use the EMA weights (--no-ema: the raw weights) [default: true]' })
      .option('clip', { type: 'boolean', describe: 'clip the predicted x0 to [-1, 1] at each step (--no-clip: not) [default: true]' })
      .option('keep-first', { type: 'boolean', describe: 'replace frame 0 by a first-frame --image at each step (--no-keep-first: not) [default: true]' })
      .option('root', { type: 'string', requiresArg: true, describe: 'folder imports must stay in' })
      .example('vdm sample runs/tiny-video-dit --spec specs/tiny-video-dit.vdm', '4 samples from the newest checkpoint')
      .example('vdm sample runs/dit/step-002000.safetensors --spec dit.vdm --n 8 --class 3 --guidance 4', 'class 3, guided')
      .example('vdm sample runs/tiny --spec tiny.vdm --sampler ddpm --steps 100 --seed 7 --fps 12', 'ancestral sampling')
      .example('vdm sample runs/i2v --spec specs/image-to-video.vdm --image frame.png --caption "red square"', 'image-to-video from a first frame')
      .example('vdm sample runs/ctl --spec specs/controllable-video.vdm --image style.png --attr speed=2 --trajectory path.json', 'style, speed and motion')
      .example('vdm sample runs/motion --spec specs/motion-conditioned.vdm --motion flow.safetensors', 'a motion map')
      .epilogue(EPILOGUE) as unknown as Argv<SampleArgs>,
  handler: async (argv) => {
    // yargs reports unknown flags only after the handler has run: do not start for them.
    if (Object.keys(argv).some((k) => !KNOWN_KEYS.has(k))) { done(2); return; }
    done(await sampleMain(argv));
  },
});

const KNOWN_KEYS = new Set(['_', '$0', 'source', 'spec', 'n', 'steps', 'sampler', 'eta', 'guidance', 'class', 'caption',
  'image', 'text-embedding', 'textEmbedding', 'attr', 'trajectory', 'motion', 'seed', 'fps', 'out', 'o',
  'ema', 'clip', 'keep-first', 'keepFirst', 'root', 'help', 'h']);

/** The --guidance value: a number, or none (null); a message for anything else. */
function guidanceArg(v: string | number | undefined): number | null | undefined | string {
  if (v === undefined) return undefined;
  if (String(v).trim().toLowerCase() === 'none') return null;
  const x = Number(v);
  return String(v).trim() !== '' && Number.isFinite(x) && x >= 0 ? x : `--guidance must be a number of at least 0, or none, got ${v}`;
}

/** A repeatable flag: undefined when absent, else every value given. */
const listArg = (v: string | string[] | undefined) => (v === undefined ? undefined : [v].flat().map(String));

const weightsText = (w: SampleStart['weights']) => (w === 'ema' ? 'EMA weights' : 'weights');

function header(info: SampleStart): string {
  const { settings: s, checkpoint: c, gpu, program } = info;
  const how = s.sampler === 'ddim' ? `ddim ${s.steps} steps (eta ${s.eta})` : `${s.sampler} ${s.steps} steps`;
  const guided = s.guidance === null ? 'no guidance' : `guidance ${s.guidance}`;
  const cls = s.classId !== null ? `, class ${s.classId}` : '';
  const kept = program.keepFirst ? `, first frame kept ('${program.keepFirst.input}')` : '';
  return `sampling ${c.model} from ${c.file} (step ${c.step}, ${weightsText(info.weights)}) on ${gpu.info.description || gpu.info.vendor || 'the adapter'}: `
    + `${s.n} sample${s.n === 1 ? '' : 's'}, ${how}, ${guided}${cls}${kept}, seed ${s.seed}; ${program.lowered.steps.length} dispatches a step\n`;
}

function summary(r: SampleResult): string {
  const s = r.settings;
  const rest = s.steps - 1;
  const rate = rest > 0 && r.seconds > r.firstStepSeconds ? `, then ${formatRate(rest / (r.seconds - r.firstStepSeconds))} steps/s` : '';
  const lines = [
    `${s.steps} step${s.steps === 1 ? '' : 's'} in ${r.seconds.toFixed(1)} s: ${r.firstStepSeconds.toFixed(1)} s for the first (it compiles the kernels)${rate}`,
    ...(r.labels ? [`classes: ${[...r.labels].join(' ')}`] : []),
    `gif:     ${r.files.gif}`,
    `grid:    ${r.files.grid}`,
    `tensors: ${r.files.tensors}`,
    ...(r.files.mp4 ? [`mp4:     ${r.files.mp4}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export async function sampleMain(args: SampleArgs): Promise<number> {
  const fail = (message: string) => {
    process.stderr.write(`vdm sample: ${message}\n`);
    return 1;
  };
  const guidance = guidanceArg(args.guidance);
  if (typeof guidance === 'string') return fail(guidance);
  for (const [flag, v] of [['--n', args.n], ['--steps', args.steps], ['--class', args.class], ['--seed', args.seed], ['--eta', args.eta], ['--fps', args.fps]] as const) {
    if (v !== undefined && Number.isNaN(v)) return fail(`${flag} must be a number`);
  }
  const settings: Partial<SampleSettings> = {
    n: args.n, steps: args.steps, sampler: args.sampler as SampleSettings['sampler'] | undefined, eta: args.eta, guidance,
    classId: args.class, caption: args.caption, images: listArg(args.image), textEmbeddings: listArg(args.textEmbedding),
    attrs: listArg(args.attr), trajectories: listArg(args.trajectory), motions: listArg(args.motion), seed: args.seed, fps: args.fps, ema: args.ema, clip: args.clip,
    keepFirst: args.keepFirst,
  };
  for (const k of Object.keys(settings) as (keyof SampleSettings)[]) if (settings[k] === undefined) delete settings[k];
  // A folder that cannot be written is told now, not after the sampling loop on the GPU.
  if (args.out !== undefined) {
    try {
      checkWritableFolder(args.out);
    } catch (err) {
      if (err instanceof FileError) return fail(err.message);
      throw err;
    }
  }
  let gpu: SampleStart['gpu'] | undefined;
  try {
    const r = await sampleSpec(args.source, { spec: args.spec, root: args.root, out: args.out, settings }, {
      note: (m) => process.stderr.write(`note: ${m}\n`),
      start: (info) => { gpu = info.gpu; process.stdout.write(header(info)); },
    });
    if (!r.ok) {
      printDiagnostics(r.file, r.diagnostics);
      return 1;
    }
    process.stdout.write(summary(r.result));
    const tuning = gpu && tuningStats(gpu);
    if (tuning?.problems) process.stdout.write(`${tuningLine(tuning)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof SampleSetupError || err instanceof PipelineError || err instanceof CheckpointError || err instanceof NoAdapterError
      || err instanceof SafetensorsError || err instanceof TensorTooLargeError) {
      return fail(err.message);
    }
    throw err;
  }
}
