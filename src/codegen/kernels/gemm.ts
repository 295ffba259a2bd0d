/**
 * Batched GEMM with a fused prologue and epilogue: out[...b, m, n] = epi(sum_k pro(A)[...b, m, k] * B[...b, k, n]).
 *
 * describe — GemmParams (every operand is a strided View, so transposes and permutations are strides):
 *   a         [...batch, M, K]
 *   b         [...batch, K, N], or [K, N] shared by every batch entry (weights); stride 0 broadcasts too
 *   out       [...batch, M, N]
 *   normalize { eps }: layer norm of each A row over K, no affine (DiT adaLN). The row mean and variance are
 *             computed inside the kernel (one shifted single pass over the row), nothing is precomputed.
 *   scale     [...batch, K] and/or shift [...batch, K]: then x * (1 + scale) + shift (per sample in DiT:
 *             broadcast over tokens; use stride 0 on batch axes to share across a group of entries)
 *   bias      [N]; activation: none | silu | gelu (erf) | gelu_tanh | relu | sigmoid | tanh
 *   gate      [...batch, N]; residual [...batch, M, N]
 *   epilogue order: act(acc + bias) * gate + residual
 *   tiling    optional; else chosen by chooseGemmTiling(adapter) — pass `adapter` (the runtime's Gpu) to get
 *             the tiling that suits it: 'lanes' for SIMD software adapters, 'tiles' (shared memory) otherwise.
 * Bindings, in order: a, b, [scale], [shift], [bias], [gate], [residual], out (only the present ones).
 */
import { type KernelSpec } from './kernel.ts';
import { extent, forEachIndex } from './view.ts';
import { apply64 } from './epilogue.ts';
import { checkTilesTiling, chooseGemmTiling, gemmTilingCandidates, OPTIONAL_OPERANDS, planGemm, type GemmParams, type GemmTiling, type Operand } from './gemm-plan.ts';
import { gemmLanesWgsl } from './gemm-lanes.ts';
import { gemmTilesSource } from './gemm-tiles.ts';
import { tileSkeleton } from './gemm-prefetch.ts';

// ---------------------------------------------------------------- float64 reference

export type GemmData = { a: ArrayLike<number>; b: ArrayLike<number> } & Partial<Record<(typeof OPTIONAL_OPERANDS)[number], ArrayLike<number>>>;

const dot = (idx: readonly number[], s: readonly number[]) => idx.reduce((o, x, i) => o + x * s[i], 0);

/**
 * float64 GEMM over the buffers in `d`; returns the output buffer (extent(out) elements): written
 * elements hold the result, the rest NaN (unwritten, like the poisoned GPU buffer).
 * With `magnitude`, each element instead holds the scale its rounding error grows with:
 * (sum_k |pro(A)[m, k]| * |B[k, n]| + |bias|) * |gate| + |residual|. A sum that cancels to near zero
 * keeps the absolute error of its terms, so a comparison judges it against this scale.
 */
export function gemmReference(p: GemmParams, d: GemmData, magnitude = false): Float64Array {
  const g = planGemm(p);
  const { M, N, K } = g;
  const out = new Float64Array(extent(p.out)).fill(NaN);
  const row = new Float64Array(K);
  const base = (o: Operand | undefined, bi: number[]) => (o ? o.view.offset + dot(bi, o.batchStrides) : 0);
  forEachIndex(g.batch, (bi) => {
    const [a0, b0, o0] = [base(g.a, bi), base(g.b, bi), base(g.out, bi)];
    const [sc0, sh0, ga0, re0] = [base(g.scale, bi), base(g.shift, bi), base(g.gate, bi), base(g.residual, bi)];
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) row[k] = d.a[a0 + m * g.a.strides[0] + k * g.a.strides[1]];
      if (g.eps !== undefined) {
        const mean = row.reduce((s, x) => s + x, 0) / K;
        const variance = row.reduce((s, x) => s + (x - mean) ** 2, 0) / K;
        const rstd = 1 / Math.sqrt(variance + g.eps);
        for (let k = 0; k < K; k++) row[k] = (row[k] - mean) * rstd;
      }
      for (let k = 0; k < K; k++) {
        if (g.scale) row[k] *= 1 + d.scale![sc0 + k * g.scale.strides[0]];
        if (g.shift) row[k] += d.shift![sh0 + k * g.shift.strides[0]];
      }
      for (let n = 0; n < N; n++) {
        let acc = 0;
        const bias = g.bias ? d.bias![g.bias.view.offset + n * g.bias.strides[0]] : undefined;
        const gate = g.gate ? d.gate![ga0 + n * g.gate.strides[0]] : undefined;
        const residual = g.residual ? d.residual![re0 + m * g.residual.strides[0] + n * g.residual.strides[1]] : undefined;
        const at = o0 + m * g.out.strides[0] + n * g.out.strides[1];
        if (magnitude) {
          for (let k = 0; k < K; k++) acc += Math.abs(row[k] * d.b[b0 + k * g.b.strides[0] + n * g.b.strides[1]]);
          out[at] = (acc + Math.abs(bias ?? 0)) * Math.abs(gate ?? 1) + Math.abs(residual ?? 0);
          continue;
        }
        for (let k = 0; k < K; k++) acc += row[k] * d.b[b0 + k * g.b.strides[0] + n * g.b.strides[1]];
        out[at] = apply64(g.activation, acc, bias, gate, residual);
      }
    }
  });
  return out;
}

// ---------------------------------------------------------------- entry point

function checkTiling(t: GemmTiling): void {
  const pos = (x: number, what: string) => {
    if (!Number.isInteger(x) || x < 1) throw new Error(`gemm tiling: ${what} must be a positive integer (got ${x})`);
  };
  if (t.kind === 'lanes') {
    pos(t.lanes, 'lanes'); pos(t.rows, 'rows'); pos(t.colVecs, 'colVecs');
    if (t.rows % t.lanes) throw new Error(`gemm tiling: rows (${t.rows}) must be a multiple of lanes (${t.lanes})`);
  } else if (t.kind === 'tiles') {
    checkTilesTiling(t, 'gemm');
  } else {
    throw new Error(`gemm tiling: unknown kind '${(t as { kind: unknown }).kind}' (lanes or tiles)`);
  }
}

/** The GEMM kernel for `p`; see the describe block at the top of this file. */
export function gemmKernel(p: GemmParams): KernelSpec {
  const plan = planGemm(p);
  const tiling = p.tiling ?? chooseGemmTiling(p.adapter, plan.M);
  checkTiling(tiling);
  const body = tiling.kind === 'lanes' ? gemmLanesWgsl(plan, tiling) : tileSkeleton(tiling)(gemmTilesSource(plan, tiling), tiling);
  const ops = [plan.a, plan.b, ...OPTIONAL_OPERANDS.map((k) => plan[k]).filter((o): o is Operand => !!o), plan.out];
  const key = ['gemm', JSON.stringify(tiling), plan.activation, plan.eps ?? '-',
    ...ops.map((o) => `${o.name}:${o.view.shape}/${o.view.strides}/${o.view.offset}`)].join('|');
  const spec: KernelSpec = {
    key, wgsl: body.wgsl, entryPoint: 'main', dispatch: body.dispatch, features: body.features,
    bindings: ops.map((o) => ({ name: `${o.name}_buf`, access: o === plan.out ? 'read_write' as const : 'read' as const })),
  };
  if (p.adapter?.tune && !p.tiling) {
    const { adapter, ...fixed } = p;
    spec.variants = () => gemmTilingCandidates(adapter, plan).slice(1).map((t) => gemmKernel({ ...fixed, tiling: t }));
  }
  return spec;
}

/** Binding order of the present operands (for callers assembling buffers). */
export function gemmBindingNames(p: GemmParams): string[] {
  return ['a', 'b', ...OPTIONAL_OPERANDS.filter((k) => p[k] !== undefined), 'out'];
}
