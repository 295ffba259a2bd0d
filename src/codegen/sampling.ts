// Sampling as one lowered program whose dispatches are one step of the reverse process, recorded
// once and run `steps` times in one command buffer (or a few, for progress):
//   prepare   the step index from a counter on the GPU; t into the model's timestep input
//   init      x_T from Philox into the model's noisy input (the first step only)
//   forward   the model, fused (codegen/lower.ts), at batch b, or 2b under classifier-free guidance:
//             entries [0, b) conditional, [b, 2b) unconditional (null class, zeroed text), one pass
//   step      guidance, split prediction, DDIM or DDPM, or rectified flow's Euler step
//             (kernels/sampler.ts), x' over x_t in place
//   keep      with keepFirst, for a video model whose image input is its first frame (the one
//             image_condition joins to x: firstFrameInput), frame 0 of x' replaced by that frame
//             noised to the next timestep, sqrt ᾱ' f + sqrt(1 − ᾱ') ε (Philox on its own stream),
//             and by f itself after the last step: conditional sampling by replacement (Ho et al.
//             2022, "Video Diffusion Models"), so the output's first frame is the given one
// The per-step scalars are one table uploaded once (samplerTableOf, float64 on the host). Nothing
// here touches a GPU: the runtime's sampler (runtime/sampler.ts) loads and runs it.
import type { Graph, GraphInput } from '../compiler/ir/graph.ts';
import { numelOf } from '../compiler/ir/named-tensor.ts';
import { alphaBar, noiseSchedule, posteriorCoefficients, samplerTimesteps, type NoiseSchedule } from '../compiler/reference/diffusion-math.ts';
import { firstFrameInput, respacedSchedule } from '../compiler/reference/sampling.ts';
import type { AdapterTraits } from './kernels/kernel.ts';
import {
  SAMPLER_TABLE_COLUMNS, samplerInitKernel, samplerKeepFirstKernel, samplerPrepareKernel, samplerStepKernel, type KeepFirstParams,
  type SamplerKind, type SamplerStepParams,
} from './kernels/sampler.ts';
import { lowerGraph, type BufferDecl, type LoweredGraph, type LoweredStep } from './lower.ts';

export class SamplingError extends Error {}

export interface SamplingOptions {
  readonly adapter?: AdapterTraits;
  readonly sampler: SamplerKind;
  /** timesteps visited, evenly spaced over the schedule (samplerTimesteps): 1 .. T */
  readonly steps: number;
  /** DDIM's eta (0: deterministic); ignored by DDPM */
  readonly eta: number;
  /** classifier-free guidance scale; null: none. With a scale the graph must have batch 2b. */
  readonly guidance: number | null;
  /** clip x̂0 to [−1, 1] at every step (default true) */
  readonly clip?: boolean;
  /** fuse elementwise chains (default true) */
  readonly fuse?: boolean;
  /**
   * replace frame 0 of each sample by the model's first-frame image input (firstFrameInput), noised
   * to each step's next timestep (default false; ignored for a model without one)
   */
  readonly keepFirst?: boolean;
}

export interface SamplingProgram {
  /** the model at its sampling batch (2b under guidance) */
  readonly graph: Graph;
  /** one step: prepare, init, forward, sampler step, and keep-first when on */
  readonly lowered: LoweredGraph;
  /** host data to upload once, by buffer name (the step table) */
  readonly constants: ReadonlyMap<string, Float32Array>;
  readonly io: {
    /** the model's noisy input: x_T .. x_0 in its first b entries (copied into the second half under guidance) */
    readonly x: string;
    /** the model's timestep input (written on the GPU) */
    readonly timestep: string;
    /** 2 u32, (current, next) step index: write (0, 0) to start a run */
    readonly counter: string;
    /** the RngParams uniform (seed, base step 0, stream) */
    readonly rng: string;
  };
  /** the other model inputs (labels, text, ...) by input name -> buffer, at the model's batch */
  readonly conditions: ReadonlyMap<string, string>;
  readonly noisy: GraphInput;
  /** samples: b */
  readonly batch: number;
  /** the model's batch: b, or 2b under guidance */
  readonly modelBatch: number;
  /** elements of the b samples */
  readonly elements: number;
  /** the timesteps visited, from the noisiest down */
  readonly timesteps: readonly number[];
  readonly step: SamplerStepParams;
  /** the first frame kept: its image input, that input's buffer and the kernel's sizes; null: off */
  readonly keepFirst: { readonly input: string; readonly buffer: string; readonly params: KeepFirstParams } | null;
}

/**
 * The step table [steps, 10] in float64 (columns: SAMPLER_TABLE_COLUMNS), row k for timesteps[k].
 * DDIM from ᾱ alone; DDPM on the schedule respaced to the visited timesteps (respacedSchedule), the
 * last step without noise. Cells a sampler does not read are 0. The last two columns, ᾱ of the
 * next timestep (1 after the last), serve keep-first under either sampler. Euler (rectified flow):
 * t'_next − t' in coef_x0, and (1 − t', t') where the others hold (sqrt ᾱ, sqrt(1 − ᾱ)).
 */
export function samplerTableOf(s: NoiseSchedule, timesteps: readonly number[], kind: SamplerKind, eta: number, learnedSigma: boolean): Float64Array {
  const C = SAMPLER_TABLE_COLUMNS.length;
  const N = timesteps.length;
  const table = new Float64Array(N * C);
  if (s.flow || kind === 'euler') {
    if (!s.flow || kind !== 'euler') throw new SamplingError('the euler sampler goes with a rectified_flow schedule, and only it');
    const flow = s.flow;
    timesteps.forEach((t, k) => {
      const next = k + 1 < N ? flow[timesteps[k + 1]] : 0;
      table.set([t, 1 - flow[t], flow[t], next - flow[t], 0, 0, 0, 0, 1 - next, next], k * C);
    });
    return table;
  }
  const rs = respacedSchedule(s, timesteps);
  timesteps.forEach((t, k) => {
    const ab = alphaBar(s, t);
    const abPrev = alphaBar(s, k + 1 < N ? timesteps[k + 1] : -1);
    const row = [t, Math.sqrt(ab), Math.sqrt(1 - ab), 0, 0, 0, 0, 0, Math.sqrt(abPrev), Math.sqrt(1 - abPrev)];
    if (kind === 'ddim') {
      const sigma = eta * Math.sqrt(((1 - abPrev) / (1 - ab)) * (1 - ab / abPrev));
      row[3] = Math.sqrt(abPrev);
      row[4] = Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma));
      row[5] = sigma;
    } else {
      const i = N - 1 - k;
      const post = posteriorCoefficients(rs, i);
      row[3] = post.meanX0;
      row[4] = post.meanXt;
      // the last step adds no noise; its clipped log variance needs a second step (NaN for one)
      if (i > 0) {
        row[5] = learnedSigma ? 1 : Math.exp(0.5 * post.logVarianceClipped);
        if (learnedSigma) { row[6] = post.logBeta; row[7] = post.logVarianceClipped; }
      }
    }
    table.set(row.map((v) => (Number.isFinite(v) ? v : 0)), k * C);
  });
  return table;
}

/** The sampling program of `graph` (at batch b, or 2b with guidance), for `opts.steps` steps. */
export function lowerSampling(graph: Graph, opts: SamplingOptions): SamplingProgram {
  const d = graph.diffusion;
  if (!d) throw new SamplingError(`model ${graph.model} has no diffusion section: it says how to sample (schedule, predict)`);
  if (graph.outputs.length !== 1) throw new SamplingError(`model ${graph.model} has ${graph.outputs.length} outputs; sampling needs exactly one (the prediction)`);
  const noisy = graph.inputs.find((i) => i.name === d.noisy_input)!;
  const time = graph.inputs.find((i) => i.kind === 'timestep');
  if (!time) throw new SamplingError(`model ${graph.model} has no timestep input (input s : timestep[b]): the denoiser must see t`);
  const modelBatch = noisy.axes[0]?.[0] === 'b' ? noisy.axes[0][1] : undefined;
  if (modelBatch === undefined) throw new SamplingError(`the noisy input '${noisy.name}' must have the batch axis b first`);
  if (opts.guidance !== null && modelBatch % 2 !== 0) throw new SamplingError(`guidance runs the conditional and unconditional passes as one batch: b must be even (got ${modelBatch})`);
  const schedule = noiseSchedule(d.schedule);
  if (!Number.isInteger(opts.steps) || opts.steps < 1 || opts.steps > schedule.steps) throw new SamplingError(`steps must be an integer from 1 to the schedule's ${schedule.steps} (got ${opts.steps})`);
  if (!(opts.eta >= 0) || !Number.isFinite(opts.eta)) throw new SamplingError(`eta must be a number >= 0 (got ${opts.eta})`);
  const learned = d.predict.learned_sigma;
  const wantAxes = noisy.axes.map(([name, size]) => [name, name === 'c' && learned ? 2 * size : size] as const);
  const outAxes = graph.nodes[graph.outputs[0].node].axes;
  const same = outAxes.length === wantAxes.length && outAxes.every(([name, size], i) => wantAxes[i][0] === name && wantAxes[i][1] === size);
  if (!same) throw new SamplingError(`the prediction '${graph.outputs[0].name}' [${outAxes.map(([a, s]) => `${a}=${s}`)}] must have the axes [${wantAxes.map(([a, s]) => `${a}=${s}`)}] in this order (the noisy input's${learned ? ', twice its channels: noise, then variance' : ''})`);
  const channelAxis = noisy.axes.findIndex(([name]) => name === 'c');
  if (learned && channelAxis < 1) throw new SamplingError(`a learned sigma needs a channel axis c after b in '${noisy.name}'`);

  const forward = lowerGraph(graph, opts.adapter, 'node', opts.fuse ?? true);
  const buffers = new Map<string, BufferDecl>(forward.buffers);
  const declare = (name: string, elements: number, role: BufferDecl['role'], dtype: BufferDecl['dtype'] = 'f32') => {
    if (buffers.has(name)) throw new Error(`lowerSampling: buffer '${name}' declared twice`);
    buffers.set(name, { name, elements: Math.max(1, elements), dtype, role });
    return name;
  };
  const timesteps = samplerTimesteps(schedule, opts.steps);
  const batch = opts.guidance === null ? modelBatch : modelBatch / 2;
  const total = numelOf(noisy.axes);
  const elements = opts.guidance === null ? total : total / 2;
  const step: SamplerStepParams = {
    shape: [batch, ...noisy.axes.slice(1).map(([, s]) => s)], channelAxis, kind: opts.sampler, predict: d.predict.target,
    learnedSigma: learned, guidance: opts.guidance, clip: opts.clip ?? true,
    noise: opts.sampler === 'ddpm' || (opts.sampler === 'ddim' && opts.eta > 0), steps: timesteps.length,
  };
  const table = declare('sample.table', timesteps.length * SAMPLER_TABLE_COLUMNS.length, 'input');
  const io = {
    x: forward.inputs.get(noisy.name)!.buffer,
    timestep: forward.inputs.get(time.name)!.buffer,
    counter: declare('sample.counter', 2, 'state', 'u32'),
    rng: declare('sample.rng', 4, 'state', 'u32'),
  };
  const out = forward.outputs.get(graph.outputs[0].name)!;
  const pre: LoweredStep[] = [
    { spec: samplerPrepareKernel({ batch: modelBatch, steps: timesteps.length }), buffers: [io.counter, table, io.timestep], label: 'sampler: timestep' },
    { spec: samplerInitKernel({ n: elements, copies: opts.guidance === null ? 1 : 2 }), buffers: [io.rng, io.counter, io.x], label: 'sampler: x_T' },
  ];
  const post: LoweredStep[] = [
    { spec: samplerStepKernel(step), buffers: [io.rng, io.counter, table, out.buffer, io.x], label: `sampler: ${opts.sampler} step` },
  ];
  const first = opts.keepFirst ? firstFrameInput(graph) : null;
  let keepFirst: SamplingProgram['keepFirst'] = null;
  if (first) {
    const params: KeepFirstParams = {
      frames: (numelOf(first.input.axes) / modelBatch) * batch, t: first.t, post: first.post, n: elements,
      copies: opts.guidance === null ? 1 : 2, steps: timesteps.length,
    };
    keepFirst = { input: first.input.name, buffer: forward.inputs.get(first.input.name)!.buffer, params };
    post.push({ spec: samplerKeepFirstKernel(params), buffers: [io.rng, io.counter, table, keepFirst.buffer, io.x], label: 'sampler: keep first frame' });
  }
  const conditions = new Map(graph.inputs.filter((i) => i !== noisy && i !== time).map((i) => [i.name, forward.inputs.get(i.name)!.buffer]));
  return {
    graph,
    lowered: { ...forward, buffers, steps: [...pre, ...forward.steps, ...post] },
    constants: new Map([[table, Float32Array.from(samplerTableOf(schedule, timesteps, opts.sampler, opts.eta, learned))]]),
    io, conditions, noisy, batch, modelBatch, elements, timesteps, step, keepFirst,
  };
}
