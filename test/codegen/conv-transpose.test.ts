// conv_transpose on the adapter, node by node against float64: stride 1 (the conv kernel over the
// flipped weight, bias in its epilogue) and strided (the gather kernel, then + bias), groups,
// output padding, dilation, a batch axis in a slot; the backward (dx, dweight, dbias) against float64.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { TARGET_TRAITS } from '../../src/pipeline.ts';
import { gpuTest } from '../gpu.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectGradientsMatch } from './backward-check.ts';
import { expectLoweredMatches } from './lower-check.ts';

const DIMS = 'b = 2, c = 4, t = 3, h = 3, w = 4';
const BODY = [
  '  y = conv_transpose(x, over: (h, w), kernel: 4, stride: 2, padding: 1, out: 6, groups: 2) as up',
  '  z = conv_transpose(silu(y), over: (h, w), kernel: 3, padding: 1, bias: false) as same',
  '  u = conv_transpose(z, over: (t, h, w), kernel: (t: 2, h: 3, w: 2), stride: (t: 1, h: 3, w: 2), output_padding: (h: 1), dilation: (t: 2)) as odd',
  '  output o = u',
  '  output p = conv_transpose(x, over: w, kernel: 3, dilation: 2, out: 2) as line',
].join('\n');

gpuTest('forward: stride 1, strided with groups, output padding and dilation, one axis: match float64', async () => {
  await expectLoweredMatches(graphOf(model(BODY, '', DIMS)), 'conv_transpose');
});

gpuTest('backward: dx, dweight and dbias match float64', async () => {
  await expectGradientsMatch(graphOf(model(BODY, '', DIMS)), 'conv_transpose', 3e-4);
});

gpuTest('a small U-Net whose decoder pops its skips with std unet_up (conv_transpose, concat, slices): forward and backward', async () => {
  const g = graphOf(model([
    '  z = conv(x, over: (h, w), kernel: 3, out: 4) as conv_in',
    '  skips = ()',
    '  for i in 0..2 as down {',
    '    skips = skips + (z,)',
    '    z = conv(z, over: (h, w), kernel: 3, stride: 2, padding: 1, out: 4 * (i + 2)) as conv',
    '  }',
    '  for i in 0..2 as up {',
    '    (z, skips) = unet_up(z, skips, 4)',
    '    z = conv(silu(z), over: (h, w), kernel: 3, out: 4) as conv',
    '  }',
    '  assert len(skips) == 0',
    '  output o = z',
  ].join('\n'), 'import "std/unet.vdm"', 'b = 1, c = 2, t = 2, h = 8, w = 4'));
  assert.equal(g.nodes.filter((n) => n.op === 'conv_transpose').map((n) => n.path), ['up.0.unet_up.up', 'up.1.unet_up.up']);
  await expectLoweredMatches(g, 'small U-Net');
  await expectGradientsMatch(g, 'small U-Net', 3e-4);
});

test('the conv kernel over the flipped weight, once per phase of a stride; the gather kernel and a bias add where a phase gets no tap', () => {
  const kinds = (body: string) => lowerGraph(graphOf(model(body, '', DIMS)), TARGET_TRAITS.software).steps.map((s) => s.spec.key.split(/[:|]/)[0]);
  assert.equal(kinds('  output o = conv_transpose(x, over: (h, w), kernel: 3, padding: 1)'), ['conv-flip-weight', 'conv']);
  assert.equal(kinds('  output o = conv_transpose(x, over: (h, w), kernel: 2, stride: 2)'), ['conv-flip-weight', 'conv', 'conv', 'conv', 'conv']);
  assert.equal(kinds('  output o = conv_transpose(x, over: (h, w), kernel: 1, stride: 2)'), ['conv-backward-data', 'elementwise']);
});

test.run();
