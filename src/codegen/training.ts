// One training step as one lowered program, recorded once and submitted once per step:
//   noise and timesteps from Philox keyed by (seed, step, stream)  →  q_sample into the model's
//   noisy input, its timestep input and the target  →  forward (unfused: backward reads every
//   value)  →  MSE loss and its gradient  →  backward  →  non-finite check, global gradient norm,
//   AdamW with clipping and EMA over the parameter arena.
// Parameters, gradients, Adam moments and the EMA each live in one arena whose parts are the
// tensors (64-element aligned: the adapters' 256-byte storage offset alignment), so the optimizer
// is one kernel over all of them. Nothing here touches a GPU: the runtime's trainer loads it.
import type { Graph, GraphInput } from '../compiler/ir/graph.ts';
import { numelOf } from '../compiler/ir/named-tensor.ts';
import { viewOver, type Value } from '../compiler/primitives/lowering.ts';
import { noiseSchedule } from '../compiler/reference/diffusion-math.ts';
import { lowerBackward } from './backward.ts';
import { qSampleKernel } from './kernels/diffusion.ts';
import { elementwiseKernel } from './kernels/elementwise.ts';
import { input, mul, sub } from './kernels/expr.ts';
import type { AdapterTraits } from './kernels/kernel.ts';
import { adamwKernel, chunkTable, gradNormKernels, nonfiniteKernel, type ArenaSegment } from './kernels/optimizer.ts';
import { randomKernel } from './kernels/philox.ts';
import { reduceKernel } from './kernels/reduce.ts';
import { lowerGraph, type BufferDecl, type LoweredGraph, type LoweredStep } from './lower.ts';
import { planMemory } from './plan-memory.ts';

/** Arena alignment in elements: 256 bytes, the largest minStorageBufferOffsetAlignment WebGPU allows. */
export const ARENA_ALIGN = 64;

/** Philox streams: one per tensor drawn in a step. */
export const STREAMS = { noise: 0, timesteps: 1, dropout: 2 } as const;

export interface ArenaEntry extends ArenaSegment {
  readonly path: string;
  readonly shape: readonly number[];
}

export interface TrainingProgram {
  readonly graph: Graph;
  readonly lowered: LoweredGraph;
  /** parameters in the arena, in graph order */
  readonly arena: readonly ArenaEntry[];
  readonly arenaElements: number;
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
    /** 1 element: the mean loss of the step */
    readonly loss: string;
    /** 1 element: the global gradient norm before clipping */
    readonly gradNorm: string;
    /** 2 u32: count of non-finite gradients since cleared, index of the first in the arena */
    readonly flag: string;
  };
  /** the noisy input and its shape */
  readonly noisy: GraphInput;
  readonly batch: number;
  readonly steps: number;
}

/** Parameters excluded from weight decay: biases, norm gains, embedding tables (as DiT and most recipes do). */
export const decays = (path: string, shape: readonly number[]) => shape.length >= 2 && !/(^|\.)(embedding_table|pos_embed)(\.|$)/.test(path);

export function arenaOf(graph: Graph): { entries: ArenaEntry[]; elements: number } {
  const entries: ArenaEntry[] = [];
  let offset = 0;
  for (const n of graph.nodes) for (const p of n.params) {
    const length = p.shape.reduce((a, b) => a * b, 1);
    entries.push({ path: p.path, shape: p.shape, offset, length, weightDecay: decays(p.path, p.shape) });
    offset += Math.ceil(length / ARENA_ALIGN) * ARENA_ALIGN;
  }
  return { entries, elements: Math.max(offset, ARENA_ALIGN) };
}

export interface TrainingOptions {
  readonly adapter?: AdapterTraits;
  readonly ema?: boolean;
}

export class TrainingError extends Error {}

export function lowerTraining(graph: Graph, opts: TrainingOptions = {}): TrainingProgram {
  const diffusion = graph.diffusion;
  if (!diffusion) throw new TrainingError(`model ${graph.model} has no diffusion section: add one (schedule, predict, loss) to train it`);
  if (diffusion.predict.learned_sigma) throw new TrainingError(`model ${graph.model} learns sigma (predict ... learned_sigma): its vlb loss term cannot be trained on the GPU yet`);
  const unsupported = diffusion.loss.filter((l) => l.term !== 'mse');
  if (unsupported.length) throw new TrainingError(`model ${graph.model}: the loss term ${unsupported.map((l) => l.term).join(', ')} cannot be trained on the GPU yet (mse can)`);
  if (graph.outputs.length !== 1) throw new TrainingError(`model ${graph.model} has ${graph.outputs.length} outputs; training needs exactly one (the prediction)`);
  const noisy = graph.inputs.find((i) => i.name === diffusion.noisy_input)!;
  const time = graph.inputs.find((i) => i.kind === 'timestep');
  if (!time) throw new TrainingError(`model ${graph.model} has no timestep input (input s : timestep[b]): the denoiser must see t`);
  const batch = noisy.axes.find(([n]) => n === 'b')?.[1];
  if (noisy.axes[0]?.[0] !== 'b' || batch === undefined) throw new TrainingError(`the noisy input '${noisy.name}' must have the batch axis b first`);

  const forward = lowerGraph(graph, opts.adapter, 'node', false);
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
  for (let t = 0; t < T; t++) { table[2 * t] = Math.sqrt(schedule.alphasCumprod[t]); table[2 * t + 1] = Math.sqrt(1 - schedule.alphasCumprod[t]); }
  const io = {
    x0: declare('train.x0', n, 'input'),
    rngNoise: declare('train.rng.noise', 4, 'state', 'u32'),
    rngTimesteps: declare('train.rng.timesteps', 4, 'state', 'u32'),
    adamw: declare('train.adamw', 12, 'state'),
    loss: declare('train.loss', 1, 'state'),
    gradNorm: declare('train.grad_norm', 1, 'state'),
    flag: declare('train.nonfinite', 2, 'state', 'u32'),
  };
  // kept whole (not planned) so a step's draws can be read back and checked
  const noise = declare('train.noise', n, 'state');
  const tsteps = declare('train.t', batch, 'state', 'i32');
  const target = declare('train.target', n, 'state');
  const tableName = declare('train.schedule', 2 * T, 'input');
  emit(pre, 'noise')(randomKernel({ kind: 'normal', n }), [io.rngNoise, noise]);
  emit(pre, 'timesteps')(randomKernel({ kind: 'timesteps', n: batch, steps: T }), [io.rngTimesteps, tsteps]);
  emit(pre, 'q_sample')(qSampleKernel({ batch, perSample: n / batch, steps: T, target: diffusion.predict.target }),
    [io.x0, noise, tsteps, tableName, xValue.buffer, sValue.buffer, target]);

  // The loss: mean squared error over every element, and its gradient 2 (out - target) / N.
  const out = forward.outputs.get(graph.outputs[0].name)!;
  const outAxes = out.axes;
  const same = outAxes.length === noisy.axes.length && outAxes.every(([name, size], i) => noisy.axes[i][0] === name && noisy.axes[i][1] === size);
  if (!same) throw new TrainingError(`the prediction '${graph.outputs[0].name}' [${outAxes.map(([a, s]) => `${a}=${s}`)}] must have the noisy input's axes [${noisy.axes.map(([a, s]) => `${a}=${s}`)}] for the mse loss`);
  const seed: Value = { buffer: declare('train.seed', n, 'scratch'), axes: outAxes };
  const sq = declare('train.sq', n, 'scratch');
  const targetValue: Value = { buffer: target, axes: outAxes };
  const shape = outAxes.map(([, s]) => s);
  const lossSteps: LoweredStep[] = [];
  emit(lossSteps, 'mse gradient')(elementwiseKernel({
    shape, inputs: [{ name: 'o', view: viewOver(out, outAxes) }, { name: 't', view: viewOver(targetValue, outAxes) }],
    outputs: [
      { name: 'seed', view: viewOver(seed, outAxes), expr: mul(2 / n, sub(input('o'), input('t'))) },
      { name: 'sq', view: viewOver({ buffer: sq, axes: outAxes }, outAxes), expr: mul(sub(input('o'), input('t')), sub(input('o'), input('t'))) },
    ],
  }), [out.buffer, target, seed.buffer, sq]);
  emit(lossSteps, 'mse')(reduceKernel({ op: 'mean', x: { shape: [n], strides: [1], offset: 0 }, axes: [0], y: { shape: [], strides: [], offset: 0 } }), [sq, io.loss]);

  const withLoss: LoweredGraph = { ...forward, buffers, steps: [...pre, ...forward.steps, ...lossSteps] };
  const back = lowerBackward(graph, withLoss, new Map([[graph.outputs[0].name, seed]]), opts.adapter);

  // Arenas: parameters and gradients become parts; the optimizer sweeps whole arenas.
  const { entries, elements } = arenaOf(graph);
  const all = new Map<string, BufferDecl>(back.buffers);
  const arena = (name: string) => { all.set(name, { name, elements, dtype: 'f32', role: 'arena' }); return name; };
  const [pArena, gArena, mArena, vArena] = ['arena.param', 'arena.grad', 'arena.m', 'arena.v'].map(arena);
  const ema = opts.ema ?? true;
  const eArena = ema ? arena('arena.ema') : '';
  const byPath = new Map(entries.map((e) => [e.path, e]));
  for (const [path, buffer] of forward.params) {
    const e = byPath.get(path)!;
    all.set(buffer, { ...all.get(buffer)!, part: { arena: pArena, offset: e.offset } });
  }
  for (const [path, buffer] of back.paramGrads) {
    const e = byPath.get(path)!;
    all.set(buffer, { ...all.get(buffer)!, part: { arena: gArena, offset: e.offset } });
  }
  const layout = { segments: entries };
  const chunks = 'train.chunks';
  all.set(chunks, { name: chunks, elements: chunkTable(layout).length, dtype: 'u32', role: 'input' });
  const norms = gradNormKernels(layout);
  const partials = 'train.norm_partials';
  all.set(partials, { name: partials, elements: norms.count, dtype: 'f32', role: 'scratch' });
  emit(post, 'nonfinite check')(nonfiniteKernel(layout), [chunks, gArena, io.flag]);
  emit(post, 'gradient norm')(norms.partials, [chunks, gArena, partials]);
  emit(post, 'gradient norm')(norms.finish, [partials, io.gradNorm]);
  emit(post, 'adamw')(adamwKernel({ ...layout, ema }), [io.adamw, chunks, io.gradNorm, gArena, pArena, mArena, vArena, ...(ema ? [eArena] : [])]);

  const dataInputs = new Map(graph.inputs.filter((i) => i !== noisy && i !== time).map((i) => [i.name, forward.inputs.get(i.name)!.buffer]));
  return {
    graph,
    lowered: { ...back, buffers: all, steps: [...back.steps, ...post] },
    arena: entries, arenaElements: elements,
    constants: new Map<string, Float32Array | Uint32Array>([[tableName, table], [chunks, chunkTable(layout)]]),
    dataInputs, io, noisy, batch, steps: T,
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
