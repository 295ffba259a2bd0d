// GEMM alone at the shapes the GPU targets name (a square one and DiT-XL/2's): every tiling the
// tuner offers on this adapter, each timed as the tuner times it (runtime/tuning.ts), reported as
// TFLOP/s for the default tiling and for the fastest, the one the tuner keeps. bench/torch_gemm.py
// times the same shapes in PyTorch; scripts/gpu-check.sh puts the two side by side.
//   node --import tsx bench/gemm-shapes.ts [--shapes 4096x4096x4096,256x1152x3456] [--json FILE]
// A shape is M x K x N: out[M, N] = A[M, K] B[K, N], row-major, fp32.
import fs from 'node:fs';
import { gemmKernel } from '../src/codegen/kernels/gemm.ts';
import { gemmTilingCandidates, planGemm, type GemmTiling } from '../src/codegen/kernels/gemm-plan.ts';
import { contiguous } from '../src/codegen/kernels/view.ts';
import { openGpu } from '../src/runtime/gpu.ts';
import { randomBuffer, timeKernel } from '../src/runtime/tuning.ts';

const DEFAULT_SHAPES = '4096x4096x4096,2048x1152x4608,2048x4608x1152,256x1152x3456';

export const tilingLabel = (t: GemmTiling) => (t.kind === 'lanes'
  ? `lanes ${t.lanes}, rows ${t.rows}, ${t.colVecs} col vec4`
  : `tiles ${t.tileM}x${t.tileN}x${t.tileK}, ${t.threadRows}x${t.threadCols} per thread${t.prefetch ? ', vec4, prefetch' : t.vector ? ', vec4' : ''}`);

async function main() {
  const argv = process.argv.slice(2);
  const opt = (name: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
  const gpu = await openGpu();
  // A software adapter runs the square shape at ~50 GFLOP/s (seconds per run): a quarter of each
  // size there, unless the shapes are given.
  const shrink = !opt('--shapes') && gpu.software ? 4 : 1;
  const shapes = (opt('--shapes') ?? DEFAULT_SHAPES).split(',').map((s) => {
    const dims = s.split('x').map(Number);
    if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`gemm-shapes: a shape is MxKxN, got '${s}'`);
    return dims.map((d) => Math.max(1, Math.round(d / shrink))) as [number, number, number];
  });
  process.stdout.write(`gemm-shapes: ${gpu.info.description || gpu.info.vendor} (${gpu.software ? 'software' : 'hardware'}), fp32`
    + `${shrink > 1 ? `, the shapes divided by ${shrink} (a software adapter)` : ''}\n`);
  const results = [];
  for (const [M, K, N] of shapes) {
    const p = { a: contiguous([M, K]), b: contiguous([K, N]), out: contiguous([M, N]) };
    const tilings = gemmTilingCandidates(gpu, planGemm(p));
    const bufs = [M * K, K * N, M * N].map((n, i) => randomBuffer(gpu, 4 * n, 7 + i));
    const rows: { tiling: GemmTiling; ms: number; tflops: number }[] = [];
    for (const tiling of tilings) {
      const ms = await timeKernel(gpu, gemmKernel({ ...p, tiling }), bufs);
      rows.push({ tiling, ms, tflops: (2 * M * N * K) / (ms * 1e9) });
    }
    for (const b of bufs) b.destroy();
    const best = rows.reduce((a, b) => (b.ms < a.ms ? b : a));
    const name = `${M}x${K}x${N}`;
    for (const r of rows) process.stdout.write(`  ${name}  ${r.ms.toFixed(3).padStart(9)} ms  ${r.tflops.toPrecision(3).padStart(6)} TFLOP/s  ${tilingLabel(r.tiling)}\n`);
    process.stdout.write(`gemm-shapes: ${name}: default ${rows[0].tflops.toPrecision(3)} TFLOP/s, tuned ${best.tflops.toPrecision(3)} TFLOP/s (${tilingLabel(best.tiling)})\n`);
    results.push({ shape: name, M, K, N, variants: rows.map((r) => ({ tiling: r.tiling, ms: r.ms, tflops: r.tflops })), default: rows[0].tflops, tuned: best.tflops });
  }
  const json = opt('--json');
  if (json) fs.writeFileSync(json, `${JSON.stringify({ adapter: gpu.info.description, software: gpu.software, results }, null, 1)}\n`);
}

main().then(() => process.exit(0), (e) => { process.stderr.write(`gemm-shapes: ${(e as Error).message}\n`); process.exit(1); });
