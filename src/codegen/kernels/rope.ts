// Rotary position embedding, in place over q or k (attention's `rope`): the head dim of a view
// [...grid, heads, dh] is cut into consecutive parts, one per rope axis (a grid axis) in order; in
// each part of width w, the interleaved pair (2j, 2j + 1) turns by pos * theta^(-2j / w) radians,
// pos the element's index along that grid axis: (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin), the
// convention of rotary_embedding_torch and diffusers' apply_rotary_emb (use_real, unbind_dim -1).
// `inverse` turns by the opposite angle (the transpose, for the backward). sin/cos come from the
// fixed-point sinusoid of embed.ts (accurate at large angles). One invocation per pair.
import { flatKernel, type KernelSpec } from './kernel.ts';
import { fixed64, SINUSOID_WGSL } from './embed.ts';
import { extent, numel, wgslCoords, wgslDot, type View } from './view.ts';

export interface RopeAxis {
  /** index of the grid axis in x's shape (not one of the last two) */
  axis: number;
  /** head-dim channels it turns: even, the parts in order fill dh exactly */
  width: number;
}

export interface RopeParams {
  x: View;
  axes: RopeAxis[];
  theta: number;
  inverse?: boolean;
  workgroupSize?: number;
}

function validate(p: RopeParams): { dh: number; rows: number[] } {
  const rank = p.x.shape.length;
  if (rank < 3) throw new Error('rope: x must be [...grid, heads, dh]');
  const dh = p.x.shape[rank - 1];
  let sum = 0;
  for (const a of p.axes) {
    if (!Number.isInteger(a.axis) || a.axis < 0 || a.axis >= rank - 2) throw new Error(`rope: axis ${a.axis} is not a grid axis of [${p.x.shape}]`);
    if (!Number.isInteger(a.width) || a.width < 2 || a.width % 2 !== 0) throw new Error(`rope: width ${a.width} must be even and positive`);
    sum += a.width;
  }
  if (sum !== dh) throw new Error(`rope: the parts' widths add to ${sum}, not dh=${dh}`);
  if (!(p.theta > 1)) throw new Error(`rope: theta must be above 1 (got ${p.theta})`);
  return { dh, rows: p.x.shape.slice(0, -1) };
}

export function ropeKernel(p: RopeParams): KernelSpec {
  const { dh, rows } = validate(p);
  const wg = p.workgroupSize ?? 64;
  const half = dh / 2;
  const last = p.x.strides[p.x.strides.length - 1];
  const sign = p.inverse ? '-' : '';
  let start = 0;
  const parts = p.axes.map((a) => {
    const s = start;
    start += a.width;
    // pair j of this part: frequency (theta^(-2 / w))^j, as a 64-bit fixed-point fraction
    return `if (c >= ${s}u && c < ${s + a.width}u) { sc = sinusoid(f32(i${a.axis}), ${fixed64(p.theta ** (-2 / a.width))}, (c - ${s}u) / 2u); }`;
  });
  const body = [
    `let pair = flat % ${half}u;`,
    `let row = flat / ${half}u;`,
    ...wgslCoords(rows, 'row', 'i'),
    `let c = 2u * pair;`,
    `var sc = vec2f(0.0, 1.0);`,
    ...parts,
    `let s = ${sign}sc.x;`,
    `let at = ${wgslDot(p.x.offset, p.x.strides.slice(0, -1), 'i')} + c * ${last}u;`,
    `let x0 = b_x[at];`,
    `let x1 = b_x[at + ${last}u];`,
    `b_x[at] = x0 * sc.y - x1 * s;`,
    `b_x[at + ${last}u] = x1 * sc.y + x0 * s;`,
  ];
  if (last <= 0) throw new Error('rope: the head dim needs a positive stride');
  return flatKernel({
    key: `rope:${JSON.stringify([p.x, p.axes, p.theta, !!p.inverse, wg])}`,
    decls: ['@group(0) @binding(0) var<storage, read_write> b_x: array<f32>;', SINUSOID_WGSL],
    wg, total: numel(rows) * half, body, bindings: [{ name: 'x', access: 'read_write' }],
  });
}

/** The float64 result of ropeKernel: x (a buffer of extent(p.x) elements) with the view rotated. */
export function ropeReference(p: RopeParams, x: ArrayLike<number>): Float64Array {
  const { dh, rows } = validate(p);
  const out = Float64Array.from(x);
  if (out.length < extent(p.x)) throw new Error('rope: x is shorter than its view');
  const last = p.x.strides[p.x.strides.length - 1];
  const idx = rows.map(() => 0);
  for (let r = 0; r < numel(rows); r++) {
    for (let a = rows.length - 1, rem = r; a >= 0; a--) { idx[a] = rem % rows[a]; rem = Math.floor(rem / rows[a]); }
    const base = idx.reduce((o, v, a) => o + v * p.x.strides[a], p.x.offset);
    let start = 0;
    for (const a of p.axes) {
      for (let j = 0; j < a.width / 2; j++) {
        const angle = idx[a.axis] * p.theta ** (-2 * j / a.width) * (p.inverse ? -1 : 1);
        const i0 = base + (start + 2 * j) * last, i1 = i0 + last;
        const x0 = out[i0], x1 = out[i1];
        out[i0] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
        out[i1] = x1 * Math.cos(angle) + x0 * Math.sin(angle);
      }
      start += a.width;
    }
    if (start !== dh) throw new Error('rope: internal');
  }
  return out;
}
