// scripts/motion-map.ts writes the motion maps vdm train fed a motion input, in the files
// vdm sample --motion reads: clip i's map from the script fills the sampling input as batch
// entry i of the training data filled the training input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { conditionTensors } from '../../src/runtime/data/conditions.ts';
import { dataNeeds, openDataset } from '../../src/runtime/data/index.ts';
import { resolveSampleSettings, sampleConditions } from '../../src/runtime/sample-run.ts';
import { writeMotionMaps } from '../../scripts/motion-map.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const spec = path.join(repo, 'specs/motion-conditioned.vdm');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-motion-map-'));
const dims = { b: 2, t: 2, h: 8, w: 8 };

test('the script\'s maps (safetensors, JSON) fill vdm sample\'s motion input as the training data filled vdm train\'s', async () => {
  const graph = checkFile(spec, { dims }).graph!;
  const needs = dataNeeds(graph);
  const batch = await (await openDataset('synthetic', needs.sample.shape, { seed: 5 })).batch(0, 2);
  const trained = conditionTensors(needs, batch).get('flow')!;
  assert.ok(trained.some((v) => v !== 0));
  for (const name of ['flow.safetensors', 'flow.json']) {
    const file = path.join(dir, name);
    assert.equal(writeMotionMaps(file, { t: 2, h: 8, w: 8, seed: 5, n: 2 }), [2, 2, 2, 8, 8]);
    const s = resolveSampleSettings(graph, { n: 2, guidance: null, motions: [file] });
    assert.equal([...(sampleConditions(graph, s).inputs.get('flow') as Float32Array)], [...trained], name);
  }
  // one clip: [2, t, h, w], every sample gets it
  const one = path.join(dir, 'one.json');
  assert.equal(writeMotionMaps(one, { t: 2, h: 8, w: 8, seed: 5, index: 1 }), [2, 2, 8, 8]);
  const filled = sampleConditions(graph, resolveSampleSettings(graph, { n: 2, guidance: null, motions: [one] })).inputs.get('flow') as Float32Array;
  const per = trained.length / 2;
  assert.equal([...filled.subarray(0, per)], [...trained.subarray(per)]);
  assert.equal([...filled.subarray(per)], [...trained.subarray(per)]);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
