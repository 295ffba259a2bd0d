// vdm info's forward-pass memory is the plan's (values share slots), and the plan is what the
// runtime allocates: not the sum of every layer's output, which no run holds at once.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { plannedMemory } from '../../src/codegen/plan-memory.ts';
import { costsOf } from '../../src/compiler/ir/cost.ts';
import { exampleInputs, initParams } from '../../src/compiler/reference/evaluate.ts';
import { checkSpec, forwardMemoryOf, load, lowerModel, planModel } from '../../src/pipeline.ts';
import { openGpu } from '../../src/runtime/gpu.ts';

const spec = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs/tiny-video-dit.vdm');

gpuTest('the planned forward memory is what the device holds, within 15 %', async () => {
  const gpu = await openGpu();
  const r = checkSpec(spec, { dims: { b: 2 } });
  assert.ok(r.ok);
  const model = planModel(lowerModel(r.model, { adapter: gpu }));
  const planned = plannedMemory(model.lowered, model.plan);
  const loaded = load(gpu, model, { params: initParams(r.model.graph, 0), inputs: exampleInputs(r.model.graph) });
  try {
    const actual = loaded.deviceBytes;
    assert.ok(planned.params > 0 && planned.activations > 0);
    assert.ok(Math.abs(actual - planned.total) <= 0.15 * planned.total, `planned ${planned.total} B, allocated ${actual} B`);
    // the per-layer sum counts every output at once: several times what is planned
    assert.ok(costsOf(r.model.graph).activationBytes > 3 * planned.activations);
  } finally {
    loaded.release();
  }
});

test('vdm info\'s figure for a target is the planned forward pass', () => {
  const r = checkSpec(spec);
  assert.ok(r.ok);
  const f = forwardMemoryOf(r.model, 'software');
  const m = planModel(lowerModel(r.model, { target: 'software' }));
  assert.equal(f.memory, plannedMemory(m.lowered, m.plan));
  assert.is(f.dispatches, m.lowered.steps.length);
  assert.is(f.memory.total, f.memory.params + f.memory.activations + f.memory.other);
});

test.run();
