// Whole specs lowered and run on the adapter agree with the float64 evaluation node by node.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { checkSpec, lowerModel, TARGETS, type CheckedModel } from '../../src/pipeline.ts';
import { expectLoweredMatches } from './lower-check.ts';

const specs = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs');

// Small sizes (the float64 side is slow); errors compound over depth, hence the tolerance.
const CASES: [string, Record<string, number>][] = [
  ['tiny-video-dit.vdm', { b: 1, t: 2, h: 8, w: 8 }],
  ['lightweight-depthwise.vdm', { b: 1, t: 2, h: 8, w: 8 }],
  ['propagation.vdm', { b: 1, t: 2, h: 8, w: 8 }],
  ['basicvsr-propagation.vdm', { b: 1, t: 3, h: 8, w: 8 }],
  ['hierarchical-temporal.vdm', { b: 1, t: 4, h: 8, w: 8 }],
];

function checked(file: string, dims: Record<string, number> = {}): CheckedModel {
  const r = checkSpec(path.join(specs, file), { dims });
  assert.ok(r.ok, r.ok ? '' : `${file}:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
  return r.model;
}

for (const [file, dims] of CASES) {
  gpuTest(`${file} runs on the adapter and matches the float64 evaluation`, async () => {
    const { graph } = checked(file, dims);
    const t0 = performance.now();
    const { dispatches, worst } = await expectLoweredMatches(graph, file, 1e-3);
    console.log(`  ${file}: ${dispatches} dispatches, worst node error ${worst.toExponential(1)}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
}

test('every spec of the library lowers for both targets at its own sizes', () => {
  const files = fs.readdirSync(specs).filter((f) => f.endsWith('.vdm'));
  assert.ok(files.length >= 15);
  for (const f of files) {
    const model = checked(f);
    for (const target of TARGETS) assert.ok(lowerModel(model, { target }).lowered.steps.length > 0, `${f} (${target})`);
  }
});

gpuTest('tiny-video-dit and hierarchical-temporal also match with every value channels-last', async () => {
  for (const [file, dims] of [CASES[0], CASES[3]]) {
    await expectLoweredMatches(checked(file, dims).graph, `${file}, channels-last`, 1e-3, 'channels-last');
  }
});

test.run();
