// The reverse process in float64: the sampler the GPU's (codegen/sampling.ts) is checked against,
// written from the definitions in diffusion-math.ts (splitPrediction, guide, ddimStep, ddpmStep)
// with the model evaluated by evaluate.ts. Noise is the Philox generator's (kernels/philox.ts),
// keyed as the GPU keys it: x_T at (seed, 0, stream 0), step k's noise at (seed, k + 1, stream 0).
//
// A sampler that visits fewer timesteps than the schedule has (`steps` < T) runs DDPM on the
// respaced schedule (improved DDPM's SpacedDiffusion): ᾱ of the visited timesteps, β'_i =
// 1 − ᾱ'_i / ᾱ'_{i−1}; a learned variance interpolates the respaced β' and β̃'. DDIM needs ᾱ only.
import type { Graph } from '../ir/graph.ts';
import { numelOf, relayout, type NamedTensor } from '../ir/named-tensor.ts';
import { philoxNormal } from '../../codegen/kernels/philox.ts';
import { ddimStep, ddpmStep, guide, noiseSchedule, samplerTimesteps, splitPrediction, type NoiseSchedule, type Prediction } from './diffusion-math.ts';
import { evaluate } from './evaluate.ts';

/** The schedule restricted to `timesteps` (any order; visited ascending): index i is the i-th smallest. */
export function respacedSchedule(s: NoiseSchedule, timesteps: readonly number[]): NoiseSchedule {
  const ts = [...timesteps].sort((a, b) => a - b);
  const alphasCumprod = Float64Array.from(ts, (t) => s.alphasCumprod[t]);
  const betas = Float64Array.from(alphasCumprod, (ab, i) => 1 - ab / (i === 0 ? 1 : alphasCumprod[i - 1]));
  return { steps: ts.length, betas, alphasCumprod };
}

/** x̂0 clipped to [−1, 1] and ε̂ recomputed from it (improved DDPM's clip_denoised). */
export function clipPrediction(predict: Prediction, s: NoiseSchedule, xt: ArrayLike<number>, out: ArrayLike<number>, t: number): { x0: Float64Array; eps: Float64Array } {
  const { x0 } = splitPrediction(predict, s, xt, out, t);
  const clipped = x0.map((v) => Math.min(1, Math.max(-1, v)));
  return { x0: clipped, eps: splitPrediction('x0', s, xt, clipped, t).eps };
}

export interface ReferenceSamplerOptions {
  readonly sampler: 'ddpm' | 'ddim';
  /** timesteps visited (samplerTimesteps); 0 or T: every one */
  readonly steps: number;
  /** DDIM's eta */
  readonly eta: number;
  /** classifier-free guidance scale (the graph then has batch 2b: conditional, then unconditional); null: none */
  readonly guidance: number | null;
  readonly clip: boolean;
  readonly seed: number;
}

/**
 * Samples `graph`'s model in float64. `conditions`: every input besides the noisy one and the
 * timestep, at the graph's batch (under guidance the unconditional half already nulled). Returns
 * x0, b samples in the noisy input's layout.
 */
export function referenceSample(graph: Graph, params: ReadonlyMap<string, Float64Array>, conditions: ReadonlyMap<string, NamedTensor>,
  o: ReferenceSamplerOptions): Float64Array {
  const d = graph.diffusion;
  if (!d) throw new Error(`model ${graph.model} has no diffusion section`);
  const noisy = graph.inputs.find((i) => i.name === d.noisy_input)!;
  const time = graph.inputs.find((i) => i.kind === 'timestep');
  if (!time) throw new Error(`model ${graph.model} has no timestep input`);
  const total = numelOf(noisy.axes);
  const n = o.guidance === null ? total : total / 2;
  const learned = d.predict.learned_sigma;
  const ci = noisy.axes.findIndex(([a]) => a === 'c');
  const C = ci < 0 ? 1 : noisy.axes[ci][1];
  const post = ci < 0 ? 1 : noisy.axes.slice(ci + 1).reduce((p, [, z]) => p * z, 1);
  const predAt = (i: number) => (learned ? (Math.floor(i / (C * post)) * 2 * C + (Math.floor(i / post) % C)) * post + (i % post) : i);
  const half = learned ? 2 * n : n;

  const s = noiseSchedule(d.schedule);
  const ts = samplerTimesteps(s, o.steps);
  const rs = respacedSchedule(s, ts);
  let x = philoxNormal({ seed: o.seed, step: 0, stream: 0 }, n);
  ts.forEach((t, k) => {
    const inputs = new Map(conditions);
    const xs = o.guidance === null ? x : Float64Array.from({ length: total }, (_, i) => x[i % n]);
    inputs.set(noisy.name, { axes: noisy.axes, data: xs });
    inputs.set(time.name, { axes: time.axes, data: new Float64Array(numelOf(time.axes)).fill(t) });
    const outNode = graph.outputs[0];
    const out = relayout(evaluate(graph, inputs, params).outputs.get(outNode.name)!, graph.nodes[outNode.node].axes).data;
    const cond = Float64Array.from({ length: n }, (_, i) => out[predAt(i)]);
    const pred = o.guidance === null ? cond : guide(cond, Float64Array.from({ length: n }, (_, i) => out[predAt(i) + half]), o.guidance);
    const { x0, eps } = o.clip ? clipPrediction(d.predict.target, s, x, pred, t) : splitPrediction(d.predict.target, s, x, pred, t);
    const noise = philoxNormal({ seed: o.seed, step: k + 1, stream: 0 }, n);
    if (o.sampler === 'ddim') {
      x = ddimStep(s, x0, eps, t, k + 1 < ts.length ? ts[k + 1] : -1, o.eta, noise);
    } else {
      const variance = learned ? Float64Array.from({ length: n }, (_, i) => out[predAt(i) + C * post]) : undefined;
      x = ddpmStep(rs, x, x0, ts.length - 1 - k, noise, variance);
    }
  });
  return x;
}
