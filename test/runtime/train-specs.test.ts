// Every spec of the library builds a training step (forward, loss, backward, optimizer); specs of
// each family train two steps on the adapter at reduced sizes with finite losses and gradients.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lowerTraining } from '../../src/codegen/training.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { initParams } from '../../src/compiler/reference/evaluate.ts';
import { checkSpec, TARGET_TRAITS } from '../../src/pipeline.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Trainer } from '../../src/runtime/trainer.ts';

const specs = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs');
const graphOf = (file: string, dims: Record<string, number> = {}) => {
  const r = checkSpec(path.join(specs, file), { dims });
  assert.ok(r.ok, r.ok ? '' : r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.model.graph;
};

test('every spec of the library lowers to a training step for both targets', () => {
  const files = fs.readdirSync(specs).filter((f) => f.endsWith('.vdm'));
  assert.ok(files.length >= 15);
  for (const f of files) {
    const g = graphOf(f, { b: 1 });
    for (const traits of Object.values(TARGET_TRAITS)) {
      const p = lowerTraining(g, { adapter: traits });
      assert.ok(p.lowered.steps.length > 0 && p.arena.length > 0, f);
    }
  }
});

// Reduced sizes: one per family (transformer, depthwise conv, recurrent, temporal hierarchy).
const CASES: [string, Record<string, number>][] = [
  ['tiny-video-dit.vdm', { b: 2, t: 2, h: 8, w: 8 }],
  ['lightweight-depthwise.vdm', { b: 1, t: 2, h: 8, w: 8 }],
  ['propagation.vdm', { b: 1, t: 2, h: 8, w: 8 }],
  ['hierarchical-temporal.vdm', { b: 1, t: 4, h: 8, w: 8 }],
];

for (const [file, dims] of CASES) {
  test(`${file} trains two steps on the adapter`, async () => {
    const gpu = await openGpu();
    const g = graphOf(file, dims);
    const program = lowerTraining(g, { adapter: gpu });
    const trainer = Trainer.load(gpu, program, { params: initParams(g, 0) });
    try {
      const n = program.noisy.axes.reduce((p, [, s]) => p * s, 1);
      const data = new Map<string, Float32Array | Int32Array>();
      for (const i of g.inputs) {
        if (!program.dataInputs.has(i.name)) continue;
        const size = i.axes.reduce((p, [, s]) => p * s, 1);
        data.set(i.name, i.dtype === 'i32' ? new Int32Array(size) : Float32Array.from({ length: size }, (_, k) => Math.cos(k)));
      }
      for (let step = 1; step <= 2; step++) {
        await trainer.step(Float32Array.from({ length: n }, (_, i) => Math.sin(0.1 * i)), data, step, 1e-4, 7);
        const s = await trainer.stats();
        assert.ok(Number.isFinite(s.loss) && s.loss > 0, `${file}: loss ${s.loss} at step ${step}`);
        assert.ok(Number.isFinite(s.gradNorm) && s.gradNorm > 0, `${file}: gradient norm ${s.gradNorm}`);
        assert.is(s.nonfinite.count, 0, `${file}: non-finite gradient in ${s.nonfinite.path}`);
      }
    } finally {
      trainer.release();
    }
  });
}

test.run();
