// A check that compares only zeros passes whatever the kernels do. adaLN-Zero and a zero-
// initialised final layer make a DiT's output identically zero as initialised, so the whole-spec
// comparisons (test/codegen/lower-check.ts, `vdm run --check`) use perturbed parameters. This
// suite fails when the parameters they use leave an output identically zero.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { evaluate, exampleInputs, initParams } from '../../src/compiler/reference/evaluate.ts';
import { checkSpec, initialParams } from '../../src/pipeline.ts';
import { checkOutputs } from '../../src/runtime/compare.ts';
import { liveParams } from '../codegen/lower-check.ts';

const specs = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs');
const SMALL = { b: 1, t: 2, h: 8, w: 8 };

function graphOf(file: string, dims: Record<string, number>) {
  const r = checkSpec(path.join(specs, file), { dims });
  assert.ok(r.ok, r.ok ? '' : r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.model.graph;
}

/** Every output against itself: checkOutputs' verdict of zero, as a check would see it. */
const zeroOutputs = (g: ReturnType<typeof graphOf>, params: ReadonlyMap<string, Float64Array>) => {
  const out = evaluate(g, exampleInputs(g, 3), params).outputs;
  return checkOutputs(out, out).filter((c) => c.zero).map((c) => c.name);
};

test('as initialised, a DiT (adaLN-Zero, zero final layer) gives identically zero outputs: the check reports it', () => {
  const g = graphOf('tiny-video-dit.vdm', SMALL);
  assert.equal(zeroOutputs(g, initParams(g, 0)), ['eps']);
});

// the specs the suite compares whole on the adapter (test/codegen/lower-specs.test.ts), and DiTs
const CASES: [string, Record<string, number>][] = [
  ['tiny-video-dit.vdm', SMALL],
  ['tiny-shapes.vdm', {}],
  ['lightweight-depthwise.vdm', SMALL],
  ['propagation.vdm', SMALL],
  ['hierarchical-temporal.vdm', { ...SMALL, t: 4 }],
];
for (const [file, dims] of CASES) {
  test(`${file}: the parameters of the whole-spec checks and of vdm run --check give non-zero outputs`, () => {
    const g = graphOf(file, dims);
    assert.equal(zeroOutputs(g, liveParams(g)), [], 'the suite\'s whole-spec comparison would compare zeros');
    assert.equal(zeroOutputs(g, initialParams(g, { seed: 0, perturb: true })), [], 'vdm run --check would compare zeros');
  });
}

test.run();
