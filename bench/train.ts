// `npm run bench:train`: one whole training step (q_sample, forward, MSE, backward, gradient
// clipping, AdamW) of vdm's lowered program against the same model written by hand in
// TensorFlow.js (bench/train-tfjs.ts), in one process on one adapter. Before timing, the tfjs
// model is checked to be the same model: the same parameters by name and shape, and the same
// first-step loss for vdm's initial parameters and the x_t, t and target vdm drew. vdm's step is
// also timed lowered without fusion, and forward passes alone (vdm fused and unfused, tfjs) beside
// it for context. Writes bench/train.md and
// bench/train.json. Not part of the tests.
//   --only=REGEX    run the cases whose name matches
//   --target-ms=N   timed work per batch (default 1000); each side: warm-up, probe, then 3 batches per round
//   --rounds=N      rounds of all sides in alternation (default 2)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lowerTraining, decays, type TrainingProgram } from '../src/codegen/training.ts';
import { formatDiagnostic } from '../src/compiler/ir/diagnostics.ts';
import type { Graph } from '../src/compiler/ir/graph.ts';
import { costsOf } from '../src/compiler/ir/cost.ts';
import { exampleInputs, liveParams } from '../src/compiler/reference/evaluate.ts';
import { noiseSchedule } from '../src/compiler/reference/diffusion-math.ts';
import { checkSpec, load, lowerModel, planModel, type LoadedModel } from '../src/pipeline.ts';
import { openGpu, NoAdapterError, type Gpu } from '../src/runtime/gpu.ts';
import { Trainer } from '../src/runtime/trainer.ts';
import { ditModel, MATMUL_PACKED, mlpModel, registerGradients, TfTrainer, type AdamWSettings, type TfModel } from './train-tfjs.ts';
import { loadTfjs, tfBatch, type Tf } from './tfjs.ts';
import { randomArray, relativeError } from './util.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const only = arg('only') ? new RegExp(arg('only')!, 'i') : undefined;
const targetMs = Number(arg('target-ms') ?? 1000);
const rounds = Number(arg('rounds') ?? 2);
const TRIALS = 3;
const log = (s: string) => process.stderr.write(s + '\n');
const message = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e));

// vdm's defaults (kernels/optimizer.ts), on both sides; no EMA on either (tfjs would need one more pass).
const ADAMW: AdamWSettings = { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
const LR = 1e-4;
const SEED = 7;
const LOSS_TOLERANCE = 1e-4;
// the norm sums every gradient: f32 reductions in two orders, over up to 33 M values
const GRAD_NORM_TOLERANCE = 1e-3;

// A denoiser every primitive of which has a GPU backward today: the harness runs end to end on it.
const MLP_SPEC = `import "std/layers.vdm"

model MlpDenoiser {
  dims b = 4, c = 3, t = 8, h = 16, w = 16
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  let d = 64
  e = linear(silu(linear(sinusoidal(s, dim: 64), d) as t_fc1), d) as t_fc2
  z = silu(linear(x, d) as embed + e)
  for i in 0..2 as blocks {
    z = z + mlp(z, ratio: 4)
  }
  output y : video[b, c, t, h, w] = linear(z, c) as out
}

diffusion {
  schedule cosine(steps: 1000, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 50, eta: 0.0)
}
`;

// DiT-S/2 learns sigma (vlb loss), which the GPU training step refuses: train its epsilon half, the
// same trunk with the final layer's output halved (p * p * c channels), under plain MSE.
function ditS2EpsilonOnly(text: string): string {
  const edits: [RegExp, string][] = [
    [/p \* p \* 2 \* c\)/, 'p * p * c)'],
    [/video\[b, c=2\*c, t, h, w\]/, 'video[b, c, t, h, w]'],
    [/epsilon\(learned_sigma: true\)/, 'epsilon'],
    [/mse \+ vlb/, 'mse'],
  ];
  for (const [from, to] of edits) {
    if (!from.test(text)) throw new Error(`specs/dit-s-2.vdm changed: '${from.source}' not found`);
    text = text.replace(from, to);
  }
  return text;
}

interface TrainCase {
  readonly name: string;
  readonly note: string;
  /** the spec file to train and its dim overrides */
  spec(tmp: string): { file: string; dims: Record<string, number> };
  /** the hand-written tfjs model for the checked graph's dims */
  tfjs(tf: Tf, g: Graph): TfModel;
}

const CASES: TrainCase[] = [
  {
    name: 'mlp-denoiser',
    note: 'per-pixel MLP denoiser (linear, SiLU, tanh-GELU, timestep MLP): trains on the GPU today',
    spec(tmp) {
      const file = path.join(tmp, 'mlp-denoiser.vdm');
      fs.writeFileSync(file, MLP_SPEC);
      return { file, dims: {} };
    },
    tfjs: (tf, g) => mlpModel(tf, { c: g.dims.c, d: 64, freq: 64, blocks: 2, ratio: 4 }),
  },
  {
    name: 'tiny-video-dit',
    note: 'specs/tiny-video-dit.vdm at b=4',
    spec: () => ({ file: 'specs/tiny-video-dit.vdm', dims: { b: 4 } }),
    tfjs: (tf, g) => ditModel(tf, {
      c: g.dims.c, dims: { t: g.dims.t, h: g.dims.h, w: g.dims.w }, d: 64, depth: 4, heads: 4,
      patch: { t: 2, h: 2, w: 2 }, out: 8 * g.dims.c, pos: ['hw', 't'],
    }),
  },
  {
    name: 'dit-s-2',
    note: 'specs/dit-s-2.vdm (d=384, 12 blocks, 6 heads, 1000 classes) on an 8 x 8 latent at b=2, epsilon only (no learned sigma)',
    spec(tmp) {
      const file = path.join(tmp, 'dit-s-2-eps.vdm');
      fs.writeFileSync(file, ditS2EpsilonOnly(fs.readFileSync('specs/dit-s-2.vdm', 'utf8')));
      return { file, dims: { b: 2, h: 8, w: 8 } };
    },
    tfjs: (tf, g) => ditModel(tf, {
      c: g.dims.c, dims: { t: g.dims.t, h: g.dims.h, w: g.dims.w }, d: 384, depth: 12, heads: 6,
      patch: { t: 1, h: 2, w: 2 }, out: 4 * g.dims.c, pos: ['hw'], labelRows: 1001,
    }),
  },
];

interface Spread {
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** timed batches and steps per batch */
  batches: number;
  iterations: number;
}

type Side = { status: 'ok'; time: Spread } | { status: 'not available' | 'failed'; note: string };

interface LossCheck {
  vdmLoss: number;
  tfjsLoss: number;
  lossRelDiff: number;
  vdmGradNorm: number;
  tfjsGradNorm: number;
  gradNormRelDiff: number;
  ok: boolean;
  gradNormOk: boolean;
}

interface CaseResult {
  name: string;
  model: string;
  note: string;
  dims: Record<string, number>;
  params: { vdm: number; tfjs: number; sameNamesAndShapes: boolean };
  dispatches?: { step: number; stepUnfused: number; forwardFused: number; forwardUnfused: number };
  lossCheck?: LossCheck | { error: string };
  step: { vdm: Side; vdmUnfused: Side; tfjs: Side };
  forward: { vdmFused: Side; vdmUnfused: Side; tfjs: Side };
  /** largest |tfjs - vdm| of the forward outputs on the example inputs, relative to vdm's largest */
  forwardRelDiff?: number;
  /** tfjs step time / vdm step time (medians): vdm steps per second over tfjs's */
  speedRatio?: number;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/**
 * Batches of steps, kept per batch so the median and range cover every round. The first round
 * warms up (pipelines compile there) and sizes the batches to about targetMs from one probe step
 * (no probe when the warm-up alone took that long); a step of several seconds is then timed one
 * at a time, where util.ts's timeBatches would take at least two per batch.
 */
class Timed {
  readonly perStep: number[] = [];
  iterations = 0;
  constructor(readonly batch: (n: number) => Promise<number>) {}
  async round(): Promise<void> {
    if (!this.iterations) {
      const warm = await this.batch(1);
      const probe = warm >= targetMs ? warm : await this.batch(1);
      this.iterations = Math.max(1, Math.min(20, Math.round(targetMs / Math.max(probe, 0.01))));
    }
    for (let t = 0; t < TRIALS; t++) this.perStep.push((await this.batch(this.iterations)) / this.iterations);
  }
  spread(): Spread {
    return { medianMs: median(this.perStep), minMs: Math.min(...this.perStep), maxMs: Math.max(...this.perStep), batches: this.perStep.length, iterations: this.iterations };
  }
}

const wall = async (f: () => Promise<unknown>) => { const t0 = performance.now(); await f(); return performance.now() - t0; };

function compareParams(g: Graph, m: TfModel): string[] {
  const problems: string[] = [];
  const vdm = new Map(g.nodes.flatMap((n) => n.params.map((p) => [p.path, p.shape] as const)));
  for (const [p, shape] of vdm) {
    const mine = m.shapes.get(p);
    if (!mine) problems.push(`tfjs lacks ${p} [${shape}]`);
    else if (mine.join() !== shape.join()) problems.push(`${p}: vdm [${shape}], tfjs [${mine}]`);
  }
  for (const p of m.shapes.keys()) if (!vdm.has(p)) problems.push(`tfjs has ${p}, vdm does not`);
  return problems;
}

async function runCase(gpu: Gpu, tf: Tf, c: TrainCase, tmp: string): Promise<CaseResult> {
  const { file, dims } = c.spec(tmp);
  const checked = checkSpec(file, { dims });
  if (!checked.ok) throw new Error(checked.diagnostics.map(formatDiagnostic).join('\n'));
  const g = checked.model.graph;
  const model = c.tfjs(tf, g);
  const mismatch = compareParams(g, model);
  if (mismatch.length) throw new Error(`the tfjs model is not vdm's: ${mismatch.slice(0, 5).join('; ')}`);
  const tfjsCount = [...model.shapes.values()].reduce((a, s) => a + s.reduce((p, q) => p * q, 1), 0);
  const result: CaseResult = {
    name: c.name, model: g.model, note: c.note, dims: { ...g.dims },
    params: { vdm: costsOf(g).params, tfjs: tfjsCount, sameNamesAndShapes: true },
    step: { vdm: { status: 'failed', note: 'not run' }, vdmUnfused: { status: 'failed', note: 'not run' }, tfjs: { status: 'failed', note: 'not run' } },
    forward: { vdmFused: { status: 'failed', note: 'not run' }, vdmUnfused: { status: 'failed', note: 'not run' }, tfjs: { status: 'failed', note: 'not run' } },
  };

  const noisy = g.inputs.find((i) => i.name === g.diffusion!.noisy_input)!;
  const label = g.inputs.find((i) => i.kind === 'label');
  const shape = noisy.axes.map(([, s]) => s);
  if (noisy.axes.map(([n]) => n).join() !== 'b,c,t,h,w') throw new Error(`the noisy input is [${noisy.axes.map(([n]) => n)}], the tfjs models take [b, c, t, h, w]`);
  const b = shape[0];
  const x0 = randomArray(shape.reduce((p, q) => p * q, 1), 11);
  const labels = label ? Int32Array.from({ length: b }, (_, i) => (i * 389 + 17) % Number(label.options.classes)) : undefined;
  const data = new Map(label ? [[label.name, labels!]] : []);
  const params = liveParams(g, 0); // adaLN-Zero layers perturbed: every path carries signal and gradient

  let program: TrainingProgram | undefined, unfusedProgram: TrainingProgram | undefined;
  try {
    program = lowerTraining(g, { adapter: gpu, ema: false });
    unfusedProgram = lowerTraining(g, { adapter: gpu, ema: false, fuse: false });
  } catch (e) {
    result.step.vdm = result.step.vdmUnfused = { status: 'not available', note: message(e) };
  }
  const schedule = noiseSchedule(g.diffusion!.schedule);
  const tfTrainer = new TfTrainer(tf, model, params, {
    shape, alphasCumprod: schedule.alphasCumprod, predict: g.diffusion!.predict.target, adamw: ADAMW, decays,
  });
  let trainer: Trainer | undefined, unfusedTrainer: Trainer | undefined;
  const forwards: LoadedModel[] = [];
  const keep: { dispose(): void }[] = [];
  try {
    if (program) {
      trainer = Trainer.load(gpu, program, { params }, { ...ADAMW });
      unfusedTrainer = Trainer.load(gpu, unfusedProgram!, { params }, { ...ADAMW });
      result.lossCheck = await lossCheck(tf, trainer, program, tfTrainer, x0, data, labels);
      log(`  ${c.name}: loss check ${'error' in result.lossCheck ? result.lossCheck.error : `vdm ${result.lossCheck.vdmLoss.toPrecision(7)}, tfjs ${result.lossCheck.tfjsLoss.toPrecision(7)}, rel. diff ${result.lossCheck.lossRelDiff.toExponential(1)}`}`);
    }
    // Forward passes alone, on the model's example inputs.
    const inputs = exampleInputs(g, 1);
    const fwd = (fuse: boolean) => {
      const planned = planModel(lowerModel(checked.model, { adapter: gpu, fuse }));
      const loaded = load(gpu, planned, { params, inputs });
      forwards.push(loaded);
      return { loaded, dispatches: planned.lowered.steps.length };
    };
    const fused = fwd(true), unfused = fwd(false);
    if (program) result.dispatches = { step: program.lowered.steps.length, stepUnfused: unfusedProgram!.lowered.steps.length, forwardFused: fused.dispatches, forwardUnfused: unfused.dispatches };
    const tensorOf = (name: string, dtype: 'float32' | 'int32' = 'float32') => {
      const t = inputs.get(name)!;
      const out = tf.tensor(dtype === 'int32' ? Int32Array.from(t.data) : Float32Array.from(t.data), t.axes.map(([, s]) => s), dtype);
      keep.push(out);
      return out;
    };
    const fx = tensorOf(noisy.name), fs_ = tensorOf(g.inputs.find((i) => i.kind === 'timestep')!.name), fy = label && tensorOf(label.name, 'int32');
    // Element by element, before any update: the forward passes agree, not only their mean error.
    const vdmOut = (await fused.loaded.run()).outputs.get(g.outputs[0].name)!.data;
    const tfOut = tf.tidy(() => model.forward(tfTrainer.vars, fx, fs_, fy));
    result.forwardRelDiff = relativeError(Float32Array.from(await tfOut.data()), vdmOut);
    tfOut.dispose();

    let vdmStep = 1, unfusedStep = 0, tfStep = 0; // vdm's update 1 was the loss check's; tfjs's check did not update
    const sides: [string, Timed][] = [];
    if (trainer) sides.push(['vdm step', new Timed((n) => wall(async () => { for (let k = 0; k < n; k++) await trainer!.step(x0, data, ++vdmStep, LR, SEED); }))]);
    if (unfusedTrainer) sides.push(['vdm step unfused', new Timed((n) => wall(async () => { for (let k = 0; k < n; k++) await unfusedTrainer!.step(x0, data, ++unfusedStep, LR, SEED); }))]);
    sides.push(['tfjs step', new Timed((n) => tfBatch(tf, () => tfTrainer.step(x0, labels, ++tfStep, LR), n, gpu.software))]);
    sides.push(['vdm forward fused', new Timed((n) => wall(() => fused.loaded.run({ repeat: n })))]);
    sides.push(['vdm forward unfused', new Timed((n) => wall(() => unfused.loaded.run({ repeat: n })))]);
    sides.push(['tfjs forward', new Timed((n) => tfBatch(tf, () => model.forward(tfTrainer.vars, fx, fs_, fy), n, gpu.software))]);
    const failed = new Map<string, string>();
    for (let r = 0; r < rounds; r++) {
      for (const [name, t] of sides) {
        if (failed.has(name)) continue;
        try {
          await t.round();
        } catch (e) {
          failed.set(name, message(e));
        }
      }
    }
    const side = (name: string): Side => {
      const t = sides.find(([n]) => n === name)?.[1];
      if (failed.has(name)) return { status: 'failed', note: failed.get(name)! };
      return t ? { status: 'ok', time: t.spread() } : result.step.vdm;
    };
    result.step = { vdm: side('vdm step'), vdmUnfused: side('vdm step unfused'), tfjs: side('tfjs step') };
    result.forward = { vdmFused: side('vdm forward fused'), vdmUnfused: side('vdm forward unfused'), tfjs: side('tfjs forward') };
    if (result.step.vdm.status === 'ok' && result.step.tfjs.status === 'ok') result.speedRatio = result.step.tfjs.time.medianMs / result.step.vdm.time.medianMs;
  } finally {
    trainer?.release();
    unfusedTrainer?.release();
    for (const f of forwards) f.release();
    for (const k of keep) k.dispose();
    tfTrainer.dispose();
  }
  return result;
}

/**
 * vdm's first step draws noise and timesteps and records its loss and gradient norm before the
 * update; tfjs gets the same parameters and the x_t, timesteps and target read back from that step.
 */
async function lossCheck(tf: Tf, trainer: Trainer, program: TrainingProgram, tfTrainer: TfTrainer, x0: Float32Array,
  data: ReadonlyMap<string, Int32Array>, labels: Int32Array | undefined): Promise<LossCheck | { error: string }> {
  try {
    await trainer.step(x0, data, 1, LR, SEED);
    const stats = await trainer.stats();
    const { graph } = program;
    const time = graph.inputs.find((i) => i.kind === 'timestep')!;
    const xValue = program.lowered.inputs.get(program.noisy.name)!;
    const sValue = program.lowered.inputs.get(time.name)!;
    if (xValue.axes.map(([n]) => n).join() !== program.noisy.axes.map(([n]) => n).join()) return { error: 'the noisy input buffer is not in the declared axis order' };
    const [xt, s, t, target] = await trainer.read([xValue.buffer, sValue.buffer, 'train.t', 'train.target']);
    if (!Array.from(t).every((v, i) => v === s[i])) return { error: `the model's timestep input [${Array.from(s)}] is not the drawn t [${Array.from(t)}]` };
    const shape = program.noisy.axes.map(([, k]) => k);
    const ts = [tf.tensor(Float32Array.from(xt), shape), tf.tensor1d(Float32Array.from(s)), tf.tensor(Float32Array.from(target), shape)];
    const y = labels && tf.tensor1d(labels, 'int32');
    try {
      const mine = await tfTrainer.lossAndGradNorm(ts[0], ts[1], y, ts[2]);
      const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
      const lossRelDiff = rel(mine.loss, stats.loss);
      return {
        vdmLoss: stats.loss, tfjsLoss: mine.loss, lossRelDiff,
        vdmGradNorm: stats.gradNorm, tfjsGradNorm: mine.gradNorm, gradNormRelDiff: rel(mine.gradNorm, stats.gradNorm),
        ok: lossRelDiff <= LOSS_TOLERANCE,
        gradNormOk: rel(mine.gradNorm, stats.gradNorm) <= GRAD_NORM_TOLERANCE,
      };
    } finally {
      for (const x of ts) x.dispose();
      y?.dispose();
    }
  } catch (e) {
    return { error: message(e) };
  }
}

// ---- report

const ms = (s: Side) => (s.status === 'ok' ? `${fmt(s.time.medianMs)} [${fmt(s.time.minMs)}–${fmt(s.time.maxMs)}]` : `${s.status}: ${s.note}`);
const perSecond = (s: Side) => (s.status === 'ok' ? (1000 / s.time.medianMs).toFixed(2) : '–');
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const ratio = (a: Side, b: Side) => (a.status === 'ok' && b.status === 'ok' ? (b.time.medianMs / a.time.medianMs).toFixed(2) : '–');
const dimText = (d: Record<string, number>) => Object.entries(d).map(([k, v]) => `${k}=${v}`).join(' ');

function markdown(r: { date: string; adapter: string; cpus: number; load: number[]; targetMs: number; rounds: number; totalSeconds: number; cases: CaseResult[] }): string {
  const lines = [
    '# Training steps: vdm against TensorFlow.js',
    '',
    `${r.date} · adapter: ${r.adapter} · ${r.cpus} CPUs, load average ${r.load[0].toFixed(1)} → ${r.load[1].toFixed(1)} · ${r.totalSeconds.toFixed(0)} s · \`npm run bench:train -- --target-ms=${r.targetMs} --rounds=${r.rounds}\``,
    '',
    'One training step = draw noise and timesteps, q_sample, forward, MSE loss, backward, global-norm clipping (1.0), AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, decoupled weight decay 0.01 on matrices), no EMA.',
    '(a) vdm: `lowerTraining` + `Trainer`, one submit and one wait per step. (b) TensorFlow.js webgpu on the same Dawn device: the model written by hand (bench/train-tfjs.ts), `tf.variableGrads`, the same AdamW written in tfjs ops; a batch of steps is queued and waited for once (as `tfBatch`). (c) vdm unfused: the same step lowered with `fuse: false`. (a) fuses the elementwise chains whose values no backward rule reads (`gradientReads` in src/codegen/backward.ts); the forward-only table shows what fusion does to the forward pass alone.',
    '',
    '## Step time',
    '',
    '| case | model | dims | params (vdm = tfjs) | (a) vdm step, ms median [range] | vdm steps/s | (b) tfjs step, ms median [range] | tfjs steps/s | vdm/tfjs speed | (c) vdm unfused step, ms | fusion speed-up (c)/(a) | dispatches (a) / (c) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const c of r.cases) {
    const params = c.params.vdm === c.params.tfjs ? `${(c.params.vdm / 1e6).toFixed(3)} M` : `${c.params.vdm} ≠ ${c.params.tfjs}`;
    const d = c.dispatches ? `${c.dispatches.step} / ${c.dispatches.stepUnfused}` : '–';
    lines.push(`| ${c.name} | ${c.model} | ${dimText(c.dims)} | ${params} | ${ms(c.step.vdm)} | ${perSecond(c.step.vdm)} | ${ms(c.step.tfjs)} | ${perSecond(c.step.tfjs)} | ${c.speedRatio?.toFixed(2) ?? '–'} | ${ms(c.step.vdmUnfused)} | ${ratio(c.step.vdm, c.step.vdmUnfused)} | ${d} |`);
  }
  lines.push('', '## Forward pass only (context)', '',
    '| case | vdm fused, ms | vdm unfused, ms | fusion speed-up | tfjs, ms | vdm fused / tfjs speed | dispatches: forward fused / unfused |',
    '|---|---:|---:|---:|---:|---:|---|');
  for (const c of r.cases) {
    const f = c.forward;
    const d = c.dispatches ? `${c.dispatches.forwardFused} / ${c.dispatches.forwardUnfused}` : '–';
    lines.push(`| ${c.name} | ${ms(f.vdmFused)} | ${ms(f.vdmUnfused)} | ${ratio(f.vdmFused, f.vdmUnfused)} | ${ms(f.tfjs)} | ${ratio(f.vdmFused, f.tfjs)} | ${d} |`);
  }
  lines.push('', '## Same model: first-step loss', '',
    `vdm takes one step from its initial parameters (\`liveParams\`, seed 0) and reads back x_t (its model's input buffer), the timesteps (\`train.t\`, equal to the model's timestep input) and the target (\`train.target\`); tfjs computes the loss and the global gradient norm for the same parameters and tensors. Pass: loss within ${LOSS_TOLERANCE} relative; gradient norm (before clipping) within ${GRAD_NORM_TOLERANCE}. Forward outputs: vdm's fused forward and tfjs's on the example inputs, the largest difference relative to vdm's largest output.`,
    '',
    '| case | vdm loss | tfjs loss | rel. diff | same loss | vdm grad norm | tfjs grad norm | rel. diff | same grad norm | forward outputs differ by |',
    '|---|---:|---:|---:|---|---:|---:|---:|---|---:|');
  for (const c of r.cases) {
    const l = c.lossCheck;
    const f = c.forwardRelDiff?.toExponential(1) ?? '–';
    if (!l) lines.push(`| ${c.name} | ${c.step.vdm.status === 'ok' ? '–' : `vdm ${c.step.vdm.status}`} | | | – | | | | – | ${f} |`);
    else if ('error' in l) lines.push(`| ${c.name} | error: ${l.error} | | | no | | | | – | ${f} |`);
    else lines.push(`| ${c.name} | ${l.vdmLoss.toPrecision(7)} | ${l.tfjsLoss.toPrecision(7)} | ${l.lossRelDiff.toExponential(1)} | ${l.ok ? 'yes' : 'NO'} | ${l.vdmGradNorm.toPrecision(6)} | ${l.tfjsGradNorm.toPrecision(6)} | ${l.gradNormRelDiff.toExponential(1)} | ${l.gradNormOk ? 'yes' : 'NO'} | ${f} |`);
  }
  lines.push('', '## Cases', '');
  for (const c of r.cases) lines.push(`- ${c.name}: ${c.note}; parameters compared by name and shape with the graph's (${c.params.sameNamesAndShapes ? 'identical' : 'different'}).`);
  lines.push('',
    `Times are ms per step: every side is timed in ${r.rounds} rounds in alternation, ${TRIALS} batches per round sized to about ${r.targetMs} ms (at least one step) after a warm-up step and a probe; median and range over all batches. vdm/tfjs speed = tfjs median / vdm median (above 1: vdm is faster). vdm waits for the GPU after every step (a training loop reads nothing back, but each step is its own submit); tfjs queues a batch of steps and waits once, which can only favour tfjs. tfjs draws noise and timesteps on the CPU and uploads them (tf.randomNormal, tf.randomUniform); vdm draws them with Philox on the GPU. vdm also runs a non-finite gradient check each step (one pass over the gradients), tfjs does not. tf.train.adam is not used: it has neither decoupled weight decay nor clipping, so its step would do less work than vdm's. tfjs matMul is pinned to its packed program (\`WEBGPU_MATMUL_PROGRAM_TYPE\` = ${MATMUL_PACKED}): the split-K program it would pick for some gradient products (few output tiles, K ≥ 2000, B transposed) returns wrong values on this adapter, which made DiT-S/2's conditioning gradients wrong (see bench/train-tfjs.ts).`,
    'Forward pass only: the model on fixed example inputs, no loss (vdm via `lowerModel` + `planModel` + `load`, tfjs the same `forward` the step differentiates).',
    '');
  return lines.join('\n');
}

async function main(): Promise<number> {
  const started = performance.now();
  const loadAtStart = os.loadavg()[0];
  let gpu: Gpu;
  try {
    gpu = await openGpu();
  } catch (e) {
    if (e instanceof NoAdapterError) { log(`bench:train: ${e.message}`); return 1; }
    throw e;
  }
  const cases = CASES.filter((c) => !only || only.test(c.name));
  if (!cases.length) { log(`bench:train: no case matches ${only}; nothing written`); return 0; }
  const adapter = gpu.info.description || `${gpu.info.vendor} ${gpu.info.device}`;
  log(`bench:train: ${adapter}${gpu.software ? ' (software adapter)' : ''}`);
  const tf = await loadTfjs();
  await registerGradients();
  tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', MATMUL_PACKED);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-bench-train-'));
  const results: CaseResult[] = [];
  try {
    for (const c of cases) {
      const t0 = performance.now();
      try {
        const r = await runCase(gpu, tf, c, tmp);
        results.push(r);
        log(`  ${c.name}: vdm ${ms(r.step.vdm)}, tfjs ${ms(r.step.tfjs)} ms/step${r.speedRatio ? `, vdm/tfjs ${r.speedRatio.toFixed(2)}` : ''} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      } catch (e) {
        log(`  ${c.name}: failed: ${e instanceof Error ? e.message : String(e)}`);
        return 1;
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const report = {
    date: new Date().toISOString(), adapter, software: gpu.software, node: process.versions.node, cpus: os.cpus().length,
    load: [loadAtStart, os.loadavg()[0]], targetMs, rounds, totalSeconds: (performance.now() - started) / 1000, cases: results,
  };
  const dir = new URL('.', import.meta.url);
  fs.writeFileSync(new URL('train.json', dir), JSON.stringify(report, null, 2) + '\n');
  const md = markdown(report);
  fs.writeFileSync(new URL('train.md', dir), md);
  process.stdout.write(md);
  return 0;
}

// Exit explicitly: tfjs and Dawn may hold handles that would keep Node waiting.
main().then((code) => process.exit(code), (e) => { log(`bench:train: ${message(e)}`); process.exit(1); });
