// The weight gradient of a convolution on SIMD software adapters, and the choice between it and the
// per-element reduction of conv-backward.ts. On such an adapter every load instruction costs a
// per-lane loop (gemm-lanes.ts), so the kernel is the GEMM dweight[co, (ci, k)] = sum_p dy[co, p]
// x[(ci, k), p] written as the GEMM lanes kernel is: one subgroup per workgroup, lane l owns input
// channel ci0 + l and every tap of a chunk, and walks all output positions in order; per position
// it loads its taps' x values and one dy value of the `rows` output channels, which the lanes share
// by broadcast, for rows · taps FMAs. The per-element kernel loads rows + taps values for the same
// number of FMAs with rows · taps <= 32, and then sums across its lanes.
import { GRID_WORKGROUP, gridFor, type AdapterTraits, type KernelSpec } from './kernel.ts';
import { chooseGemmTiling } from './gemm-plan.ts';
import {
  convBackwardWeightKernel, coordsOf, keyOf, plan, tapLoads, terms, times, writable, type ConvBackwardParams,
} from './conv-backward.ts';

/** `lanes` input channels per workgroup (the subgroup size), `rows` output channels, a chunk of `taps` (whole trailing kernel axes). */
export interface ConvWeightLanesTiling { lanes: number; rows: number; taps: number }

const u = (n: number) => `${n}u`;
const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1);

/** Running sums per lane the chooser allows (more spill on lavapipe; see chooseConvWeightLanesTiling). */
const MAX_SUMS = 160;

/**
 * The lanes tiling on a SIMD software adapter (as chooseGemmTiling decides), when at least half
 * the lanes have an input channel of their own; undefined otherwise. Taps: the largest chunk of
 * whole trailing kernel axes of at most 9 (a 3x3x3 kernel in chunks of 3x3); rows: two subgroups'
 * worth of output channels (within MAX_SUMS sums). Measured on lavapipe (8 lanes, 2 cores), GFLOP/s
 * against the per-element kernel's: 64 -> 64 channels 1x3x3 over 4 x 8 x 16 x 16 positions 36 (9.9),
 * 32 -> 32 1x3x3 34 (9.7), 3x1x1 21.7 (8.5), 3x3x3 over 2 x 4 x 8 x 8 19.7 (3.9); 8 rows were
 * 10-30 % slower, 10 and 24 rows (a partly idle subgroup of dy loads) slower still, 32 rows within
 * the noise of 16, all 27 taps of 3x3x3 at once slower than chunks of 9.
 */
export function chooseConvWeightLanesTiling(adapter: AdapterTraits | undefined, p: Pick<ConvBackwardParams, 'weight' | 'groups'>): ConvWeightLanesTiling | undefined {
  const t = chooseGemmTiling(adapter);
  if (t.kind !== 'lanes') return undefined;
  const [Cout, cinG, ...k] = p.weight.shape;
  const coutG = Cout / (p.groups ?? 1);
  if (2 * cinG < t.lanes) return undefined;
  const taps = [0, 1, 2, 3].map((s) => prod(k.slice(s))).find((n) => n <= 9)!;
  return { lanes: t.lanes, rows: Math.max(1, Math.min(coutG, 2 * t.lanes, Math.floor(MAX_SUMS / taps))), taps };
}

/** The weight gradient kernel for the adapter: the lanes kernel where it applies, else conv-backward.ts's. */
export function convWeightGradientKernel(p: ConvBackwardParams & { adapter?: AdapterTraits }): KernelSpec {
  const { adapter, ...rest } = p;
  const tiling = chooseConvWeightLanesTiling(adapter, rest);
  return tiling ? convBackwardWeightLanesKernel({ ...rest, tiling }) : convBackwardWeightKernel(rest);
}

/** dweight as conv-backward.ts's kernel computes it (same bindings: x, dy, dweight), summed in position order per element. */
export function convBackwardWeightLanesKernel(p: ConvBackwardParams & { tiling: ConvWeightLanesTiling }): KernelSpec {
  const g = plan(p);
  writable(g.weight, 'dweight');
  const { lanes: L, rows: R, taps } = p.tiling;
  const split = [0, 1, 2, 3].find((a) => prod(g.kernel.slice(a)) === taps);
  if (split === undefined || !Number.isInteger(L) || L < 1 || L > 64 || !Number.isInteger(R) || R < 1 || R > g.coutG || R * taps > 4 * MAX_SUMS) {
    throw new Error(`conv backward: lanes tiling ${JSON.stringify(p.tiling)} needs taps = a product of trailing kernel sizes [${g.kernel}], `
      + `1 <= rows <= Cout / groups (${g.coutG}), rows * taps <= ${4 * MAX_SUMS} and 1 <= lanes <= 64`);
  }
  const S = ['t', 'h', 'w'];
  const Q = Math.ceil(R / L);
  const outer = g.kernel.slice(0, split);
  const chunks = prod(outer);
  const blocks = Math.ceil(g.coutG / R), ciBlocks = Math.ceil(g.cinG / L);
  const total = g.groups * blocks * ciBlocks * chunks;
  const [xs, ys, wst] = [g.x.strides, g.out.strides, g.weight.strides];
  const body = [
    `let flat = ${GRID_WORKGROUP};`,
    `if (flat >= ${u(total)}) { return; }`,
    ...coordsOf([g.groups * blocks, ciBlocks, chunks], 'flat', ['cb', 'cib', 'q']),
    ...(split > 0 ? coordsOf(outer, 'q', S.slice(0, split).map((ax) => `k${ax}`), 'rq') : []),
    `let gi = cb / ${u(blocks)};`,
    `let j0 = (cb % ${u(blocks)}) * ${u(R)};`,
    `let ci = cib * ${u(L)} + lane;`,
    // lanes past the group's channels read its last one and write nothing; so do rows past its end
    `let xBase = ${u(g.x.offset)} + ${times(`(gi * ${u(g.cinG)} + min(ci, ${u(g.cinG - 1)}))`, xs[1])};`,
    ...Array.from({ length: Q }, (_, q) => `let yBase${q} = ${u(g.out.offset)} + ${times(`(gi * ${u(g.coutG)} + min(j0 + ${u(q * L)} + lane, ${u(g.coutG - 1)}))`, ys[1])};`),
    ...Array.from({ length: R * taps }, (_, e) => `var acc${e} = 0.0;`),
    `for (var pos = 0u; pos < ${u(g.B * prod(g.outSize))}; pos++) {`,
    ...coordsOf([g.B, ...g.outSize], 'pos', ['b', 'ot', 'oh', 'ow'], 'rp').map((l) => `  ${l}`),
    `  let yAt = ${terms([ys[0], ...ys.slice(2)], ['b', 'ot', 'oh', 'ow']).join(' + ') || '0u'};`,
    ...Array.from({ length: Q }, (_, q) => `  let dq${q} = dy_buf[yBase${q} + yAt];`),
    `  let xb = xBase + ${times('b', xs[0])};`,
  ];
  const { loads, tapTerms } = tapLoads(g, split, body);
  loads.forEach((load, e) => body.push(`  let x${e} = ${load};`));
  for (let r = 0; r < R; r++) {
    body.push(`  { let d = subgroupBroadcast(dq${Math.floor(r / L)}, ${u(r % L)});`,
      ...Array.from({ length: taps }, (_, e) => `    acc${r * taps + e} = fma(d, x${e}, acc${r * taps + e});`), '  }');
  }
  body.push('}');
  const chunkTerms = S.slice(0, split).map((ax, a) => times(`k${ax}`, wst[a + 2]));
  body.push(`if (ci < ${u(g.cinG)}) {`, `  let base = ${[u(g.weight.offset), times('ci', wst[1]), ...chunkTerms].join(' + ')};`);
  for (let r = 0; r < R; r++) {
    body.push(`  if (j0 + ${u(r)} < ${u(g.coutG)}) {`, `    let at = base + ${times(`(gi * ${u(g.coutG)} + j0 + ${u(r)})`, wst[0])};`,
      ...tapTerms.map((o, e) => `    dweight_buf[at + ${u(o)}] = acc${r * taps + e};`), '  }');
  }
  body.push('}');
  const wgsl = [
    'enable subgroups;',
    '@group(0) @binding(0) var<storage, read> x_buf: array<f32>;',
    '@group(0) @binding(1) var<storage, read> dy_buf: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> dweight_buf: array<f32>;',
    `@compute @workgroup_size(${L})`,
    'fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {',
    ...body.map((l) => `  ${l}`), '}', ''].join('\n');
  return {
    key: `conv-backward-weight-lanes:${keyOf(g)}:${L}:${R}x${taps}`, wgsl, entryPoint: 'main', dispatch: gridFor(total), features: ['subgroups'],
    bindings: [{ name: 'x', access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dweight', access: 'read_write' }],
  };
}
