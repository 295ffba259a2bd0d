// Shared by the lowering suites: a graph lowered and run on the adapter must give the float64
// evaluation's values, node by node, with inputs and parameters that make every path count.
import * as assert from 'uvu/assert';
import { lowerGraph, type ValueLayout } from '../../src/codegen/lower.ts';
import { evaluate, exampleInputs, liveParams as liveParamsOf } from '../../src/compiler/reference/evaluate.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import { relayout } from '../../src/compiler/ir/named-tensor.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { runLowered } from '../../src/runtime/run-graph.ts';
import { assertCompilesClean, relError, seed } from './ref-check.ts';

/** Parameters with no path switched off (evaluate.ts's liveParams), drawn from this run's seed. */
export const liveParams = (g: Graph, s = seed) => liveParamsOf(g, s);

/**
 * Lowers `g`, checks every kernel compiles without messages, runs it, and compares every node's
 * value with the float64 evaluation (relError < tol); names the first node that disagrees.
 * Returns the number of dispatches and the largest node error.
 */
export async function expectLoweredMatches(g: Graph, what: string, tol = 1e-4, layout: ValueLayout = 'node'): Promise<{ dispatches: number; worst: number }> {
  const gpu = await openGpu();
  const lowered = lowerGraph(g, gpu, layout);
  const seen = new Set<string>();
  for (const s of lowered.steps) {
    if (seen.has(s.spec.key)) continue;
    seen.add(s.spec.key);
    await assertCompilesClean(s.spec);
  }
  const inputs = exampleInputs(g, seed);
  const params = liveParams(g);
  const ref = evaluate(g, inputs, params);
  const run = await runLowered(gpu, lowered, inputs, params, { everyNode: true });
  let worst = 0;
  for (const node of g.nodes) {
    if (node.op === 'input' || lowered.values[node.id].fused) continue; // a fused node is checked through its consumer
    const { buffer, axes } = lowered.values[node.id];
    const want = relayout(ref.values[node.id], axes).data;
    const err = relError(run.values.get(buffer)!, want);
    worst = Math.max(worst, err);
    assert.ok(err < tol, `${what}: node ${node.id} ${node.op} at '${node.path}' [${node.axes.map(([n, s]) => `${n}=${s}`)}]: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
  }
  for (const [name, v] of run.outputs) {
    assert.ok(relError(v.data, relayout(ref.outputs.get(name)!, v.axes).data) < tol, `${what}: output ${name}`);
  }
  return { dispatches: lowered.steps.length, worst };
}
