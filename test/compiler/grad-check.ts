// Central finite differences against reverse-mode gradients, over a whole (small) graph: the
// check every backward rule must pass.
import * as assert from 'uvu/assert';
import { backward } from '../../src/compiler/reference/autodiff.ts';
import { evaluate, exampleInputs, liveParams, prng } from '../../src/compiler/reference/evaluate.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { NamedTensor } from '../../src/compiler/ir/named-tensor.ts';

export interface GradCheck {
  /** largest |finite difference - autodiff| / (1 + largest |gradient| of that tensor) */
  readonly worst: number;
  /** entries compared */
  readonly compared: number;
  readonly where: string;
}

/**
 * loss = sum over outputs of <w, output> with fixed random w. Compares d loss / d x by autodiff with
 * (loss(x + h) - loss(x - h)) / 2h for up to `samples` entries of every parameter and f32 input.
 */
export function gradientCheck(g: Graph, opts: { seed?: number; samples?: number; h?: number; maxTensors?: number } = {}): GradCheck {
  const seed = opts.seed ?? 7;
  const samples = opts.samples ?? 12;
  const h = opts.h ?? 1e-6;
  const u = prng(seed);
  const inputs = exampleInputs(g, seed);
  const params = liveParams(g, seed, 0.3);
  const weights = new Map<string, NamedTensor>();
  for (const o of g.outputs) {
    const axes = g.nodes[o.node].axes;
    weights.set(o.name, { axes, data: Float64Array.from({ length: axes.reduce((n, [, s]) => n * s, 1) }, () => 2 * u() - 1) });
  }
  const loss = () => {
    const out = evaluate(g, inputs, params).outputs;
    let l = 0;
    for (const [name, w] of weights) { const v = out.get(name)!; for (let i = 0; i < w.data.length; i++) l += w.data[i] * v.data[i]; }
    return l;
  };
  const grads = backward(g, evaluate(g, inputs, params), params, weights);
  let worst = 0, compared = 0, where = '';
  const probe = (name: string, data: Float64Array, ad: Float64Array) => {
    const scale = 1 + ad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const picks = data.length <= samples ? [...data.keys()] : Array.from({ length: samples }, () => Math.floor(u() * data.length));
    for (const i of picks) {
      const keep = data[i];
      data[i] = keep + h; const up = loss();
      data[i] = keep - h; const down = loss();
      data[i] = keep;
      const err = Math.abs((up - down) / (2 * h) - ad[i]) / scale;
      compared++;
      if (err > worst) { worst = err; where = `${name}[${i}]: finite difference ${(up - down) / (2 * h)}, autodiff ${ad[i]}`; }
    }
  };
  // Whole models: a random subset of the parameter tensors (each finite difference is two evaluations).
  const chosen = [...params.keys()].filter((_, i, all) => opts.maxTensors === undefined || all.length <= opts.maxTensors || u() < opts.maxTensors / all.length);
  for (const path of chosen) probe(`param ${path}`, params.get(path)!, grads.params.get(path)!);
  for (const input of g.inputs) {
    if (input.dtype !== 'f32') continue;
    const x = inputs.get(input.name)!;
    probe(`input ${input.name}`, x.data, grads.inputs.get(input.name)?.data ?? new Float64Array(x.data.length));
  }
  return { worst, compared, where };
}

/** Asserts that every sampled gradient entry agrees to `tol` (relative to the tensor's largest gradient). */
export function expectGradients(g: Graph, what: string, tol = 1e-6, opts: { seed?: number; samples?: number; maxTensors?: number } = {}): GradCheck {
  const r = gradientCheck(g, opts);
  assert.ok(r.compared > 0, `${what}: nothing to compare`);
  assert.ok(r.worst < tol, `${what}: ${r.where} (error ${r.worst})`);
  return r;
}
