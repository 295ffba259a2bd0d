// specs/stdit3-xl-2.vdm against Open-Sora 1.2's STDiT3-XL/2 (hpcaitech/Open-Sora v1.2.0,
// opensora/models/stdit/stdit3.py): the official module has 1,207,643,972 parameters, of which 36 are
// `rope.freqs`, RoPE's fixed frequencies registered as an nn.Parameter that is never trained (vdm
// computes them), so the spec must have 1,207,643,936; each of the 56 blocks has 21,255,696. The
// count, like PyTorch's, does not depend on the video's size.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specParams } from './helpers.ts';

const spec = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../specs/stdit3-xl-2.vdm');

const paramsOf = (dims: Record<string, number> = {}) => specParams(spec, dims);

/** One STDiT3 block by the official layer shapes (d = 1152, 16 heads of 72, MLP 4d). */
function officialBlock(d: number, dh: number): number {
  const linear = (i: number, o: number) => i * o + o;
  return 6 * d + linear(d, 3 * d) + 2 * dh + linear(d, d) + linear(d, d) + linear(d, 2 * d) + linear(d, d) + linear(d, 4 * d) + linear(4 * d, d);
}

test('STDiT3-XL/2: 1,207,643,936 parameters, the official count without rope.freqs', () => {
  const { total } = paramsOf();
  assert.is(total, 1_207_643_972 - 36);
});

test('STDiT3-XL/2: every spatial and temporal block has the official 21,255,696', () => {
  const { byPath } = paramsOf();
  assert.is(officialBlock(1152, 72), 21_255_696);
  for (const kind of ['spatial', 'temporal']) {
    for (const i of [0, 13, 27]) {
      const prefix = `blocks.${i}.${kind}.`;
      const sum = [...byPath].filter(([p]) => p.startsWith(prefix)).reduce((s, [, n]) => s + n, 0);
      assert.is(sum, 21_255_696, prefix);
    }
  }
  assert.not.ok([...byPath.keys()].some((p) => p.startsWith('blocks.28.')), 'exactly 28 layers');
});

test('STDiT3-XL/2: the count does not change with the number of frames or the frame size', () => {
  const base = paramsOf().total;
  assert.is(paramsOf({ t: 4, h: 16, w: 24 }).total, base);
  assert.is(paramsOf({ t: 51, h: 64, w: 64 }).total, base);
});

test.run();
