// The float64 reference of the attention backward family, written from the definition.
import { extent, forEachIndex, type View } from './view.ts';
import { planAttention, type AttentionInputs } from './attention.ts';
import { type AttentionBackwardParams } from './attention-backward-plan.ts';

// ---------------------------------------------------------------- float64 reference

export interface AttentionBackwardResult {
  /** buffers of each view's extent, NaN where the view does not reach; stride-0 axes summed */
  dQ: Float64Array; dK: Float64Array; dV: Float64Array; dRelPosBias?: Float64Array;
  /** per query row (group * nq + row), as the scratch holds them: log-sum-exp and D = Σ_j P_ij dP_ij */
  lse: Float64Array; D: Float64Array;
  /** per output element, Σ |term| with |dP| and |D| taken as sums of |products|: the scale of its float32 rounding */
  magnitude: { dQ: Float64Array; dK: Float64Array; dV: Float64Array; dRelPosBias?: Float64Array };
}

/**
 * Float64 backward written straight from the definition: per query row the full softmax over the
 * keys it sees, then every term added into its gradient element. Views address elements through
 * full multi-indices (grid order, or [batch axes, context axes] for cross-attention k/v).
 */
export function attentionBackwardReference(p: AttentionBackwardParams, x: AttentionInputs, dO: ArrayLike<number>): AttentionBackwardResult {
  const plan = planAttention(p);
  const { heads, dh, scale, nq, nk } = plan;
  const names = p.grid.map((a) => a.name);
  const tokenAt = p.tokens.map((t) => names.indexOf(t)).sort((a, b) => a - b);
  const batchAt = names.map((_, i) => i).filter((i) => !tokenAt.includes(i));
  const axes = tokenAt.map((i, t) => ({ n: p.grid[i].size, w: p.window?.[names[i]] ?? p.grid[i].size, s: p.shift?.[names[i]] ?? 0, bw: plan.queryAxes[t].bw }));
  const ctx = p.context ?? [];
  const offsetOf = (v: View, idx: number[], head: number, d: number) =>
    idx.reduce((o, c, a) => o + c * v.strides[a], v.offset) + head * v.strides.at(-2)! + d * v.strides.at(-1)!;
  const zeroed = (v: View) => {
    const out = new Float64Array(extent(v)).fill(NaN);
    forEachIndex(v.shape, (idx) => { out[idx.reduce((o, c, a) => o + c * v.strides[a], v.offset)] = 0; });
    return out;
  };
  const dQ = zeroed(p.dQ), dK = zeroed(p.dK), dV = zeroed(p.dV);
  const mQ = zeroed(p.dQ), mK = zeroed(p.dK), mV = zeroed(p.dV);
  const dB = p.dRelPosBias ? zeroed(p.dRelPosBias) : undefined, mB = p.dRelPosBias ? zeroed(p.dRelPosBias) : undefined;
  const lseOut = new Float64Array(plan.groups * nq), dOut = new Float64Array(plan.groups * nq);
  const region = (a: { n: number; w: number; s: number }, c: number) => (a.s === 0 ? 0 : c < a.n - a.w ? 0 : c < a.n - a.s ? 1 : 2);
  const windows = axes.map((a) => a.n / a.w);
  const rel = (qp: number[], kp: number[]) => qp.reduce((r, c, a) => r * (2 * axes[a].bw - 1) + (c - kp[a] + axes[a].bw - 1), 0);
  /** in-window index -> coordinates in the bias window (relative_position_index[:N, :N]) */
  const biasPos = (i: number) => {
    const pos = axes.map(() => 0);
    for (let a = axes.length - 1; a >= 0; a--) { pos[a] = i % axes[a].bw; i = Math.floor(i / axes[a].bw); }
    return pos;
  };

  for (let g = 0; g < plan.groups; g++) {
    // group order: batch axes (grid order), head, window per token axis
    let rest = g;
    const winIdx = windows.map(() => 0);
    for (let a = axes.length - 1; a >= 0; a--) { winIdx[a] = rest % windows[a]; rest = Math.floor(rest / windows[a]); }
    const head = rest % heads; rest = Math.floor(rest / heads);
    const bIdx = batchAt.map(() => 0);
    for (let i = batchAt.length - 1; i >= 0; i--) { bIdx[i] = rest % p.grid[batchAt[i]].size; rest = Math.floor(rest / p.grid[batchAt[i]].size); }
    /** window position -> in-window coordinates, rolled coordinates, grid multi-index */
    const query = (i: number) => {
      const bpos = biasPos(i);
      const pos = axes.map(() => 0);
      for (let a = axes.length - 1; a >= 0; a--) { pos[a] = i % axes[a].w; i = Math.floor(i / axes[a].w); }
      const rolled = pos.map((c, a) => winIdx[a] * axes[a].w + c);
      const idx = names.map(() => 0);
      batchAt.forEach((gi, j) => { idx[gi] = bIdx[j]; });
      tokenAt.forEach((gi, a) => { idx[gi] = (rolled[a] + axes[a].s) % axes[a].n; });
      return { pos, bpos, rolled, idx };
    };
    const key = (j: number) => {
      if (!plan.cross) return query(j);
      const c = ctx.map(() => 0);
      for (let a = ctx.length - 1; a >= 0; a--) { c[a] = j % ctx[a].size; j = Math.floor(j / ctx[a].size); }
      return { pos: c, bpos: c, rolled: c, idx: [...bIdx, ...c] };
    };
    const keys = Array.from({ length: nk }, (_, j) => key(j));
    for (let i = 0; i < nq; i++) {
      const qi = query(i);
      const qAt = (d: number) => x.q[offsetOf(p.q, qi.idx, head, d)];
      const gAt = (d: number) => dO[offsetOf(p.dO, qi.idx, head, d)];
      const seen = keys.map((kj, j) => (!plan.masked || kj.rolled.every((c, a) => region(axes[a], c) === region(axes[a], qi.rolled[a])))
        && (!plan.causal || j <= i)
        && (!p.keyMask || x.keyMask![kj.idx.reduce((o, c, a) => o + c * p.keyMask!.strides[a], p.keyMask.offset)] !== 0));
      const s = keys.map((kj, j) => {
        if (!seen[j]) return -Infinity;
        let acc = 0;
        for (let d = 0; d < dh; d++) acc += qAt(d) * x.k[offsetOf(p.k, kj.idx, head, d)];
        acc *= scale;
        if (p.relPosBias) acc += x.relPosBias![p.relPosBias.offset + rel(qi.bpos, kj.bpos) * p.relPosBias.strides[0] + head * p.relPosBias.strides[1]];
        return acc;
      });
      const max = Math.max(...s);
      // every key masked: lse 0 (the kernels' convention), P and every gradient term 0
      const lse = max === -Infinity ? 0 : max + Math.log(s.reduce((t, sj) => t + Math.exp(sj - max), 0));
      const P = s.map((sj) => Math.exp(sj - lse));
      const dP = keys.map((kj) => { let t = 0; for (let d = 0; d < dh; d++) t += gAt(d) * x.v[offsetOf(p.v, kj.idx, head, d)]; return t; });
      const dPabs = keys.map((kj) => { let t = 0; for (let d = 0; d < dh; d++) t += Math.abs(gAt(d) * x.v[offsetOf(p.v, kj.idx, head, d)]); return t; });
      const D = P.reduce((t, pj, j) => t + pj * dP[j], 0);
      const Dabs = P.reduce((t, pj, j) => t + pj * dPabs[j], 0);
      lseOut[g * nq + i] = lse; dOut[g * nq + i] = D;
      keys.forEach((kj, j) => {
        if (!seen[j]) return;
        const ds = P[j] * (dP[j] - D), dsAbs = P[j] * (dPabs[j] + Dabs);
        for (let d = 0; d < dh; d++) {
          const kd = x.k[offsetOf(p.k, kj.idx, head, d)];
          const oq = offsetOf(p.dQ, qi.idx, head, d), ok = offsetOf(p.dK, kj.idx, head, d), ov = offsetOf(p.dV, kj.idx, head, d);
          dQ[oq] += scale * ds * kd; mQ[oq] += scale * dsAbs * Math.abs(kd);
          dK[ok] += scale * ds * qAt(d); mK[ok] += scale * dsAbs * Math.abs(qAt(d));
          dV[ov] += P[j] * gAt(d); mV[ov] += P[j] * Math.abs(gAt(d));
        }
        if (dB && p.dRelPosBias) {
          const ob = p.dRelPosBias.offset + rel(qi.bpos, kj.bpos) * p.dRelPosBias.strides[0] + head * p.dRelPosBias.strides[1];
          dB[ob] += ds; mB![ob] += dsAbs;
        }
      });
    }
  }
  return { dQ, dK, dV, ...(dB ? { dRelPosBias: dB } : {}), lse: lseOut, D: dOut,
    magnitude: { dQ: mQ, dK: mK, dV: mV, ...(mB ? { dRelPosBias: mB } : {}) } };
}
