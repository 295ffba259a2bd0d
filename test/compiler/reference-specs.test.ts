// Architecture families of specs/ evaluate end to end in float64 at small sizes: the references
// compose over real models, outputs have the declared axes, and every parameter and input matters.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { evaluate, exampleInputs, initParams, liveParams } from '../../src/compiler/reference/evaluate.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { expectGradients } from './grad-check.ts';

const specs = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs');
const SMALL = { b: 1, t: 2, h: 8, w: 8 };

function graphOf(file: string, dims: Record<string, number>): Graph {
  const r = checkFile(path.join(specs, file), { dims });
  assert.equal(r.diagnostics.map(formatDiagnostic), []);
  return r.graph!;
}


const rms = (t: NamedTensor) => Math.sqrt(t.data.reduce((s, v) => s + v * v, 0) / t.data.length);

// Small enough for the float64 loops (1-2 s each here). Between them: factorized attention, 3D and
// (2+1)D convolution, recurrence, a temporal hierarchy, adaLN. (Swin's 7x7 windows need 224x224
// frames, too large for these loops: windowed attention is covered node by node.)
const CASES: [string, Record<string, number>][] = [
  ['tiny-video-dit.vdm', SMALL], // Video DiT, factorized space/time attention, adaLN
  ['lightweight-depthwise.vdm', SMALL], // depthwise-separable 3D conv
  ['propagation.vdm', SMALL], // bidirectional recurrent propagation (GRU)
  ['basicvsr-propagation.vdm', { ...SMALL, t: 3, h: 4, w: 4 }], // shared recurrent cells (weights read by every frame)
  ['hierarchical-temporal.vdm', { ...SMALL, t: 4 }], // temporal pooling and upsampling
];

for (const [file, dims] of CASES) {
  test(`${file} evaluates: declared axes, finite, input and parameters matter`, () => {
    const g = graphOf(file, dims);
    const inputs = exampleInputs(g, 3);
    const params = liveParams(g, 5);
    const out = evaluate(g, inputs, params).outputs;
    assert.equal([...out.keys()], g.outputs.map((o) => o.name));
    for (const o of g.outputs) {
      const v = out.get(o.name)!;
      assert.equal(v.axes, g.nodes[o.node].axes);
      assert.ok(v.data.every(Number.isFinite), `${o.name} has non-finite values`);
      assert.ok(rms(v) > 1e-6, `${o.name} is zero`);
    }
    const name = g.diffusion?.noisy_input ?? g.inputs[0].name;
    const moved = new Map(inputs);
    const x = inputs.get(name)!;
    moved.set(name, { axes: x.axes, data: x.data.map((v, i) => (i === 0 ? v + 1 : v)) });
    const first = g.outputs[0].name;
    const again = evaluate(g, moved, params).outputs.get(first)!;
    assert.ok(again.data.some((v, i) => v !== out.get(first)!.data[i]), `changing ${name} does not change ${first}`);
  });
}

test('gradients of a whole Video DiT (adaLN, factorized attention, patchify) agree with finite differences', () => {
  const g = graphOf('tiny-video-dit.vdm', { b: 1, t: 2, h: 4, w: 4 });
  const r = expectGradients(g, 'tiny-video-dit', 1e-6, { samples: 3, maxTensors: 8 });
  assert.ok(r.compared >= 12, `${r.compared} entries compared`);
});

test('DiT as initialised (adaLN-Zero, zero final layer) predicts exactly zero', () => {
  const g = graphOf('dit-s-2.vdm', { b: 1, h: 4, w: 4 });
  const out = evaluate(g, exampleInputs(g), initParams(g)).outputs;
  for (const v of out.values()) assert.ok(v.data.every((x) => x === 0));
});

test.run();
