// The float64 reference and backward rule of attention (its module is attention.ts): projections,
// windows (shifted, padded), the relative-position bias, key masks and cross-attention on named axes.
import type { AxisPair } from '../ir/graph.ts';
import { numelOf, relayout, sizeIn, stridesOf, sumTo, type NamedTensor } from '../ir/named-tensor.ts';
import type { ReferenceCall, VjpCall, VjpResult } from './types.ts';
import { normalizePart, normalizePartBack, qkNormOf, ropeOf, rotatePart, type Part } from './attention-options.ts';

/** rows[r, o] = sum_i src[r, i] w[i, o] + b[o]: a projection of row-major [rows, in] to [rows, out]. */
function project(src: Float64Array, rows: number, inSize: number, w: Float64Array, b: Float64Array | undefined, out: number): Float64Array {
  const dst = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let acc = b ? b[o] : 0;
      for (let i = 0; i < inSize; i++) acc += src[r * inSize + i] * w[i * out + o];
      dst[r * out + o] = acc;
    }
  }
  return dst;
}

/** Where q and k lie in the projections (q's and kv's rows, their row lengths and offsets). */
interface QkParts { q: Part; k: Part }
const qkParts = (rows: { nq: number; nk: number }, s: { qStride: number; kvStride: number; kOff: number }, heads: number, dh: number): QkParts => ({
  q: { rows: rows.nq, stride: s.qStride, offset: 0, heads, dh },
  k: { rows: rows.nk, stride: s.kvStride, offset: s.kOff, heads, dh },
});

/**
 * qk_norm, then rope: q and kv with q and k normalised per head and turned by their tokens'
 * positions (copies; one shared copy for self-attention's qkv). `tokens`: the token axes in `over` order.
 */
function withQkNorm(attrs: ReferenceCall['attrs'], params: ReadonlyMap<string, Float64Array>, q: Float64Array, kv: Float64Array,
  parts: QkParts, tokens: readonly AxisPair[]) {
  const kind = qkNormOf(attrs), rope = ropeOf(attrs);
  if (!kind && !rope) return { q, kv };
  const nq = q.slice(), nkv = kv === q ? nq : kv.slice();
  if (kind) {
    normalizePart(nq, parts.q, kind, params.get('q_norm.weight')!, params.get('q_norm.bias'));
    normalizePart(nkv, parts.k, kind, params.get('k_norm.weight')!, params.get('k_norm.bias'));
  }
  if (rope) {
    rotatePart(nq, parts.q, tokens, rope);
    rotatePart(nkv, parts.k, tokens, rope);
  }
  return { q: nq, kv: nkv };
}

/**
 * One token axis: n positions (padded) in windows of w, shifted by s (window w = n and s = 0
 * without windows); bw is the window the bias table was made for (w unless a window was clamped).
 */
interface TokenAxis { n: number; w: number; s: number; bw: number }

/** Swin's region of a rolled coordinate, as the kernel labels it: [0, n-w), [n-w, n-s), [n-s, n). */
const regionOf = (a: TokenAxis, c: number) => (c < a.n - a.w ? 0 : c < a.n - a.s ? 1 : 2);

/**
 * The attributes, and the float64 working layout: batch axes (node order), then the token axes in
 * `over` order, then c; so a token index is row-major over `over` and the bias table's mixed radix
 * follows the same order.
 */
function workingLayout(attrs: ReferenceCall['attrs'], axes: readonly AxisPair[]) {
  const over = attrs.over as string[];
  const batchAxes = axes.filter(([n]) => n !== 'c' && !over.includes(n));
  // `padded` (pad: true): the token axes padded with zeros after the end up to a multiple of the window
  const padded = (attrs.padded ?? null) as Record<string, number> | null;
  const tokenAxes: AxisPair[] = over.map((n) => [n, padded?.[n] ?? sizeIn(axes, n)]);
  const d = sizeIn(axes, 'c');
  const window = attrs.window as Record<string, number> | null;
  const shift = attrs.shift as Record<string, number> | null;
  const biasWindow = (attrs.bias_window ?? null) as Record<string, number> | null;
  const heads = Number(attrs.heads);
  // dim_head: the head width, independent of c; q, k, v and o are heads * dh (`inner`) wide
  const dh = attrs.dim_head != null ? Number(attrs.dim_head) : d / heads;
  return {
    over, heads, d, dh, inner: heads * dh, batchAxes, tokenAxes,
    ctxOver: attrs.context_over as string[] | null,
    qAxes: tokenAxes.map(([n, size]): TokenAxis => {
      const w = window?.[n] ?? size;
      return { n: size, w, s: shift?.[n] ?? 0, bw: biasWindow?.[n] ?? w };
    }),
    /** the node's layout (batch axes, then the token axes in `over` order, then c) and the padded one */
    layout: [...batchAxes, ...over.map((n) => [n, sizeIn(axes, n)]), ['c', d]] as AxisPair[],
    work: [...batchAxes, ...tokenAxes, ['c', d]] as AxisPair[],
  };
}

/** `t` (row-major over `from`) inside zeros over `to`: the same axes, each at least as long; index 0 at 0. */
export function padTo(t: Float64Array, from: readonly AxisPair[], to: readonly AxisPair[]): Float64Array {
  const out = new Float64Array(numelOf(to));
  forEachInside(from, to, (i, o) => { out[o] = t[i]; });
  return out;
}

/** The part of `t` (row-major over `to`) that `from` covers: the inverse of padTo. */
export function cropTo(t: Float64Array, to: readonly AxisPair[], from: readonly AxisPair[]): Float64Array {
  const out = new Float64Array(numelOf(from));
  forEachInside(from, to, (i, o) => { out[i] = t[o]; });
  return out;
}

function forEachInside(from: readonly AxisPair[], to: readonly AxisPair[], f: (inner: number, outer: number) => void): void {
  if (from === to) {
    for (let i = 0; i < numelOf(from); i++) f(i, i);
    return;
  }
  const strides = stridesOf(to);
  const idx = from.map(() => 0);
  let o = 0;
  for (let i = 0; i < numelOf(from); i++) {
    f(i, o);
    for (let a = from.length - 1; a >= 0; a--) {
      if (++idx[a] < from[a][1]) { o += strides[a]; break; }
      o -= strides[a] * (from[a][1] - 1);
      idx[a] = 0;
    }
  }
}

/**
 * The node's value, following src/codegen/attention.ts: projected rows are [.., 3, heads, dh] (qkv) or
 * [.., 2, heads, dh] (kv), scores scaled by 1/sqrt(dh), windows over the grid rolled by -shift with
 * keys from other original regions excluded, and the relative-position table indexed by
 * query-minus-key window offsets with the first `over` axis most significant.
 */
export function attentionReferenceOf({ inputs, params, attrs, axes }: ReferenceCall): NamedTensor {
  const { heads, qAxes, ctxOver, batchAxes, tokenAxes, d, dh, inner, layout, work } = workingLayout(attrs, axes);
  const x = { axes: work, data: padTo(relayout(inputs[0], layout).data, layout, work) };
  const nb = numelOf(batchAxes), nq = numelOf(tokenAxes);
  const bias = (leaf: string) => params.get(leaf);

  // q, k, v as [batch, tokens, heads * dh] row-major, each with its row length (3, 2 or 1 x inner) and offset
  let q: Float64Array, kv: Float64Array, qStride: number, kvStride: number, kOff: number, vOff: number, nk: number;
  if (ctxOver) {
    const ctx = inputs[1];
    const dc = sizeIn(ctx.axes, 'c');
    const ctxTokens: AxisPair[] = ctxOver.map((n) => [n, sizeIn(ctx.axes, n)]);
    nk = numelOf(ctxTokens);
    // a batch axis of x that the context lacks is broadcast (relayout gives it stride 0)
    const c = relayout(ctx, [...batchAxes, ...ctxTokens, ['c', dc]]);
    q = project(x.data, nb * nq, d, params.get('q.weight')!, bias('q.bias'), inner);
    kv = project(c.data, nb * nk, dc, params.get('kv.weight')!, bias('kv.bias'), 2 * inner);
    qStride = inner; kvStride = 2 * inner; kOff = 0; vOff = inner;
  } else {
    nk = nq;
    q = kv = project(x.data, nb * nq, d, params.get('qkv.weight')!, bias('qkv.bias'), 3 * inner);
    qStride = kvStride = 3 * inner; kOff = inner; vOff = 2 * inner;
  }
  ({ q, kv } = withQkNorm(attrs, params, q, kv, qkParts({ nq: nb * nq, nk: nb * nk }, { qStride, kvStride, kOff }, heads, dh), tokenAxes));

  // cross-attention has one window holding every context token
  const table = bias('rel_bias');
  const keySets = keySetsOf(qAxes, nq, nk, ctxOver !== null, attrs.causal === true);
  const mask = keyMaskOf(attrs, inputs, batchAxes, ctxOver ? ctxOver.map((n) => [n, sizeIn(inputs[1].axes, n)]) : tokenAxes);
  const scores = new Float64Array(nk);
  const o = new Float64Array(nb * nq * inner);
  const scale = 1 / Math.sqrt(dh);

  for (let i = 0; i < nq; i++) {
    for (let b = 0; b < nb; b++) {
      // the query's key set: original token indices (and bias rows) of the keys its window and the
      // mask let it see; a fully masked row has none, and o stays 0
      const { index: keyIndex, rel: keyRel } = maskedSet(keySets[i], mask, b, nk);
      const keys = keyIndex.length;
      const qRow = (b * nq + i) * qStride;
      for (let h = 0; h < heads; h++) {
        probabilities(scores, { q, qRow: qRow + h * dh, kv, kvRow0: b * nk, kvStride, kOff: kOff + h * dh, dh, scale, table, heads, h }, keyIndex, keyRel);
        const oRow = (b * nq + i) * inner + h * dh;
        for (let j = 0; j < keys; j++) {
          const vRow = (b * nk + keyIndex[j]) * kvStride + vOff + h * dh;
          for (let e = 0; e < dh; e++) o[oRow + e] += scores[j] * kv[vRow + e];
        }
      }
    }
  }
  return { axes: layout, data: cropTo(project(o, nb * nq, inner, params.get('proj.weight')!, bias('proj.bias'), d), work, layout) };
}

/**
 * Backward of project(): given dDst = d loss / d rows [rows, out], accumulates dSrc = dDst w^T,
 * dW = src^T dDst and dB = column sums of dDst.
 */
function projectBack(src: Float64Array, rows: number, inSize: number, w: Float64Array, dDst: Float64Array, out: number):
  { dSrc: Float64Array; dW: Float64Array; dB: Float64Array } {
  const dSrc = new Float64Array(rows * inSize), dW = new Float64Array(inSize * out), dB = new Float64Array(out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      const g = dDst[r * out + o];
      if (g === 0) continue;
      dB[o] += g;
      for (let i = 0; i < inSize; i++) {
        dSrc[r * inSize + i] += g * w[i * out + o];
        dW[i * out + o] += src[r * inSize + i] * g;
      }
    }
  }
  return { dSrc, dW, dB };
}

/**
 * key_mask as [batch, key tokens] (a batch axis it lacks broadcast), or null. The mask is the last
 * input; its keys are the context's tokens, or the `over` axes (no windows, so no padding).
 */
function keyMaskOf(attrs: ReferenceCall['attrs'], inputs: readonly NamedTensor[], batchAxes: readonly AxisPair[], keyTokens: readonly AxisPair[]): Float64Array | null {
  if (attrs.key_mask !== true) return null;
  return relayout(inputs[inputs.length - 1], [...batchAxes, ...keyTokens]).data;
}

/** A key set without the keys that batch element b's mask drops (masked keys: probability 0, no gradient). */
function maskedSet(set: { index: Int32Array; rel: Int32Array }, mask: Float64Array | null, b: number, nk: number): { index: Int32Array; rel: Int32Array } {
  if (!mask) return set;
  const keep = Array.from(set.index.keys()).filter((j) => mask[b * nk + set.index[j]] !== 0);
  if (keep.length === set.index.length) return set;
  return { index: Int32Array.from(keep, (j) => set.index[j]), rel: Int32Array.from(keep, (j) => set.rel[j]) };
}

/** Where one (query, head) reads its scores: q at qRow, key j at (kvRow0 + index[j]) * kvStride + kOff. */
interface ScoreSource {
  q: Float64Array; qRow: number; kv: Float64Array; kvRow0: number; kvStride: number; kOff: number;
  dh: number; scale: number; table: Float64Array | undefined; heads: number; h: number;
}

/** p[j] = softmax over the key set of (scale q.k_j + table[rel_j, h]): shared by the reference and the backward rule. */
function probabilities(p: Float64Array, s: ScoreSource, index: Int32Array, rel: Int32Array): void {
  let max = -Infinity;
  for (let j = 0; j < index.length; j++) {
    const kRow = (s.kvRow0 + index[j]) * s.kvStride + s.kOff;
    let dot = 0;
    for (let e = 0; e < s.dh; e++) dot += s.q[s.qRow + e] * s.kv[kRow + e];
    p[j] = dot * s.scale + (s.table ? s.table[rel[j] * s.heads + s.h] : 0);
    if (p[j] > max) max = p[j];
  }
  let sum = 0;
  for (let j = 0; j < index.length; j++) { p[j] = Math.exp(p[j] - max); sum += p[j]; }
  for (let j = 0; j < index.length; j++) p[j] /= sum;
}

/**
 * Every query token's key set (shared by the reference and the backward rule): original key token
 * indices and, per key, its relative-position table row. A query sees its window's keys on the grid
 * rolled by -shift, minus those from another Swin region (masked pairs get probability exactly 0).
 * Cross-attention: every context token. Causal: only keys whose token index (row-major over `over`)
 * is at most the query's.
 */
function keySetsOf(qAxes: readonly TokenAxis[], nq: number, nk: number, cross: boolean, causal: boolean): { index: Int32Array; rel: Int32Array }[] {
  const k = qAxes.length;
  const masked = qAxes.some((a) => a.s > 0);
  const radix = qAxes.map((_, i) => qAxes.slice(i + 1).reduce((r, a) => r * (2 * a.bw - 1), 1));
  const rolled = new Array<number>(k), qPos = new Array<number>(k), kPos = new Array<number>(k);
  // In-window coordinates in the bias window: the in-window index (row-major over the window) read
  // over the bias window, as relative_position_index[:N, :N] does; the same as qPos where bw = w.
  const clamped = qAxes.some((a) => a.bw !== a.w);
  const inBias = (pos: number[]): number[] => {
    if (!clamped) return pos;
    let r = pos.reduce((t, c, a) => t * qAxes[a].w + c, 0);
    const out = new Array<number>(k);
    for (let a = k - 1; a >= 0; a--) { out[a] = r % qAxes[a].bw; r = Math.floor(r / qAxes[a].bw); }
    return out;
  };
  const sets: { index: Int32Array; rel: Int32Array }[] = [];
  for (let i = 0; i < nq; i++) {
    if (cross) {
      sets.push({ index: Int32Array.from({ length: nk }, (_, j) => j), rel: new Int32Array(nk) });
      continue;
    }
    for (let a = k - 1, r = i; a >= 0; a--) {
      const c = r % qAxes[a].n; r = Math.floor(r / qAxes[a].n);
      rolled[a] = (c - qAxes[a].s + qAxes[a].n) % qAxes[a].n;
      qPos[a] = rolled[a] % qAxes[a].w;
    }
    const index: number[] = [], rel: number[] = [];
    const qBias = inBias(qPos);
    const inWindow = qAxes.reduce((p, a) => p * a.w, 1);
    for (let j = 0; j < inWindow; j++) {
      let excluded = false, orig = 0, rr = 0;
      for (let a = k - 1, r = j; a >= 0; a--) { kPos[a] = r % qAxes[a].w; r = Math.floor(r / qAxes[a].w); }
      const kBias = inBias(kPos);
      for (let a = 0; a < k; a++) {
        const ax = qAxes[a];
        const kr = rolled[a] - qPos[a] + kPos[a];
        if (masked && regionOf(ax, kr) !== regionOf(ax, rolled[a])) excluded = true;
        orig = orig * ax.n + (kr + ax.s) % ax.n;
        rr += (qBias[a] - kBias[a] + ax.bw - 1) * radix[a];
      }
      // a masked pair has probability exactly 0: it is left out, so it gets no gradient either; causal
      // (one window, no shift): key token index above the query's
      if (excluded || (causal && orig > i)) continue;
      index.push(orig);
      rel.push(rr);
    }
    sets.push({ index: Int32Array.from(index), rel: Int32Array.from(rel) });
  }
  return sets;
}

/**
 * The vjp of attentionReferenceOf, recomputing its forward internals in the same working layout.
 * y = o Wp + bp, o[i, h] = sum_j p_j v_j, p = softmax_j(s), s_j = scale q.k_j + table[rel_j, h]:
 *   dWp = o^T g, dbp = sum g, do = g Wp^T;
 *   dv_j += p_j do, dp_j = do.v_j, ds_j = p_j (dp_j - sum_k p_k dp_k),
 *   dq += scale sum_j ds_j k_j, dk_j += scale ds_j q, dtable[rel_j, h] += ds_j;
 * then the q/k/v (or q and kv) projections backward to x, the context and their weights.
 */
export function attentionVjpOf({ inputs, params, attrs, axes, grad }: VjpCall): VjpResult {
  const { heads, qAxes, ctxOver, batchAxes, tokenAxes, d, dh, inner, layout, work } = workingLayout(attrs, axes);
  const x = { axes: work, data: padTo(relayout(inputs[0], layout).data, layout, work) };
  const g = padTo(relayout(grad, layout).data, layout, work);
  const nb = numelOf(batchAxes), nq = numelOf(tokenAxes);
  const bias = (leaf: string) => params.get(leaf);

  // forward projections, as in the reference
  let q: Float64Array, kv: Float64Array, qStride: number, kvStride: number, kOff: number, vOff: number, nk: number;
  let ctxRows: NamedTensor | null = null, dc = 0;
  if (ctxOver) {
    const ctx = inputs[1];
    dc = sizeIn(ctx.axes, 'c');
    const ctxTokens: AxisPair[] = ctxOver.map((n) => [n, sizeIn(ctx.axes, n)]);
    nk = numelOf(ctxTokens);
    ctxRows = relayout(ctx, [...batchAxes, ...ctxTokens, ['c', dc]]);
    q = project(x.data, nb * nq, d, params.get('q.weight')!, bias('q.bias'), inner);
    kv = project(ctxRows.data, nb * nk, dc, params.get('kv.weight')!, bias('kv.bias'), 2 * inner);
    qStride = inner; kvStride = 2 * inner; kOff = 0; vOff = inner;
  } else {
    nk = nq;
    q = kv = project(x.data, nb * nq, d, params.get('qkv.weight')!, bias('qkv.bias'), 3 * inner);
    qStride = kvStride = 3 * inner; kOff = inner; vOff = 2 * inner;
  }
  // with qk_norm, q and kv below are the normalised copies; the raw projections stay for its backward
  const raw = { q, kv };
  const parts = qkParts({ nq: nb * nq, nk: nb * nk }, { qStride, kvStride, kOff }, heads, dh);
  ({ q, kv } = withQkNorm(attrs, params, q, kv, parts, tokenAxes));
  // gradients of q and kv in the same buffers' layouts (one shared buffer for self-attention)
  const dq = new Float64Array(q.length);
  const dkv = ctxOver ? new Float64Array(kv.length) : dq;

  // output projection: do = g Wp^T (needs no o); dWp and dbp once o is known
  const wp = params.get('proj.weight')!;
  const dO = new Float64Array(nb * nq * inner);
  for (let r = 0; r < nb * nq; r++) {
    for (let e = 0; e < inner; e++) {
      let acc = 0;
      for (let f = 0; f < d; f++) acc += g[r * d + f] * wp[e * d + f];
      dO[r * inner + e] = acc;
    }
  }

  const sets = keySetsOf(qAxes, nq, nk, ctxOver !== null, attrs.causal === true);
  const table = bias('rel_bias');
  const dTable = table ? new Float64Array(table.length) : undefined;
  const o = new Float64Array(nb * nq * inner);
  const scale = 1 / Math.sqrt(dh);
  const maxKeys = sets.reduce((m, s) => Math.max(m, s.index.length), 0);
  const p = new Float64Array(maxKeys), dp = new Float64Array(maxKeys);

  const mask = keyMaskOf(attrs, inputs, batchAxes, ctxOver ? ctxOver.map((n) => [n, sizeIn(inputs[1].axes, n)]) : tokenAxes);
  for (let i = 0; i < nq; i++) {
    for (let b = 0; b < nb; b++) {
      const { index, rel } = maskedSet(sets[i], mask, b, nk);
      const keys = index.length;
      const qRow = (b * nq + i) * qStride;
      for (let h = 0; h < heads; h++) {
        // forward: the probabilities of this (query, head), then o
        probabilities(p, { q, qRow: qRow + h * dh, kv, kvRow0: b * nk, kvStride, kOff: kOff + h * dh, dh, scale, table, heads, h }, index, rel);
        const oRow = (b * nq + i) * inner + h * dh;
        let dot = 0; // sum_j p_j dp_j
        for (let j = 0; j < keys; j++) {
          const vRow = (b * nk + index[j]) * kvStride + vOff + h * dh;
          let dpj = 0;
          for (let e = 0; e < dh; e++) {
            o[oRow + e] += p[j] * kv[vRow + e];
            dpj += dO[oRow + e] * kv[vRow + e];
            dkv[vRow + e] += p[j] * dO[oRow + e]; // dv_j
          }
          dp[j] = dpj;
          dot += p[j] * dpj;
        }
        // softmax backward, then the scores' inputs
        for (let j = 0; j < keys; j++) {
          const ds = p[j] * (dp[j] - dot);
          if (dTable) dTable[rel[j] * heads + h] += ds;
          const kRow = (b * nk + index[j]) * kvStride + kOff + h * dh;
          for (let e = 0; e < dh; e++) {
            dq[qRow + h * dh + e] += scale * ds * kv[kRow + e];
            dkv[kRow + e] += scale * ds * q[qRow + h * dh + e];
          }
        }
      }
    }
  }

  const grads = new Map<string, Float64Array>();
  const proj = projectBack(o, nb * nq, inner, wp, g, d);
  grads.set('proj.weight', proj.dW);
  if (params.has('proj.bias')) grads.set('proj.bias', proj.dB);
  if (dTable) grads.set('rel_bias', dTable);
  // dq, dkv are gradients of the turned q, k: rope's transpose turns them back
  const rope = ropeOf(attrs);
  if (rope) {
    rotatePart(dq, parts.q, tokenAxes, rope, true);
    rotatePart(dkv, parts.k, tokenAxes, rope, true);
  }
  const qkNorm = qkNormOf(attrs);
  if (qkNorm) {
    // dq, dkv are gradients of the normalised q, k: back through the norm to the raw projections
    for (const which of ['q', 'k'] as const) {
      const r = normalizePartBack(which === 'q' ? raw.q : raw.kv, which === 'q' ? dq : dkv, parts[which], qkNorm, params.get(`${which}_norm.weight`)!);
      grads.set(`${which}_norm.weight`, r.dw);
      if (params.has(`${which}_norm.bias`)) grads.set(`${which}_norm.bias`, r.db);
    }
  }

  if (ctxOver) {
    const qb = projectBack(x.data, nb * nq, d, params.get('q.weight')!, dq, inner);
    const kb = projectBack(ctxRows!.data, nb * nk, dc, params.get('kv.weight')!, dkv, 2 * inner);
    grads.set('q.weight', qb.dW);
    grads.set('kv.weight', kb.dW);
    if (params.has('q.bias')) grads.set('q.bias', qb.dB);
    if (params.has('kv.bias')) grads.set('kv.bias', kb.dB);
    // the context was broadcast over x's batch axes it lacks: its gradient sums over them
    const dCtx = sumTo({ axes: ctxRows!.axes, data: kb.dSrc }, inputs[1].axes);
    return { inputs: [{ axes: layout, data: qb.dSrc }, dCtx, ...(mask ? [null] : [])], params: grads };
  }
  const qkvb = projectBack(x.data, nb * nq, d, params.get('qkv.weight')!, dq, 3 * inner);
  grads.set('qkv.weight', qkvb.dW);
  if (params.has('qkv.bias')) grads.set('qkv.bias', qkvb.dB);
  return { inputs: [{ axes: layout, data: cropTo(qkvb.dSrc, work, layout) }, ...(mask ? [null] : [])], params: grads };
}
