// specs/video-swin.vdm with the official padding: the Video Swin-T backbone keeps its parameter
// count at any size (28,158,070 with a Kinetics-400 head), the spec checks at odd sizes, and it
// runs end to end on the adapter in agreement with the float64 evaluation.
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest } from '../gpu.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { checkSpec } from '../../src/pipeline.ts';
import { checkFiles, totalParams } from '../compiler/helpers.ts';
import { repo, vdmSync } from '../cli/vdm-process.ts';

const spec = path.join(repo, 'specs/video-swin.vdm');

/** Video Swin-T as a Kinetics-400 classifier from the standard library's blocks, padded as the official model. */
const CLASSIFIER = `import "std/swin.vdm"
model SwinT_K400 {
  dims b = 1, c = 3, t = 32, h = 224, w = 224
  input x : video[b, c, t, h, w]
  let widths = (96, 192, 384, 768), depths = (2, 2, 6, 2), heads = (3, 6, 12, 24)
  z = swin_patch_embed(x, 96, patch: (t: 2, h: 4, w: 4), pad: true) as patch_embed
  for i in 0..4 as layers {
    z = swin_stage(z, depths[i], heads[i], window: (8, 7, 7), pad: true)
    if i < 3 {
      z = patch_merging(z, pad: true) as downsample
    }
  }
  z = layernorm(z, eps: 1e-5) as norm
  output logits = linear(mean(z, over: (t, h, w)), 400) as head
}
`;

test('Video Swin-T with the Kinetics-400 head: 28,158,070 parameters at 32 x 224 x 224 and at any other size', () => {
  for (const dims of [{}, { t: 8, h: 64, w: 64 }, { t: 5, h: 38, w: 46 }] as Record<string, number>[]) {
    const r = checkFiles({ 'main.vdm': CLASSIFIER }, { dims });
    assert.equal(r.diagnostics.map(formatDiagnostic), []);
    assert.is(totalParams(r.graph!), 28_158_070, JSON.stringify(dims));
  }
});

test('specs/video-swin.vdm: the same count at every size, and it checks at odd sizes with the output of the input\'s shape', () => {
  for (const dims of [{}, { t: 8, h: 64, w: 64 }, { t: 5, h: 38, w: 46 }, { t: 3, h: 9, w: 17 }] as Record<string, number>[]) {
    const r = checkSpec(spec, { dims: { b: 1, ...dims } });
    assert.ok(r.ok, r.ok ? '' : r.diagnostics.map(formatDiagnostic).join('\n'));
    assert.is(totalParams(r.model.graph), 35_625_804, JSON.stringify(dims));
    const out = r.model.graph.nodes[r.model.graph.outputs[0].node].axes;
    assert.equal(out, [['b', 1], ['c', 3], ['t', dims.t ?? 32], ['h', dims.h ?? 224], ['w', dims.w ?? 224]]);
  }
});

gpuTest('specs/video-swin.vdm runs at 5 x 38 x 46 (every padding and crop) and matches float64', () => {
  const r = vdmSync(['run', spec, '--dim', 'b=1', '--dim', 't=5', '--dim', 'h=38', '--dim', 'w=46', '--repeat', '1', '--check'], { timeout: 300_000 });
  assert.is(r.code, 0, r.err);
  const err = Number(/check eps: max \|GPU - float64\| = (\S+)/.exec(r.out)![1]);
  assert.ok(err < 1e-4, r.out);
});

test.run();
