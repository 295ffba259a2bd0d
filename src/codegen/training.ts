// One training step as one lowered program, recorded once and submitted once per step:
//   noise and timesteps from Philox keyed by (seed, step, stream)  →  q_sample into the model's
//   noisy input, its timestep input and the target  →  forward (fusing only the elementwise values
//   no backward rule reads)  →  the spec's loss (mse, vlb, temporal_consistency) and its gradient  →  backward  →
//   non-finite check, global gradient norm, AdamW with clipping and EMA over the parameter arena.
// Parameters, gradients, Adam moments and the EMA each live in one arena whose parts are the
// tensors (64-element aligned: the adapters' 256-byte storage offset alignment), so the optimizer
// is one kernel over all of them. Nothing here touches a GPU: the runtime's trainer loads it.
import type { Graph, GraphInput } from '../compiler/ir/graph.ts';
import { numelOf } from '../compiler/ir/named-tensor.ts';
import type { Value } from '../compiler/primitives/lowering.ts';
import { alphaBar, noiseSchedule, noisingCoefficients, posteriorCoefficients, type NoiseSchedule } from '../compiler/reference/diffusion-math.ts';
import { gradientReads, lowerBackward } from './backward.ts';
import { planFusion } from './fuse.ts';
import { qSampleKernel } from './kernels/diffusion.ts';
import {
  diffusionLossFinishKernel, diffusionLossKernel, diffusionLossSizes, LOSS_TABLE_COLUMNS, type DiffusionLossParams, type LossTerm,
} from './kernels/diffusion-loss.ts';
import type { AdapterTraits } from './kernels/kernel.ts';
import { adamwKernel, chunkTable, gradNormKernels, nonfiniteKernel, OPTIMIZER_WORKGROUP, type ArenaSegment } from './kernels/optimizer.ts';
import { l2FinishKernel } from './kernels/reduce.ts';
import { randomKernel } from './kernels/philox.ts';
import { lowerNodes, type BufferDecl, type LoweredGraph, type LoweredStep } from './lower.ts';
import { recomputeBlocks } from './recompute.ts';
import { planMemory } from './plan-memory.ts';

/** Arena alignment in elements: 256 bytes, the largest minStorageBufferOffsetAlignment WebGPU allows. */
export const ARENA_ALIGN = 64;

/**
 * Most elements in one arena: 128 MiB, WebGPU's default maxStorageBufferBindingSize, which every
 * adapter grants. A larger model gets several arenas (groups) and the optimizer runs once per group.
 */
export const ARENA_MAX_ELEMENTS = 2 ** 25;

/** Philox streams: one per tensor drawn in a step. */
export const STREAMS = { noise: 0, timesteps: 1, dropout: 2 } as const;

export interface ArenaEntry extends ArenaSegment {
  readonly path: string;
  readonly shape: readonly number[];
  /** the arena group holding it; `offset` is within that group's arenas */
  readonly group: number;
}

export interface TrainingProgram {
  readonly graph: Graph;
  readonly lowered: LoweredGraph;
  /** parameters in the arenas, in graph order */
  readonly arena: readonly ArenaEntry[];
  /** elements of each arena group: buffers arena.<param|grad|m|v|ema>.<group> */
  readonly arenaGroups: readonly number[];
  /** constant host data to upload once, by buffer name (schedule table, chunk table) */
  readonly constants: ReadonlyMap<string, Float32Array | Uint32Array>;
  /** the model inputs the data fills each step (labels, scalars, text...), by input name -> buffer */
  readonly dataInputs: ReadonlyMap<string, string>;
  /** the buffers a trainer writes or reads */
  readonly io: {
    /** the clean batch x0, in the noisy input's layout ([b, ...] row-major in the input's axis order) */
    readonly x0: string;
    readonly rngNoise: string;
    readonly rngTimesteps: string;
    readonly adamw: string;
    /** 1 element: the step's loss, Σ weight · term over the spec's loss terms */
    readonly loss: string;
    /** 1 element: the global gradient norm before clipping */
    readonly gradNorm: string;
    /** per arena group, 2 u32: count of non-finite gradients since cleared, index of the first in the group */
    readonly flags: readonly string[];
  };
  /** the loss terms as the spec weights them, each with its 1-element buffer (the unweighted value, for logs) */
  readonly lossTerms: readonly { readonly term: LossTerm; readonly weight: number; readonly buffer: string }[];
  /** the noisy input and its shape */
  readonly noisy: GraphInput;
  readonly batch: number;
  readonly steps: number;
}

/** Parameters excluded from weight decay: biases, norm gains, embedding tables (as DiT and most recipes do). */
export const decays = (path: string, shape: readonly number[]) => shape.length >= 2 && !/(^|\.)(embedding_table|pos_embed)(\.|$)/.test(path);

/** The parameters laid out in arena groups of at most `cap` elements each, in graph order. */
export function arenaOf(graph: Graph, cap = ARENA_MAX_ELEMENTS): { entries: ArenaEntry[]; groups: number[] } {
  const entries: ArenaEntry[] = [];
  const groups = [0];
  for (const n of graph.nodes) for (const p of n.params) {
    const length = p.shape.reduce((a, b) => a * b, 1);
    const size = Math.ceil(length / ARENA_ALIGN) * ARENA_ALIGN;
    if (size > cap) throw new TrainingError(`parameter ${p.path} [${p.shape}] has ${length} elements, more than one storage buffer binding holds (${cap})`);
    if (groups[groups.length - 1] + size > cap) groups.push(0);
    const group = groups.length - 1;
    entries.push({ path: p.path, shape: p.shape, offset: groups[group], length, weightDecay: decays(p.path, p.shape), group });
    groups[group] += size;
  }
  return { entries, groups: groups.map((g) => Math.max(g, ARENA_ALIGN)) };
}

export interface TrainingOptions {
  readonly adapter?: AdapterTraits;
  readonly ema?: boolean;
  /** fuse elementwise chains whose values the backward does not read (default: true) */
  readonly fuse?: boolean;
  /** run each block's forward again before its backward instead of keeping its inner values (default: false) */
  readonly recompute?: boolean;
  /** most elements per arena group (default ARENA_MAX_ELEMENTS; tests split small models with less) */
  readonly arenaElements?: number;
}

export class TrainingError extends Error {}

/**
 * The loss kernels' per-timestep table [T, 6] in float64 (columns: LOSS_TABLE_COLUMNS): sqrt ᾱ,
 * sqrt(1 − ᾱ), their ratio, c0 · sqrt(1 − ᾱ) / sqrt ᾱ (c0 the posterior mean's x0 coefficient),
 * the clipped posterior log variance and log β. Rows that need t = 1 (vlb at t = 0) are NaN when T = 1.
 */
export function lossTableOf(s: NoiseSchedule): Float64Array {
  const table = new Float64Array(s.steps * LOSS_TABLE_COLUMNS.length);
  // rectified flow: (1 − t', t'); it trains mse only, so the posterior's columns are 0
  if (s.flow) {
    for (let t = 0; t < s.steps; t++) table.set([...noisingCoefficients(s, t), 0, 0, 0, 0], t * LOSS_TABLE_COLUMNS.length);
    return table;
  }
  for (let t = 0; t < s.steps; t++) {
    const [a, sg] = noisingCoefficients(s, t);
    const post = posteriorCoefficients(s, t);
    table.set([a, sg, sg / a, (post.meanX0 * sg) / a, post.logVarianceClipped, post.logBeta], t * LOSS_TABLE_COLUMNS.length);
  }
  return table;
}

export function lowerTraining(graph: Graph, opts: TrainingOptions = {}): TrainingProgram {
  const diffusion = graph.diffusion;
  if (!diffusion) throw new TrainingError(`model ${graph.model} has no diffusion section: add one (schedule, predict, loss) to train it`);
  if (diffusion.predict.learned_sigma && diffusion.predict.target !== 'epsilon') throw new TrainingError(`model ${graph.model}: a learned sigma goes with predict epsilon`);
  if (diffusion.schedule.kind === 'rectified_flow' && (diffusion.predict.target !== 'v' || diffusion.loss.some((l) => l.term !== 'mse'))) {
    throw new TrainingError(`model ${graph.model}: rectified_flow trains predict v with loss mse`);
  }
  if (diffusion.loss.some((l) => l.term === 'vlb')) {
    if (!diffusion.predict.learned_sigma) throw new TrainingError(`model ${graph.model}: the vlb loss term needs predict epsilon(learned_sigma: true)`);
    if (diffusion.schedule.steps < 2) throw new TrainingError(`model ${graph.model}: the vlb loss term needs a schedule of at least 2 steps (its t = 0 variance is clipped to t = 1's)`);
  }
  if (graph.outputs.length !== 1) throw new TrainingError(`model ${graph.model} has ${graph.outputs.length} outputs; training needs exactly one (the prediction)`);
  const noisy = graph.inputs.find((i) => i.name === diffusion.noisy_input)!;
  const time = graph.inputs.find((i) => i.kind === 'timestep');
  if (!time) throw new TrainingError(`model ${graph.model} has no timestep input (input s : timestep[b]): the denoiser must see t`);
  const batch = noisy.axes.find(([n]) => n === 'b')?.[1];
  if (noisy.axes[0]?.[0] !== 'b' || batch === undefined) throw new TrainingError(`the noisy input '${noisy.name}' must have the batch axis b first`);

  const fusion = planFusion(graph, opts.fuse ?? true, gradientReads(graph));
  const forward = lowerNodes(graph, { adapter: opts.adapter, fusion });
  const buffers = new Map<string, BufferDecl>(forward.buffers);
  const declare = (name: string, elements: number, role: BufferDecl['role'], dtype: BufferDecl['dtype'] = 'f32') => {
    if (buffers.has(name)) throw new Error(`lowerTraining: buffer '${name}' declared twice`);
    buffers.set(name, { name, elements: Math.max(1, elements), dtype, role });
    return name;
  };
  const pre: LoweredStep[] = [];
  const post: LoweredStep[] = [];
  const emit = (into: LoweredStep[], label: string) => (spec: LoweredStep['spec'], bufs: readonly string[]) => into.push({ spec, buffers: [...bufs], label });

  // The diffusion process: noise, timesteps, q_sample.
  const xValue = forward.inputs.get(noisy.name)!;
  const sValue = forward.inputs.get(time.name)!;
  const n = numelOf(noisy.axes);
  const schedule = noiseSchedule(diffusion.schedule);
  const T = schedule.alphasCumprod.length;
  const table = new Float32Array(2 * T);
  for (let t = 0; t < T; t++) table.set(noisingCoefficients(schedule, t), 2 * t);
  // rectified flow's v is the velocity ε − x0 (the kernels' target `flow`)
  const kernelTarget = schedule.flow ? 'flow' as const : diffusion.predict.target;
  const io = {
    x0: declare('train.x0', n, 'input'),
    rngNoise: declare('train.rng.noise', 4, 'state', 'u32'),
    rngTimesteps: declare('train.rng.timesteps', 4, 'state', 'u32'),
    adamw: declare('train.adamw', 12, 'state'),
    loss: declare('train.loss', 1, 'state'),
    gradNorm: declare('train.grad_norm', 1, 'state'),
  };
  // kept whole (not planned) so a step's draws can be read back and checked
  const noise = declare('train.noise', n, 'state');
  const tsteps = declare('train.t', batch, 'state', 'i32');
  const target = declare('train.target', n, 'state');
  const tableName = declare('train.schedule', 2 * T, 'input');
  emit(pre, 'noise')(randomKernel({ kind: 'normal', n }), [io.rngNoise, noise]);
  const ts = diffusion.timesteps;
  emit(pre, 'timesteps')(randomKernel({ kind: 'timesteps', n: batch, steps: T, logitNormal: ts?.kind === 'logit_normal' ? { mean: ts.mean, std: ts.std } : undefined }),
    [io.rngTimesteps, tsteps]);
  emit(pre, 'q_sample')(qSampleKernel({ batch, perSample: n / batch, steps: T, target: kernelTarget }),
    [io.x0, noise, tsteps, tableName, xValue.buffer, sValue.buffer, target]);

  // The loss (docs/language.md, `loss`): one kernel writes d loss / d output and per-workgroup partial
  // sums of each term, a second adds them into train.loss.<term> and their weighted sum, train.loss.
  const out = forward.outputs.get(graph.outputs[0].name)!;
  const outAxes = out.axes;
  const learned = diffusion.predict.learned_sigma;
  const wantAxes = noisy.axes.map(([name, size]) => [name, name === 'c' && learned ? 2 * size : size] as const);
  const same = outAxes.length === wantAxes.length && outAxes.every(([name, size], i) => wantAxes[i][0] === name && wantAxes[i][1] === size);
  if (!same) throw new TrainingError(`the prediction '${graph.outputs[0].name}' [${outAxes.map(([a, s]) => `${a}=${s}`)}] must have the axes [${wantAxes.map(([a, s]) => `${a}=${s}`)}] in this order (the noisy input's${learned ? ', twice its channels: noise, then variance' : ''})`);
  const lossParams: DiffusionLossParams = {
    shape: noisy.axes.map(([, s]) => s),
    channelAxis: noisy.axes.findIndex(([name]) => name === 'c'),
    timeAxis: noisy.axes.findIndex(([name]) => name === 't'),
    steps: T, predict: kernelTarget, learnedSigma: learned, terms: diffusion.loss,
  };
  const sizes = diffusionLossSizes(lossParams);
  const seed: Value = { buffer: declare('train.seed', sizes.output, 'scratch'), axes: outAxes };
  const partialSums = declare('train.loss_partials', sizes.partials, 'scratch');
  const lossTable = declare('train.loss_table', T * LOSS_TABLE_COLUMNS.length, 'input');
  const lossTerms = diffusion.loss.map(({ term, weight }) => ({ term, weight, buffer: declare(`train.loss.${term}`, 1, 'state') }));
  const lossSteps: LoweredStep[] = [];
  emit(lossSteps, 'loss and its gradient')(diffusionLossKernel(lossParams), [out.buffer, io.x0, noise, tsteps, lossTable, seed.buffer, partialSums]);
  emit(lossSteps, 'loss')(diffusionLossFinishKernel(lossParams), [partialSums, ...lossTerms.map((t) => t.buffer), io.loss]);

  const withLoss: LoweredGraph = { ...forward, buffers, steps: [...pre, ...forward.steps, ...lossSteps] };
  const recompute = opts.recompute ? recomputeBlocks(graph, forward, fusion, opts.adapter) : [];
  const back = lowerBackward(graph, withLoss, new Map([[graph.outputs[0].name, seed]]), opts.adapter, recompute);

  // Arenas: parameters and gradients become parts; the optimizer sweeps whole arenas, group by group.
  const { entries, groups } = arenaOf(graph, opts.arenaElements);
  const all = new Map<string, BufferDecl>(back.buffers);
  const add = (name: string, elements: number, role: BufferDecl['role'], dtype: BufferDecl['dtype'] = 'f32', part?: BufferDecl['part']) => {
    all.set(name, { name, elements, dtype, role, ...(part ? { part } : {}) });
    return name;
  };
  const arenas = (kind: string) => groups.map((elements, g) => add(`arena.${kind}.${g}`, elements, 'arena'));
  const [pArena, gArena, mArena, vArena] = ['param', 'grad', 'm', 'v'].map(arenas);
  const ema = opts.ema ?? true;
  const eArena = ema ? arenas('ema') : [];
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const [path, buffer] of forward.params) {
    const e = byPath.get(path)!;
    all.set(buffer, { ...all.get(buffer)!, part: { arena: pArena[e.group], offset: e.offset } });
  }
  for (const [path, buffer] of back.paramGrads) {
    const e = byPath.get(path)!;
    all.set(buffer, { ...all.get(buffer)!, part: { arena: gArena[e.group], offset: e.offset } });
  }
  const layouts = groups.map((_, g) => ({ segments: entries.filter((e) => e.group === g) }));
  const norms = layouts.map(gradNormKernels);
  // every group's norm partials in one buffer (parts 256-byte aligned, the gaps zero): one finish
  const partialsAt = norms.map((_, g) => norms.slice(0, g).reduce((n, k) => n + Math.ceil(k.count / ARENA_ALIGN) * ARENA_ALIGN, 0));
  const partialsLength = partialsAt[groups.length - 1] + norms[groups.length - 1].count;
  const partials = add('train.norm_partials', partialsLength, 'arena');
  const constants = new Map<string, Float32Array | Uint32Array>([[partials, new Float32Array(partialsLength)]]);
  const flags: string[] = [];
  layouts.forEach((layout, g) => {
    const chunks = add(`train.chunks.${g}`, chunkTable(layout).length, 'input', 'u32');
    constants.set(chunks, chunkTable(layout));
    const flag = add(`train.nonfinite.${g}`, 2, 'state', 'u32');
    flags.push(flag);
    const part = add(`train.norm_partials.${g}`, norms[g].count, 'state', 'f32', { arena: partials, offset: partialsAt[g] });
    emit(post, 'nonfinite check')(nonfiniteKernel(layout), [chunks, gArena[g], flag]);
    emit(post, 'gradient norm')(norms[g].partials, [chunks, gArena[g], part]);
  });
  emit(post, 'gradient norm')(l2FinishKernel(partialsLength, OPTIMIZER_WORKGROUP), [partials, io.gradNorm]);
  layouts.forEach((layout, g) => {
    emit(post, 'adamw')(adamwKernel({ ...layout, ema }), [io.adamw, `train.chunks.${g}`, io.gradNorm, gArena[g], pArena[g], mArena[g], vArena[g], ...(ema ? [eArena[g]] : [])]);
  });

  const dataInputs = new Map(graph.inputs.filter((i) => i !== noisy && i !== time).map((i) => [i.name, forward.inputs.get(i.name)!.buffer]));
  return {
    graph,
    lowered: { ...back, buffers: all, steps: [...back.steps, ...post] },
    arena: entries, arenaGroups: groups,
    constants: new Map<string, Float32Array | Uint32Array>([[tableName, table], [lossTable, Float32Array.from(lossTableOf(schedule))], ...constants]),
    dataInputs, io: { ...io, flags }, lossTerms, noisy, batch, steps: T,
  };
}

export interface TrainingMemory {
  /** parameters, gradients, Adam moments and EMA: the arenas */
  readonly arenas: number;
  /** forward values kept for the backward, gradients and scratch, after memory planning */
  readonly activations: number;
  /** inputs, the step's draws and targets, tables */
  readonly other: number;
  readonly total: number;
}

/** Peak bytes a training step holds on the device (every buffer lives for the whole program). */
export function trainingMemory(program: TrainingProgram): TrainingMemory {
  const plan = planMemory(program.lowered);
  let arenas = 0, other = 0;
  for (const b of program.lowered.buffers.values()) {
    if (b.part || plan.slotOf.has(b.name)) continue;
    if (b.role === 'arena') arenas += b.elements * 4;
    else other += b.elements * 4;
  }
  const activations = plan.plannedBytes;
  return { arenas, activations, other, total: arenas + activations + other };
}
