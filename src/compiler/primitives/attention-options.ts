// attention's qk-norm and rotary position embedding (attention.ts). qk-norm: q and k normalised over the head width after the projection,
// before the scores, with learned [dim_head] affine parameters shared by every head (CogVideoX:
// LayerNorm(dim_head, eps=1e-6) on q and k; Open-Sora 1.2 STDiT3: RMSNorm(head_dim), eps 1e-6).
// Here: the float64 forward and backward on the reference's row-major projections, and the
// lowering onto the norm kernels (norm.ts, norm-backward.ts) over the q/k scratch.
import { normKernel, normLanesFor, type NormKind } from '../../codegen/kernels/norm.ts';
import { normParamsBackwardKernel, normRowsBackwardKernel } from '../../codegen/kernels/norm-backward.ts';
import { alongAxes, contiguous, numel, type View } from '../../codegen/kernels/view.ts';
import { ropeKernel, type RopeAxis } from '../../codegen/kernels/rope.ts';
import { fail } from '../ir/diagnostics.ts';
import type { Span } from '../ir/source.ts';
import type { AxisPair } from '../ir/graph.ts';
import type { Json } from '../ir/json.ts';
import type { LowerCall, LowerVjpCall } from './lowering.ts';
import type { ParamShape } from './types.ts';

export const QK_NORM_EPS = 1e-6;
export const QK_NORMS = ['none', 'layer', 'rms'] as const;

/** The qk-norm of a node's attributes, or null. */
export const qkNormOf = (attrs: Record<string, Json>): 'layer' | 'rms' | null =>
  attrs.qk_norm === 'layer' || attrs.qk_norm === 'rms' ? attrs.qk_norm : null;

/** q_norm.weight, k_norm.weight [dim_head] (ones), and with "layer" q_norm.bias, k_norm.bias (zeros). */
export function qkNormParams(kind: 'layer' | 'rms', dh: number): ParamShape[] {
  const out: ParamShape[] = [];
  for (const which of ['q', 'k']) {
    out.push({ leaf: `${which}_norm.weight`, shape: [dh], init: 'ones' });
    if (kind === 'layer') out.push({ leaf: `${which}_norm.bias`, shape: [dh], init: 'zeros' });
  }
  return out;
}

/** Where one part (q or k) lies in row-major projections: `rows` rows of `stride`, heads * dh from `offset`. */
export interface Part { rows: number; stride: number; offset: number; heads: number; dh: number }

function forEachHead(p: Part, f: (base: number) => void): void {
  for (let r = 0; r < p.rows; r++) for (let h = 0; h < p.heads; h++) f(r * p.stride + p.offset + h * p.dh);
}

/** mean (0 for rms) and 1 / sqrt(var + eps) of src[base, base + n) */
function stats(src: Float64Array, base: number, n: number, layer: boolean): { mean: number; rstd: number } {
  let mean = 0;
  if (layer) {
    for (let e = 0; e < n; e++) mean += src[base + e];
    mean /= n;
  }
  let sq = 0;
  for (let e = 0; e < n; e++) sq += (src[base + e] - mean) ** 2;
  return { mean, rstd: 1 / Math.sqrt(sq / n + QK_NORM_EPS) };
}

/** Normalises each head of part `p` of `data` in place: (x - mean) * rstd * w + b. */
export function normalizePart(data: Float64Array, p: Part, kind: 'layer' | 'rms', w: Float64Array, b: Float64Array | undefined): void {
  forEachHead(p, (base) => {
    const { mean, rstd } = stats(data, base, p.dh, kind === 'layer');
    for (let e = 0; e < p.dh; e++) data[base + e] = (data[base + e] - mean) * rstd * w[e] + (b ? b[e] : 0);
  });
}

/**
 * The backward of normalizePart: `grad` holds d loss / d normalised values at part `p`; they are
 * replaced by d loss / d raw values (raw: the projections before the norm). With xh = (x - mean)
 * rstd and g = dy w: dx = rstd (g - mean(g) - xh mean(g xh)) (rms: no mean(g) term), dw = sum dy xh,
 * db = sum dy.
 */
export function normalizePartBack(raw: Float64Array, grad: Float64Array, p: Part, kind: 'layer' | 'rms', w: Float64Array):
  { dw: Float64Array; db: Float64Array } {
  const dw = new Float64Array(p.dh), db = new Float64Array(p.dh), xh = new Float64Array(p.dh), g = new Float64Array(p.dh);
  forEachHead(p, (base) => {
    const { mean, rstd } = stats(raw, base, p.dh, kind === 'layer');
    let mg = 0, mgx = 0;
    for (let e = 0; e < p.dh; e++) {
      const dy = grad[base + e];
      xh[e] = (raw[base + e] - mean) * rstd;
      g[e] = dy * w[e];
      dw[e] += dy * xh[e];
      db[e] += dy;
      mg += g[e];
      mgx += g[e] * xh[e];
    }
    mg = kind === 'layer' ? mg / p.dh : 0;
    mgx /= p.dh;
    for (let e = 0; e < p.dh; e++) grad[base + e] = rstd * (g[e] - mg - xh[e] * mgx);
  });
  return { dw, db };
}

/** x: the raw part's view [...rows, heads, dh]; y (forward) or dy and dx (backward) over the same shape. */
export interface NormSite { which: 'q' | 'k'; x: View; xBuffer: string }

const along = (v: View) => alongAxes(v.shape, [v.shape.length - 1]);

/** One norm kernel writing the normalised part to `y` in `yBuffer`. */
export function emitQkNorm(call: LowerCall, kind: 'layer' | 'rms', site: NormSite, y: View, yBuffer: string): void {
  const w = call.params.get(`${site.which}_norm.weight`)!, b = call.params.get(`${site.which}_norm.bias`);
  const spec = normKernel({
    kind: kind as NormKind, x: site.x, y, normalizedAxes: 1, eps: QK_NORM_EPS,
    weight: along(site.x), bias: b ? along(site.x) : undefined, subgroupLanes: normLanesFor(call.adapter),
  });
  call.emit(spec, [site.xBuffer, w, ...(b ? [b] : []), yBuffer]);
}

/**
 * The norm's backward: from dy (d loss / d the normalised part, `dyBuffer`) to dx (the raw part's
 * gradient, in place in the packed projection gradient `dxBuffer`), and the parameters' gradients.
 */
export function emitQkNormVjp(call: LowerVjpCall, kind: 'layer' | 'rms', site: NormSite, dy: { view: View; buffer: string },
  dx: { view: View; buffer: string }): void {
  const leaf = (n: string) => `${site.which}_norm.${n}`;
  const dweight = call.paramGrads.get(leaf('weight')), dbias = call.paramGrads.get(leaf('bias'));
  const rows = numel(site.x.shape.slice(0, -1));
  const stats = call.scratch(`${site.which}normstats`, rows * 3);
  const buffers: Record<string, string | undefined> = {
    x: site.xBuffer, dy: dy.buffer, dx: dx.buffer, stats,
    weight: call.params.get(leaf('weight')), bias: call.params.get(leaf('bias')), dweight, dbias,
  };
  const bind = (spec: { bindings: { name: string }[] }) => spec.bindings.map((b) => {
    const buf = buffers[b.name];
    if (!buf) throw new Error(`attention qk-norm backward: no buffer for binding '${b.name}'`);
    return buf;
  });
  const p = {
    kind: kind as NormKind, x: site.x, dy: dy.view, normalizedAxes: 1, eps: QK_NORM_EPS,
    weight: along(site.x), bias: buffers.bias ? along(site.x) : undefined, stats: contiguous([rows, 3]),
  };
  const rowsSpec = normRowsBackwardKernel({ ...p, dx: dx.view, subgroupLanes: normLanesFor(call.adapter) });
  call.emit(rowsSpec, bind(rowsSpec));
  if (dweight || dbias) {
    const paramSpec = normParamsBackwardKernel({ ...p, dweight: dweight ? along(site.x) : undefined, dbias: dbias ? along(site.x) : undefined });
    call.emit(paramSpec, bind(paramSpec));
  }
}

// ---------------------------------------------------------------- rope

export const ROPE_THETA = 10000;

/**
 * The head-dim split of `rope` over its axes, in the order given: one axis takes all of dim_head,
 * two take half each, three take a quarter then three eighths each (CogVideoX's 3D RoPE:
 * dim_head 64 -> t 16, h 24, w 24). Every part must be even (VDM038).
 */
export function ropeWidths(axes: readonly string[], dh: number, span: Span): number[] {
  const k = axes.length;
  const need = [0, 2, 4, 16][k];
  if (k === 0 || k > 3) fail('VDM038', span, `rope takes one to three axes, got ${k}`, 'give rope the token axes to encode, e.g. rope: t or rope: (t, h, w)');
  if (dh % need !== 0) {
    fail('VDM038', span, `rope over ${k} ${k > 1 ? 'axes' : 'axis'} needs dim_head to be a multiple of ${need}, got ${dh}`,
      `choose heads or dim_head so that the head width is a multiple of ${need}`);
  }
  return k === 1 ? [dh] : k === 2 ? [dh / 2, dh / 2] : [dh / 4, (3 * dh) / 8, (3 * dh) / 8];
}

/** The rope attribute: [axis, width] per rope axis, or null. */
export const ropeOf = (attrs: Record<string, Json>): [string, number][] | null => (attrs.rope ?? null) as [string, number][] | null;

/**
 * Turns part `p` of `data` (rows: batch, then tokens row-major over `tokens`, as the reference lays
 * them out) by the rotary embedding; `inverse` turns back (the backward: the rotation's transpose).
 */
export function rotatePart(data: Float64Array, p: Part, tokens: readonly AxisPair[], rope: [string, number][], inverse = false): void {
  const nq = tokens.reduce((n, [, s]) => n * s, 1);
  // position of each rope axis for token i: (i / (product of later token sizes)) % size
  const place = rope.map(([axis]) => {
    const at = tokens.findIndex(([n]) => n === axis);
    return { size: tokens[at][1], below: tokens.slice(at + 1).reduce((n, [, s]) => n * s, 1) };
  });
  for (let r = 0; r < p.rows; r++) {
    const i = r % nq;
    for (let h = 0; h < p.heads; h++) {
      const base = r * p.stride + p.offset + h * p.dh;
      let start = 0;
      rope.forEach(([, width], a) => {
        const pos = Math.floor(i / place[a].below) % place[a].size;
        for (let j = 0; j < width / 2; j++) {
          const angle = pos * ROPE_THETA ** (-2 * j / width) * (inverse ? -1 : 1);
          const i0 = base + start + 2 * j;
          const x0 = data[i0], x1 = data[i0 + 1];
          data[i0] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
          data[i0 + 1] = x1 * Math.cos(angle) + x0 * Math.sin(angle);
        }
        start += width;
      });
    }
  }
}

/** The rope kernel in place over `view` [...grid, heads, dh] (`grid` names its leading axes). */
export function emitRope(call: LowerCall, rope: [string, number][], grid: readonly string[], view: View, buffer: string, inverse = false): void {
  const axes: RopeAxis[] = rope.map(([axis, width]) => ({ axis: grid.indexOf(axis), width }));
  call.emit(ropeKernel({ x: view, axes, theta: ROPE_THETA, inverse }), [buffer]);
}
