// `node --import tsx bench/norm.ts`: the norm kernel's two reductions side by side in one process,
// workgroup memory with barriers against one subgroup with subgroupAdd, on the row shapes of a
// Video DiT's layernorm (rows along c, strided and contiguous) and a U-Net's groupnorm.
import { groupNormView, normKernel, normLanesFor, type NormParams } from '../src/codegen/kernels/norm.ts';
import { alongAxes, contiguous, permute } from '../src/codegen/kernels/view.ts';
import { openGpu } from '../src/runtime/gpu.ts';
import { Program } from '../src/runtime/program.ts';
import { randomArray, relativeError, timeBatches } from './util.ts';

const gpu = await openGpu();
const lanes = normLanesFor(gpu);
if (!lanes) { console.log('this adapter has no fixed subgroup size: nothing to compare'); process.exit(0); }
const g = groupNormView(contiguous([2, 64, 8, 16, 16]), 1, 32);
const CASES: [string, NormParams][] = [
  ['layernorm along c of [8, 64, 512] (c strided)', { kind: 'layer', x: permute(contiguous([8, 64, 512]), [0, 2, 1]), y: permute(contiguous([8, 64, 512]), [0, 2, 1]), normalizedAxes: 1, eps: 1e-6 }],
  ['layernorm of [4096, 64] rows', { kind: 'layer', x: contiguous([4096, 64]), y: contiguous([4096, 64]), normalizedAxes: 1, eps: 1e-6, weight: alongAxes([4096, 64], [1]) }],
  ['groupnorm 32 groups of [2, 64, 8, 16, 16]', { kind: 'group', x: g.view, y: g.view, normalizedAxes: g.normalizedAxes, eps: 1e-5 }],
];
console.log(`| case | workgroup (64) | subgroup (${lanes}) | speed-up | outputs differ by |\n|---|---:|---:|---:|---:|`);
for (const [name, p] of CASES) {
  const n = p.x.shape.reduce((a, b) => a * b, 1);
  const variants = [p, { ...p, subgroupLanes: lanes }].map((q) => {
    const prog = new Program(gpu);
    const x = prog.input('x', randomArray(n, 1, 2));
    const w = q.weight ? [prog.input('w', randomArray(64, 2))] : [];
    const y = prog.output('y', n);
    prog.step(normKernel(q), [x, ...w, y]);
    return prog;
  });
  const outs = await Promise.all(variants.map(async (v) => (await v.run()).outputs.y as Float32Array));
  const best = [Infinity, Infinity];
  for (let round = 0; round < 2; round++) {
    for (const [i, v] of variants.entries()) {
      const t = await timeBatches(async (k) => { const t0 = performance.now(); await v.run({ repeat: k, read: false }); return performance.now() - t0; }, 500, 50, 3);
      best[i] = Math.min(best[i], t.ms);
    }
  }
  console.log(`| ${name} | ${best[0].toFixed(2)} ms | ${best[1].toFixed(2)} ms | ${(best[0] / best[1]).toFixed(2)} | ${relativeError(outs[1], outs[0]).toExponential(1)} |`);
  for (const v of variants) v.release();
}
process.exit(0);
