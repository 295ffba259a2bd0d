// `node --import tsx bench/attention-backward.ts [rounds]`: attention's backward kernels side by side in
// one process: the workgroup-memory variant (GPUs) against the subgroup-broadcast variant a CPU adapter
// gets, on tiny-video-dit's attention (8 x 256 tokens, 4 heads of 16) and a shifted Video Swin window
// (8 x 7 x 7, 3 heads of 32, relative-position bias). Rounds alternate the variants so that load from
// other processes falls on both; each round times one batch per variant (one submit, `iterations`
// repeats) and one profiled run for the per-kernel split. Reported: medians, [min..max] over rounds,
// and the speed-up as the ratio of medians with the range of the per-round ratios. The forward kernel
// is timed alongside, for the backward / forward ratio.
import {
  attentionBackwardKernels, attentionBackwardScratch, attentionBackwardTilingFor, type AttentionBackwardParams, type AttentionBackwardTiling,
} from '../src/codegen/kernels/attention-backward.ts';
import { attentionKernel, attentionTilingFor, packedSelfAttention, type AttentionParams } from '../src/codegen/kernels/attention.ts';
import { kernelFamily } from '../src/codegen/kernels/kernel.ts';
import { contiguous, extent } from '../src/codegen/kernels/view.ts';
import { openGpu } from '../src/runtime/gpu.ts';
import { Program, type Tensor } from '../src/runtime/program.ts';
import { randomArray, relativeError } from './util.ts';

const gpu = await openGpu();
const fast = attentionBackwardTilingFor(gpu);
if (!fast.subgroupSize) { console.log('this adapter gets the workgroup-memory variant only: nothing to compare'); process.exit(0); }
const ROUNDS = Number(process.argv[2] ?? 9);
const TARGET_MS = 300;

const axes = (spec: Record<string, number>) => Object.entries(spec).map(([name, size]) => ({ name, size }));
const SHAPES: [string, AttentionParams][] = [
  ['tiny-video-dit: b 8, 4 x 8 x 8 tokens, 4 heads of 16', packedSelfAttention({ grid: axes({ b: 8, t: 4, h: 8, w: 8 }), tokens: ['t', 'h', 'w'], heads: 4, headDim: 16 })],
  ['Swin: 8 x 14 x 14, windows 8 x 7 x 7 shifted (4, 3, 3), 3 heads of 32, relative bias', {
    ...packedSelfAttention({ grid: axes({ b: 1, t: 8, h: 14, w: 14 }), tokens: ['t', 'h', 'w'], heads: 3, headDim: 32 }),
    window: { t: 8, h: 7, w: 7 }, shift: { t: 4, h: 3, w: 3 }, relPosBias: contiguous([15 * 13 * 13, 3]) }],
];

/** The backward as lowerAttentionVjp emits it: packed qkv, one packed gradient buffer. */
function backwardProgram(fwd: AttentionParams, tiling: AttentionBackwardTiling) {
  const p: AttentionBackwardParams = { ...fwd, dO: fwd.o, dQ: fwd.q, dK: fwd.k, dV: fwd.v, sharedKVGrad: true, dRelPosBias: fwd.relPosBias, backwardTiling: tiling };
  const prog = new Program(gpu);
  const n = extent(p.q) + 2 * p.heads * p.headDim;
  const by: Record<string, Tensor | undefined> = {
    q: prog.input('qkv', randomArray(n, 1, 2)), dO: prog.input('dO', randomArray(extent(p.o), 2)),
    relPosBias: p.relPosBias ? prog.input('rpb', randomArray(extent(p.relPosBias), 3)) : undefined,
    dQ: prog.output('dqkv', n), scratch: prog.scratch('scratch', attentionBackwardScratch(p)),
    dRelPosBias: p.dRelPosBias ? prog.output('drpb', extent(p.dRelPosBias)) : undefined,
  };
  by.k = by.v = by.q; by.dKV = by.dQ;
  for (const spec of attentionBackwardKernels(p)) prog.step(spec, spec.bindings.map((b) => by[b.name]!));
  return prog;
}

function forwardProgram(fwd: AttentionParams) {
  const prog = new Program(gpu);
  const qkv = prog.input('qkv', randomArray(extent(fwd.q) + 2 * fwd.heads * fwd.headDim, 1, 2));
  const rpb = fwd.relPosBias ? [prog.input('rpb', randomArray(extent(fwd.relPosBias), 3))] : [];
  prog.step(attentionKernel({ ...fwd, tiling: attentionTilingFor(gpu.info, gpu.features.has('subgroups')) }), [qkv, qkv, qkv, ...rpb, prog.output('o', extent(fwd.o))]);
  return prog;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const fmt = (xs: number[]) => `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}..${Math.max(...xs).toFixed(1)}]`;

console.log(`attention backward on ${gpu.info.description || gpu.info.vendor}: workgroup memory (old) vs subgroup ${JSON.stringify(fast)} (new), ${ROUNDS} rounds, ms per backward\n`);
for (const [name, fwd] of SHAPES) {
  const variants = { old: backwardProgram(fwd, {}), new: backwardProgram(fwd, fast), forward: forwardProgram(fwd) };
  // first runs compile; the two backward variants must agree
  const outs = { old: (await variants.old.run()).outputs, new: (await variants.new.run()).outputs };
  await variants.forward.run();
  const agree = Object.keys(outs.old).map((k) => `${k} ${relativeError(outs.new[k], outs.old[k]).toExponential(1)}`).join(', ');
  const iterations: Record<string, number> = {};
  for (const [k, v] of Object.entries(variants)) {
    const t0 = performance.now(); await v.run({ read: false });
    iterations[k] = Math.max(1, Math.min(50, Math.round(TARGET_MS / (performance.now() - t0))));
  }
  const total: Record<string, number[]> = { old: [], new: [], forward: [] };
  const perKernel: Record<string, Record<string, number[]>> = { old: {}, new: {} };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, v] of Object.entries(variants)) {
      const t0 = performance.now(); await v.run({ repeat: iterations[k], read: false });
      total[k].push((performance.now() - t0) / iterations[k]);
      if (k === 'forward') continue;
      const sums: Record<string, number> = {};
      for (const d of (await v.run({ profile: true, read: false })).timings!) sums[kernelFamily(d.key)] = (sums[kernelFamily(d.key)] ?? 0) + d.ms;
      for (const [f, ms] of Object.entries(sums)) (perKernel[k][f] ??= []).push(ms);
    }
  }
  const ratios = total.old.map((o, i) => o / total.new[i]);
  console.log(`## ${name}\n`);
  console.log('| kernel | old (ms) | new (ms) | speed-up |\n|---|---:|---:|---:|');
  for (const f of new Set([...Object.keys(perKernel.old), ...Object.keys(perKernel.new)])) {
    const [o, n] = [perKernel.old[f], perKernel.new[f]];
    console.log(`| ${f} | ${o ? fmt(o) : '-'} | ${n ? fmt(n) : '-'} | ${o && n ? (median(o) / median(n)).toFixed(1) : '-'} |`);
  }
  console.log(`| **backward, wall per iteration** | ${fmt(total.old)} | ${fmt(total.new)} | **${(median(total.old) / median(total.new)).toFixed(1)}** [${Math.min(...ratios).toFixed(1)}..${Math.max(...ratios).toFixed(1)}] |`);
  console.log(`\nforward kernel: ${fmt(total.forward)} ms; backward / forward: old ${(median(total.old) / median(total.forward)).toFixed(1)}, new ${(median(total.new) / median(total.forward)).toFixed(1)}`);
  console.log(`new vs old outputs, relative difference: ${agree}\n`);
  for (const v of Object.values(variants)) v.release();
}
process.exit(0);
