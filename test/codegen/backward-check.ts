// Shared by the backward suites: the GPU backward pass of a graph must give the float64 backward's
// parameter gradients, with perturbed parameters (no zero-initialised layer hides a path) and
// random output gradients (seeds).
import * as assert from 'uvu/assert';
import { lowerBackward } from '../../src/codegen/backward.ts';
import { lowerGraph, type BufferDecl, type LoweredGraph, type Value } from '../../src/codegen/lower.ts';
import { backward } from '../../src/compiler/reference/autodiff.ts';
import { evaluate, exampleInputs } from '../../src/compiler/reference/evaluate.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { runLowered } from '../../src/runtime/run-graph.ts';
import { liveParams } from './lower-check.ts';
import { assertCompilesClean, relError, seed } from './ref-check.ts';

/** Each output's seed becomes an input buffer `seed.<name>` of the lowered graph. */
function withSeedInputs(g: Graph, forward: LoweredGraph): { lowered: LoweredGraph; seeds: Map<string, Value> } {
  const buffers = new Map<string, BufferDecl>(forward.buffers);
  const inputs = new Map(forward.inputs);
  const seeds = new Map<string, Value>();
  for (const o of g.outputs) {
    const v = forward.outputs.get(o.name)!;
    const name = `seed.${o.name}`;
    buffers.set(name, { name, elements: buffers.get(v.buffer)!.elements, dtype: 'f32', role: 'input' });
    const seedValue = { buffer: name, axes: v.axes };
    inputs.set(name, seedValue);
    seeds.set(o.name, seedValue);
  }
  return { lowered: { ...forward, buffers, inputs }, seeds };
}

/**
 * Runs forward + backward of `g` on the adapter and compares every parameter gradient with the
 * float64 backward (relError < tol). Returns the worst error and the number of dispatches.
 * `zero`: parameters whose gradient is zero in exact arithmetic (a key bias under a softmax): the
 * float64 one must be below 1e-12 and the GPU's below tol times the largest other gradient entry.
 */
export async function expectGradientsMatch(g: Graph, what: string, tol = 1e-4, zero?: RegExp): Promise<{ worst: number; dispatches: number }> {
  const gpu = await openGpu();
  const { lowered: forward, seeds } = withSeedInputs(g, lowerGraph(g, gpu, 'node', false));
  const lowered = lowerBackward(g, forward, seeds, gpu);
  const seen = new Set<string>();
  for (const s of lowered.steps) {
    if (seen.has(s.spec.key)) continue;
    seen.add(s.spec.key);
    await assertCompilesClean(s.spec);
  }
  const inputs = exampleInputs(g, seed);
  const params = liveParams(g);
  const ev = evaluate(g, inputs, params);
  const seedValues = new Map<string, NamedTensor>();
  let state = seed * 7919 + 13;
  const rand = () => { state = (state * 1103515245 + 12345) % 2147483648; return state / 2147483648 * 2 - 1; };
  for (const o of g.outputs) {
    const v = ev.outputs.get(o.name)!;
    seedValues.set(o.name, { axes: v.axes, data: Float64Array.from(v.data, () => rand()) });
  }
  const ref = backward(g, ev, params, seedValues);
  const allInputs = new Map(inputs);
  for (const [name, t] of seedValues) allInputs.set(`seed.${name}`, t);
  const outputs = new Map<string, Value>(lowered.outputs);
  for (const [path, buffer] of lowered.paramGrads) outputs.set(`grad.${path}`, { buffer, axes: [['n', lowered.buffers.get(buffer)!.elements]] });
  const run = await runLowered(gpu, { ...lowered, outputs }, allInputs, params);
  let worst = 0;
  const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };
  const scale = Math.max(...[...ref.params].filter(([path]) => !zero?.test(path)).map(([, w]) => maxAbs(w)));
  for (const [path, want] of ref.params) {
    const got = run.outputs.get(`grad.${path}`)!.data;
    if (zero?.test(path)) {
      assert.ok(maxAbs(want) < 1e-12 * scale, `${what}: ${path}'s float64 gradient is not zero`);
      assert.ok(maxAbs(got) < tol * scale, `${what}: gradient of ${path}: ${maxAbs(got)} against the largest entry ${scale}`);
      continue;
    }
    // Gradient entries are sums whose terms cancel (a relative-bias entry sums P (dP - D) over every
    // pair at its offset): f32 rounds relative to the terms, whose scale the largest entry shows, so
    // an entry is judged against |ref| + 5 % of the largest |ref| (relError's magnitude floor).
    let largest = 0;
    for (const w of want) largest = Math.max(largest, Math.abs(w));
    const err = relError(got, want, new Float64Array(want.length).fill(5 * largest));
    worst = Math.max(worst, err);
    assert.ok(err < tol, `${what}: gradient of ${path}: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
  }
  return { worst, dispatches: lowered.steps.length };
}
