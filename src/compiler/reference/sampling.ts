// The reverse process in float64: the sampler the GPU's (codegen/sampling.ts) is checked against,
// written from the definitions in diffusion-math.ts (splitPrediction, guide, ddimStep, ddpmStep)
// with the model evaluated by evaluate.ts. Noise is the Philox generator's (kernels/philox.ts),
// keyed as the GPU keys it: x_T at (seed, 0, stream 0), step k's noise at (seed, k + 1, stream 0).
//
// A sampler that visits fewer timesteps than the schedule has (`steps` < T) runs DDPM on the
// respaced schedule (improved DDPM's SpacedDiffusion): ᾱ of the visited timesteps, β'_i =
// 1 − ᾱ'_i / ᾱ'_{i−1}; a learned variance interpolates the respaced β' and β̃'. DDIM needs ᾱ only.
// Euler (rectified flow) steps x' = x + (t'_next − t') v through the visited levels (eulerStep).
//
// Keep-first (Ho et al. 2022, conditional sampling by replacement): for a video model whose image
// input is its known first frame (firstFrameInput), after every step frame 0 of x_{t'} is replaced
// by sqrt ᾱ_{t'} f + sqrt(1 − ᾱ_{t'}) ε, ε keyed (seed, k + 1, stream 1); after the last step, f.
import type { Graph, GraphInput } from '../ir/graph.ts';
import { numelOf, relayout, type NamedTensor } from '../ir/named-tensor.ts';
import { philoxNormal } from '../../codegen/kernels/philox.ts';
import { ddimStep, ddpmStep, eulerStep, guide, noiseSchedule, noisingCoefficients, samplerTimesteps, splitPrediction, type NoiseSchedule, type Prediction } from './diffusion-math.ts';
import { evaluate } from './evaluate.ts';

/** The schedule restricted to `timesteps` (any order; visited ascending): index i is the i-th smallest. */
export function respacedSchedule(s: NoiseSchedule, timesteps: readonly number[]): NoiseSchedule {
  if (s.flow) return s; // no DDPM posterior to respace
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
  readonly sampler: 'ddpm' | 'ddim' | 'euler';
  /** timesteps visited (samplerTimesteps); 0 or T: every one */
  readonly steps: number;
  /** DDIM's eta */
  readonly eta: number;
  /** classifier-free guidance scale (the graph then has batch 2b: conditional, then unconditional); null: none */
  readonly guidance: number | null;
  readonly clip: boolean;
  readonly seed: number;
  /** replace frame 0 by the given first frame noised to each step's next timestep (when firstFrameInput finds one); default false */
  readonly keepFirst?: boolean;
}

/**
 * The image input that is the known first frame of the noisy video: the one `image_condition`
 * (std/cond.vdm: concat(x, expand(image, sizes: (t: ...)), axis: c)) joins to the noisy input,
 * found in the graph as that concat of the noisy input and an expand over t of an image input.
 * It must have the noisy input's axes without t, in the same order and sizes. Null when there is
 * none, or the noisy input has no t axis (after the batch axis).
 */
export function firstFrameInput(graph: Graph): { input: GraphInput; t: number; post: number } | null {
  const noisy = graph.inputs.find((i) => i.name === graph.diffusion?.noisy_input);
  if (!noisy) return null;
  const ti = noisy.axes.findIndex(([a]) => a === 't');
  if (ti < 1) return null;
  const inputNode = (id: number) => { const n = graph.nodes[id]; return n.op === 'input' ? graph.inputs.find((i) => i.name === n.attrs.name) : undefined; };
  const rest = noisy.axes.filter((_, i) => i !== ti);
  for (const node of graph.nodes) {
    if (node.op !== 'concat' || node.attrs.axis !== 'c' || node.inputs.length !== 2 || inputNode(node.inputs[0]) !== noisy) continue;
    const ex = graph.nodes[node.inputs[1]];
    const sizes = ex.attrs.sizes;
    if (ex.op !== 'expand' || !sizes || typeof sizes !== 'object' || Array.isArray(sizes) || !('t' in sizes)) continue;
    const image = inputNode(ex.inputs[0]);
    if (!image || image.kind !== 'image' || image.axes.length !== rest.length) continue;
    if (!image.axes.every(([a, z], i) => rest[i][0] === a && rest[i][1] === z)) continue;
    return { input: image, t: noisy.axes[ti][1], post: noisy.axes.slice(ti + 1).reduce((p, [, z]) => p * z, 1) };
  }
  return null;
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
  const first = o.keepFirst ? firstFrameInput(graph) : null;
  // the b given frames: the first entries of the image input (the same in both halves under guidance)
  const frames = first && relayout(conditions.get(first.input.name)!, first.input.axes).data.subarray(0, (numelOf(first.input.axes) * n) / total);
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
    const tNext = k + 1 < ts.length ? ts[k + 1] : -1;
    if (o.sampler === 'euler') {
      // rectified flow: the prediction is the velocity; no split, no clip, no noise
      x = eulerStep(s, x, pred, t, tNext);
    } else {
      const { x0, eps } = o.clip ? clipPrediction(d.predict.target, s, x, pred, t) : splitPrediction(d.predict.target, s, x, pred, t);
      const noise = philoxNormal({ seed: o.seed, step: k + 1, stream: 0 }, n);
      if (o.sampler === 'ddim') {
        x = ddimStep(s, x0, eps, t, tNext, o.eta, noise);
      } else {
        const variance = learned ? Float64Array.from({ length: n }, (_, i) => out[predAt(i) + C * post]) : undefined;
        x = ddpmStep(rs, x, x0, ts.length - 1 - k, noise, variance);
      }
    }
    if (first && frames) {
      const [a, b] = noisingCoefficients(s, tNext);
      const z = philoxNormal({ seed: o.seed, step: k + 1, stream: 1 }, frames.length);
      for (let i = 0; i < frames.length; i++) {
        x[Math.floor(i / first.post) * first.t * first.post + (i % first.post)] = a * frames[i] + b * z[i];
      }
    }
  });
  return x;
}
