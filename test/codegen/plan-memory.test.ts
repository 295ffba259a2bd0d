// Memory planning: buffers that share a slot are never live at once, and a planned program computes
// exactly what the unplanned one does.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { lifetimes, planMemory } from '../../src/codegen/plan-memory.ts';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { evaluate, exampleInputs } from '../../src/compiler/reference/evaluate.ts';
import { relayout } from '../../src/compiler/ir/named-tensor.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { runLowered } from '../../src/runtime/run-graph.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { liveParams } from './lower-check.ts';
import { relError } from './ref-check.ts';

const specs = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs');
const graph = (file: string, dims: Record<string, number>) => checkFile(path.join(specs, file), { dims }).graph!;
const SPECS: [string, Record<string, number>][] = [
  ['tiny-video-dit.vdm', { b: 1, t: 2, h: 8, w: 8 }],
  ['hierarchical-temporal.vdm', { b: 1, t: 4, h: 8, w: 8 }],
  ['unet3d-factorized.vdm', { b: 1, t: 4, h: 16, w: 16 }],
];

test('tenants of a slot never overlap in time and fit it; inputs, parameters and outputs are never shared', () => {
  for (const [file, dims] of SPECS) {
    const lowered = lowerGraph(graph(file, dims));
    const plan = planMemory(lowered);
    const live = lifetimes(lowered);
    const tenants = new Map<number, string[]>();
    for (const [name, slot] of plan.slotOf) {
      const b = lowered.buffers.get(name)!;
      assert.ok(b.role === 'value' || b.role === 'scratch', `${name} is ${b.role}`);
      assert.ok(plan.slots[slot] >= b.elements, `${name} fits slot ${slot}`);
      tenants.set(slot, [...(tenants.get(slot) ?? []), name]);
    }
    for (const v of lowered.outputs.values()) assert.not.ok(plan.slotOf.has(v.buffer), 'outputs stay');
    for (const names of tenants.values()) {
      const spans = names.map((n) => live.get(n)!).sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] > spans[i - 1][1], `${file}: overlapping tenants`);
    }
    assert.ok(plan.plannedBytes < plan.unplannedBytes / 2, `${file}: ${plan.plannedBytes} of ${plan.unplannedBytes} bytes`);
  }
});

test('a dispatch never binds two buffers of one slot', () => {
  const g = graphOf(model('  y = linear(x, 8)\n  z = silu(y) * y\n  output o = linear(z, 8) + z', '', 'b = 1, c = 4, t = 2, h = 3, w = 5'));
  const lowered = lowerGraph(g);
  const plan = planMemory(lowered);
  for (const s of lowered.steps) {
    // one buffer bound twice (read both times: a GEMM whose input is also its residual) is one slot
    const slots = [...new Set(s.buffers)].map((b) => plan.slotOf.get(b)).filter((x) => x !== undefined);
    assert.is(new Set(slots).size, slots.length, s.label);
  }
});

gpuTest('planned programs compute bit for bit what unplanned ones do, and match the float64 evaluation', async () => {
  const gpu = await openGpu();
  for (const [file, dims] of SPECS.slice(0, 2)) {
    const g = graph(file, dims);
    const lowered = lowerGraph(g, gpu);
    const inputs = exampleInputs(g, 4);
    const params = liveParams(g, 4);
    const plain = await runLowered(gpu, lowered, inputs, params);
    const planned = await runLowered(gpu, lowered, inputs, params, { plan: planMemory(lowered) });
    const ref = evaluate(g, inputs, params).outputs;
    for (const [name, v] of planned.outputs) {
      assert.equal(Array.from(v.data), Array.from(plain.outputs.get(name)!.data), `${file}: ${name}`);
      assert.ok(relError(v.data, relayout(ref.get(name)!, v.axes).data) < 1e-3, `${file}: ${name} against float64`);
    }
  }
});

test.run();
