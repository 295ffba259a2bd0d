// attention's float64 reference against a hand-computed case, a naive Swin-style implementation
// (roll, window partition, img_mask with -100, relative_position_index, roll back) and the kernel
// reference of src/codegen/attention.ts fed with projections computed here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attentionReference, type AttentionParams } from '../../src/codegen/kernels/attention.ts';
import { contiguous, permute, type View } from '../../src/codegen/kernels/view.ts';
import { evaluate, gaussian, initParams, prng } from '../../src/compiler/reference/evaluate.ts';
import type { AxisPair, Graph, GraphNode } from '../../src/compiler/ir/graph.ts';
import { numelOf, relayout, sizeIn, stridesOf, type NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import { graphOf, model, nodeAt } from './helpers.ts';

const attention = PRIMITIVES.get('attention')!;
const DIMS = 'b = 2, c = 8, t = 4, h = 6, w = 4'; // h != w everywhere

interface Case { g: Graph; node: GraphNode; x: NamedTensor; ctx?: NamedTensor; params: Map<string, Float64Array> }

/** The attention node `attn` of a one-node model, with N(0, 1) inputs and N(0, 0.25) parameters (biases too). */
function setup(call: string, opts: { dims?: string; head?: string; seed?: number } = {}): Case {
  const g = graphOf(model(`${opts.head ?? ''}  output out = ${call} as attn`, '', opts.dims ?? DIMS));
  const node = nodeAt(g, 'attn', 'attention');
  const normal = gaussian(prng(opts.seed ?? 7));
  const draw = (axes: readonly AxisPair[], sd = 1) => ({ axes, data: Float64Array.from({ length: numelOf(axes) }, () => sd * normal()) });
  const [x, ctx] = node.inputs.map((i) => draw(g.nodes[i].axes));
  const params = new Map(node.params.map((p) => [p.path.slice(node.path.length + 1),
    draw(p.shape.map((s, i) => [`p${i}`, s] as AxisPair), p.path.endsWith('.rel_bias') ? 1 : 0.5).data]));
  return { g, node, x, ctx, params };
}

const reference = (c: Case, x = c.x, ctx = c.ctx, params = c.params) =>
  attention.reference!({ inputs: ctx ? [x, ctx] : [x], params, attrs: c.node.attrs, axes: c.node.axes });

/** max |a - b| / max |b| over `expected`'s axes (a by name), which must not be all zeros. */
function relError(actual: NamedTensor, expected: NamedTensor): number {
  const a = relayout(actual, expected.axes);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.data.length; i++) {
    diff = Math.max(diff, Math.abs(a.data[i] - expected.data[i]));
    scale = Math.max(scale, Math.abs(expected.data[i]));
  }
  assert.ok(scale > 0.1, 'expected values are not trivially small');
  return diff / scale;
}

function close(actual: NamedTensor, expected: NamedTensor, what: string, tol = 1e-12) {
  const names = (t: NamedTensor) => t.axes.map(([n, s]) => `${n}=${s}`).sort().join(',');
  assert.is(names(actual), names(expected), `${what}: axes`);
  const err = relError(actual, expected);
  assert.ok(err < tol, `${what}: relative error ${err}`);
}

// ------------------------------------------------------------------ naive Swin-style implementation

/** Element of `t` at named coordinates. */
function get(t: NamedTensor, at: Record<string, number>): number {
  const s = stridesOf(t.axes);
  return t.data[t.axes.reduce((o, [n], i) => o + at[n] * s[i], 0)];
}

/** Every coordinate record of `axes`, row-major. */
function coords(axes: readonly AxisPair[]): Record<string, number>[] {
  let out: Record<string, number>[] = [{}];
  for (const [n, size] of axes) out = out.flatMap((c) => Array.from({ length: size }, (_, i) => ({ ...c, [n]: i })));
  return out;
}

/** row @ W + b for W [in, out] row-major. */
function linearRow(row: number[], w: Float64Array, b: Float64Array | undefined, out: number): number[] {
  return Array.from({ length: out }, (_, o) => row.reduce((acc, v, i) => acc + v * w[i * out + o], b ? b[o] : 0));
}

/**
 * Written from the Swin / PyTorch recipe, not from the kernel: qkv.reshape(.., 3, heads, dh); roll by
 * -shift; windows; logits q k^T * dh^-0.5 + table[relative_position_index] + img_mask (-100 between
 * different slices); softmax; roll back; proj. Cross-attention: kv.reshape(.., 2, heads, dh).
 */
function naive(c: Case, opts: { mask?: boolean; keep?: (q: Record<string, number>, k: Record<string, number>) => boolean } = {}): NamedTensor {
  const { node, x, ctx, params: P } = c;
  const over = node.attrs.over as string[];
  const heads = Number(node.attrs.heads);
  const win = (node.attrs.window ?? {}) as Record<string, number>;
  const sh = (node.attrs.shift ?? {}) as Record<string, number>;
  const d = sizeIn(node.axes, 'c');
  // dim_head: heads of their own width; q, k, v and o are inner = heads * dh wide
  const dh = node.attrs.dim_head != null ? Number(node.attrs.dim_head) : d / heads, inner = heads * dh;
  const grid = node.axes.filter(([n]) => n !== 'c');
  const n = (a: string) => sizeIn(node.axes, a);
  const w = (a: string) => win[a] ?? n(a);
  const s = (a: string) => sh[a] ?? 0;
  const key = (p: Record<string, number>) => grid.map(([a]) => p[a]).join(',');
  const feat = (t: NamedTensor, p: Record<string, number>) => Array.from({ length: sizeIn(t.axes, 'c') }, (_, i) => get(t, { ...p, c: i }));

  // qk_norm, as torch's LayerNorm / RMSNorm(dim_head, eps=1e-6) on each head of q and k
  const norm = node.attrs.qk_norm as string | undefined;
  const qkn = (which: string, u: number[]) => {
    if (!norm) return u;
    const w = P.get(`${which}_norm.weight`)!, b = P.get(`${which}_norm.bias`);
    return u.map((_, i) => {
      const hd = u.slice(Math.floor(i / dh) * dh, (Math.floor(i / dh) + 1) * dh);
      const mean = norm === 'layer' ? hd.reduce((a, e) => a + e, 0) / dh : 0;
      const ms = hd.reduce((a, e) => a + (e - mean) ** 2, 0) / dh;
      return ((u[i] - mean) / Math.sqrt(ms + 1e-6)) * w[i % dh] + (b ? b[i % dh] : 0);
    });
  };
  // rope as diffusers' apply_rotary_emb: cos, sin of [pos_a * 10000^(-2j / w_a)] repeat_interleave(2),
  // concatenated over the rope axes; x * cos + rotate_half(x) * sin, rotate_half (x0, x1) -> (-x1, x0)
  const rope = (node.attrs.rope ?? null) as [string, number][] | null;
  const roped = (u: number[], p: Record<string, number>) => {
    if (!rope) return u;
    const angles = rope.flatMap(([a, width]) => Array.from({ length: width }, (_, e) => p[a] * 10000 ** (-2 * Math.floor(e / 2) / width)));
    return u.map((val, i) => {
      const e = i % dh;
      const rot = e % 2 === 0 ? -u[i + 1] : u[i - 1];
      return val * Math.cos(angles[e]) + rot * Math.sin(angles[e]);
    });
  };
  // projections at original positions
  const q = new Map<string, number[]>(), k = new Map<string, number[]>(), v = new Map<string, number[]>();
  for (const p of coords(grid)) {
    if (ctx) q.set(key(p), qkn('q', linearRow(feat(x, p), P.get('q.weight')!, P.get('q.bias'), inner)));
    else {
      const qkv = linearRow(feat(x, p), P.get('qkv.weight')!, P.get('qkv.bias'), 3 * inner);
      q.set(key(p), roped(qkn('q', qkv.slice(0, inner)), p)); k.set(key(p), roped(qkn('k', qkv.slice(inner, 2 * inner)), p));
      v.set(key(p), qkv.slice(2 * inner));
    }
  }
  const ctxKeys = ctx ? coords(ctx.axes.filter(([a]) => a !== 'c')) : [];
  const kvOf = ctxKeys.map((p) => {
    const kv = linearRow(feat(ctx!, p), P.get('kv.weight')!, P.get('kv.bias'), 2 * inner);
    return [...qkn('k', kv.slice(0, inner)), ...kv.slice(inner)];
  });

  // torch.roll(x, -s): rolled[r] = x[(r + s) % n]; img_mask slices (0, -w), (-w, -s), (-s, None)
  const orig = (r: Record<string, number>) => ({ ...r, ...Object.fromEntries(over.map((a) => [a, (r[a] + s(a)) % n(a)])) });
  const slice = (a: string, r: number) => (s(a) === 0 ? 0 : r < n(a) - w(a) ? 0 : r < n(a) - s(a) ? 1 : 2);
  const relIndex = (qr: Record<string, number>, kr: Record<string, number>) =>
    over.reduce((idx, a) => idx * (2 * w(a) - 1) + ((qr[a] % w(a)) - (kr[a] % w(a)) + w(a) - 1), 0);
  const table = P.get('rel_bias');
  const out = { axes: node.axes, data: new Float64Array(numelOf(node.axes)) };
  const outStrides = stridesOf(node.axes);
  for (const qr of coords(grid)) {
    const qo = orig(qr);
    const o = new Array<number>(inner).fill(0);
    for (let h = 0; h < heads; h++) {
      const hs = (u: number[]) => u.slice(h * dh, (h + 1) * dh);
      const dot = (a: number[], b: number[]) => a.reduce((acc, ai, i) => acc + ai * b[i], 0);
      const logits: number[] = [], values: number[][] = [];
      if (ctx) {
        ctxKeys.forEach((kp, j) => {
          if (ctx.axes.some(([a]) => a !== 'c' && grid.some(([g]) => g === a) && kp[a] !== qr[a])) return; // other batch
          if (opts.keep && !opts.keep(qr, kp)) return;
          logits.push(dot(hs(q.get(key(qo))!), hs(kvOf[j].slice(0, inner))) / Math.sqrt(dh));
          values.push(hs(kvOf[j].slice(inner)));
        });
      } else {
        for (const kr of coords(grid)) {
          const sameWindow = grid.every(([a]) => (over.includes(a) ? Math.floor(kr[a] / w(a)) === Math.floor(qr[a] / w(a)) : kr[a] === qr[a]));
          if (!sameWindow) continue;
          // causal: the key's token index, row-major over `over` as listed, at most the query's
          const flat = (p: Record<string, number>) => over.reduce((i, a) => i * n(a) + p[a], 0);
          if (node.attrs.causal && flat(kr) > flat(qr)) continue;
          if (opts.keep && !opts.keep(qr, kr)) continue;
          const ko = orig(kr);
          let logit = dot(hs(q.get(key(qo))!), hs(k.get(key(ko))!)) * dh ** -0.5;
          if (table) logit += table[relIndex(qr, kr) * heads + h];
          if (opts.mask !== false && over.some((a) => slice(a, kr[a]) !== slice(a, qr[a]))) logit += -100;
          logits.push(logit);
          values.push(hs(v.get(key(ko))!));
        }
      }
      if (logits.length === 0) continue; // every key masked: o stays 0
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < dh; i++) o[h * dh + i] = values.reduce((acc, val, j) => acc + (e[j] / z) * val[i], 0);
    }
    // torch.roll(x, +s) puts rolled position r back at (r + s) % n
    const y = linearRow(o, P.get('proj.weight')!, P.get('proj.bias'), d);
    for (let i = 0; i < d; i++) out.data[node.axes.reduce((off, [a], ai) => off + (a === 'c' ? i : qo[a]) * outStrides[ai], 0)] = y[i];
  }
  return out;
}

// ------------------------------------------------------------------ through the codegen kernel reference

/**
 * The node computed with attentionReference: projections here, q/k/v packed as [..grid, 3, heads, dh]
 * (cross: q [..grid, heads, dh], kv [..batch, ..context, 2, heads, dh]) stored in `storage` order, o
 * contiguous, then proj. `gridOrder` is the order of the kernel's grid axes (token axes follow it).
 */
function viaKernel(c: Case, gridOrder: string[], opts: { storage?: string[]; tableTransposed?: boolean } = {}): NamedTensor {
  const { node, x, ctx, params: P } = c;
  const over = node.attrs.over as string[];
  const heads = Number(node.attrs.heads);
  const d = sizeIn(node.axes, 'c'), dh = d / heads;
  const grid = gridOrder.map((name) => ({ name, size: sizeIn(node.axes, name) }));
  const gridAxes: AxisPair[] = grid.map((a) => [a.name, a.size]);
  const parts = ctx ? 1 : 3;
  // buffer over `storage` (names of grid axes plus part, head, e), viewed as [..grid, part, head, e]
  const logical: AxisPair[] = [...gridAxes, ['part', parts], ['head', heads], ['e', dh]];
  const storage = opts.storage ?? logical.map(([n]) => n);
  const stored = contiguous(storage.map((n) => sizeIn(logical, n)));
  const packed = permute(stored, logical.map(([n]) => storage.indexOf(n)));
  const gn = grid.length;
  const part = (i: number): View => ({ shape: [...packed.shape.slice(0, gn), heads, dh],
    strides: [...packed.strides.slice(0, gn), ...packed.strides.slice(gn + 1)], offset: packed.offset + i * packed.strides[gn] });
  const buf = new Float64Array(numelOf(logical));
  const xr = relayout(x, [...gridAxes, ['c', d]]);
  for (let r = 0; r < numelOf(gridAxes); r++) {
    const row = Array.from(xr.data.subarray(r * d, (r + 1) * d));
    const proj = ctx ? linearRow(row, P.get('q.weight')!, P.get('q.bias'), d) : linearRow(row, P.get('qkv.weight')!, P.get('qkv.bias'), 3 * d);
    const idx = gridAxes.map(() => 0);
    for (let a = gn - 1, rem = r; a >= 0; a--) { idx[a] = rem % gridAxes[a][1]; rem = Math.floor(rem / gridAxes[a][1]); }
    const base = idx.reduce((o, v, a) => o + v * packed.strides[a], packed.offset);
    proj.forEach((val, j) => {
      buf[base + Math.floor(j / d) * packed.strides[gn] + Math.floor((j % d) / dh) * packed.strides[gn + 1] + (j % dh) * packed.strides[gn + 2]] = val;
    });
  }
  let p: AttentionParams = { grid, tokens: over, heads, headDim: dh, q: part(0), k: part(1), v: part(2),
    o: contiguous([...grid.map((a) => a.size), heads, dh]) };
  let kvBuf: Float64Array | undefined;
  if (ctx) {
    // kv [..context batch axes in grid order, ..context tokens, 2, heads, dh]; absent batch axes get stride 0
    const ctxOver = node.attrs.context_over as string[];
    const batch = gridOrder.filter((n) => !over.includes(n));
    const present = batch.filter((n) => ctx.axes.some(([a]) => a === n));
    const kvAxes: AxisPair[] = [...present, ...ctxOver].map((n) => [n, sizeIn(ctx.axes, n)]);
    const dc = sizeIn(ctx.axes, 'c');
    const kvView = contiguous([...kvAxes.map(([, s]) => s), 2, heads, dh]);
    const cr = relayout(ctx, [...kvAxes, ['c', dc]]);
    kvBuf = new Float64Array(numelOf(kvAxes) * 2 * d);
    for (let r = 0; r < numelOf(kvAxes); r++) {
      linearRow(Array.from(cr.data.subarray(r * dc, (r + 1) * dc)), P.get('kv.weight')!, P.get('kv.bias'), 2 * d).forEach((val, j) => { kvBuf![r * 2 * d + j] = val; });
    }
    const stride = (n: string) => (present.includes(n) ? kvView.strides[present.indexOf(n)] : 0);
    const np = present.length, nc = ctxOver.length;
    const kv = (i: number): View => ({ shape: [...batch.map((n) => sizeIn(node.axes, n)), ...kvAxes.slice(np).map(([, s]) => s), heads, dh],
      strides: [...batch.map(stride), ...kvView.strides.slice(np, np + nc), ...kvView.strides.slice(np + nc + 1)], offset: i * kvView.strides[np + nc] });
    p = { ...p, context: kvAxes.slice(np).map(([name, size]) => ({ name, size })), k: kv(0), v: kv(1) };
  } else {
    const attrs = node.attrs;
    if (attrs.window) p = { ...p, window: attrs.window as Record<string, number>, shift: attrs.shift as Record<string, number> };
  }
  const table = P.get('rel_bias');
  let tableData: Float64Array | undefined;
  if (table) {
    const rows = table.length / heads;
    // optionally stored [heads, rows] and viewed transposed, as the kernel suite does
    p = { ...p, relPosBias: opts.tableTransposed ? permute(contiguous([heads, rows]), [1, 0]) : contiguous([rows, heads]) };
    tableData = opts.tableTransposed ? Float64Array.from({ length: table.length }, (_, i) => table[(i % rows) * heads + Math.floor(i / rows)]) : table;
  }
  const { o } = attentionReference(p, { q: buf, k: ctx ? kvBuf! : buf, v: ctx ? kvBuf! : buf, relPosBias: tableData });
  const rows = numelOf(gridAxes);
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    linearRow(Array.from(o.subarray(r * d, (r + 1) * d)), P.get('proj.weight')!, P.get('proj.bias'), d).forEach((val, j) => { out[r * d + j] = val; });
  }
  return { axes: [...gridAxes, ['c', d]], data: out };
}

/** x (and the context) relayouted into scrambled axis orders must give the same values. */
function checkPermuted(c: Case, expected: NamedTensor, what: string) {
  // reversed, then rotated by two: [b, c, t, h, w] -> [t, c, b, w, h], [b, l, c] -> [b, c, l]
  const scramble = (t: NamedTensor) => { const r = [...t.axes].reverse(); return relayout(t, [...r.slice(2), ...r.slice(0, 2)]); };
  const x = scramble(c.x);
  assert.not.equal(x.axes.map(([n]) => n), c.x.axes.map(([n]) => n), 'x really is permuted');
  close(reference(c, x, c.ctx && scramble(c.ctx)), expected, `${what}, permuted inputs`);
}

// ------------------------------------------------------------------ cases

test('by hand: two tokens, one head, q = k = v = x, proj identity plus a bias', () => {
  const c = setup('attention(x, over: t)', { dims: 'b = 1, c = 2, t = 2, h = 1, w = 1' });
  // x[c, t]: token 0 = (1, 2), token 1 = (3, -1)
  c.x.data.set([1, 3, 2, -1]);
  c.params.set('qkv.weight', Float64Array.from([1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1]));
  c.params.set('qkv.bias', new Float64Array(6));
  c.params.set('proj.weight', Float64Array.from([1, 0, 0, 1]));
  c.params.set('proj.bias', Float64Array.from([0.5, -0.25]));
  const r2 = Math.SQRT2;
  // scores: <t0,t0> = 5, <t0,t1> = 1, <t1,t1> = 10, over sqrt(dh) = sqrt(2)
  const p0 = Math.exp(5 / r2) / (Math.exp(5 / r2) + Math.exp(1 / r2));
  const p1 = Math.exp(1 / r2) / (Math.exp(1 / r2) + Math.exp(10 / r2));
  const want = [p0 * 1 + (1 - p0) * 3 + 0.5, p1 * 1 + (1 - p1) * 3 + 0.5, p0 * 2 + (1 - p0) * -1 - 0.25, p1 * 2 + (1 - p1) * -1 - 0.25];
  close(reference(c), { axes: c.node.axes, data: Float64Array.from(want) }, 'hand');
});

test('full attention over (t, h, w), 2 heads: naive, kernel, permuted inputs and storage', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2)');
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w']), 'kernel');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w'], { storage: ['head', 'w', 'part', 'b', 'e', 'h', 't'] }), 'kernel, permuted q/k/v storage');
  checkPermuted(c, ref, 'full');
});

test('the head split matters: heads 2 and heads 1 differ on the same weights', () => {
  const two = setup('attention(x, over: (t, h, w), heads: 2)');
  const one = setup('attention(x, over: (t, h, w), heads: 1)');
  assert.ok(relError(reference(one, two.x, undefined, two.params), reference(two)) > 1e-3);
});

test('factorized: over t (h, w batch) and over (h, w) (t batch, between b and the tokens)', () => {
  for (const [call, what] of [['attention(x, over: t, heads: 4)', 'temporal'], ['attention(x, over: (h, w), heads: 2)', 'spatial']]) {
    const c = setup(call, { seed: 11 });
    const ref = reference(c);
    close(ref, naive(c), `${what} naive`);
    close(ref, viaKernel(c, ['b', 't', 'h', 'w']), `${what} kernel`);
    checkPermuted(c, ref, what);
  }
});

test('bias: false has no bias parameters and still agrees', () => {
  const c = setup('attention(x, over: (h, w), heads: 2, bias: false)');
  assert.equal([...c.params.keys()].sort(), ['proj.weight', 'qkv.weight']);
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w']), 'kernel');
});

test('windows that divide the grid, h != w, no shift', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 3, w: 2))');
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w']), 'kernel');
  checkPermuted(c, ref, 'windowed');
  // windows really restrict: not the full-attention value
  assert.ok(relError(ref, reference(setup('attention(x, over: (t, h, w), heads: 2)'))) > 1e-3);
});

test('shifted windows: the mask is exact and matters; a window as large as its axis drops its shift', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 3, w: 8), shift: (t: 1, h: 2, w: 3))');
  assert.equal(c.node.attrs.window, { t: 2, h: 3, w: 4 });
  assert.equal(c.node.attrs.shift, { t: 1, h: 2, w: 0 });
  const ref = reference(c);
  close(ref, naive(c), 'naive (Swin -100 mask)');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w']), 'kernel');
  checkPermuted(c, ref, 'shifted');
  assert.ok(relError(ref, naive(c, { mask: false })) > 1e-3, 'without the mask the boundary windows differ');
  const unshifted = setup('attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 3, w: 4))');
  assert.ok(relError(ref, reference(unshifted)) > 1e-3, 'the shift changes the result');
});

test('rel_bias with random table values: shifted windows, and full temporal attention', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 3, w: 2), shift: (t: 1, h: 1, w: 1), rel_bias: true)');
  assert.is(c.params.get('rel_bias')!.length, 3 * 5 * 3 * 2);
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w']), 'kernel');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w'], { tableTransposed: true }), 'kernel, table stored transposed');
  checkPermuted(c, ref, 'rel_bias');
  const noTable = new Map(c.params);
  noTable.delete('rel_bias');
  assert.ok(relError(reference(c, c.x, undefined, noTable), ref) > 1e-3, 'the table changes the result');

  const t = setup('attention(x, over: t, heads: 2, rel_bias: true)', { dims: 'b = 2, c = 8, t = 5, h = 3, w = 2' });
  assert.is(t.params.get('rel_bias')!.length, 9 * 2);
  const tref = reference(t);
  close(tref, naive(t), 'temporal naive');
  close(tref, viaKernel(t, ['b', 't', 'h', 'w']), 'temporal kernel');
});

test('rel_bias table rows follow the `over` order, first axis most significant', () => {
  const c = setup('attention(x, over: (w, h), heads: 2, window: (h: 3, w: 2), rel_bias: true)');
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  // the kernel's token axes follow its grid, so the grid lists w before h
  close(ref, viaKernel(c, ['b', 't', 'w', 'h']), 'kernel, grid in over order');
  assert.ok(relError(viaKernel(c, ['b', 't', 'h', 'w']), ref) > 1e-3, 'the node order would index another row');
  checkPermuted(c, ref, 'over (w, h)');
});

const TEXT = '  input txt : text[b, l = 5, c = 6]\n';

test('cross-attention to a context of another length and channel size', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2, context: txt)', { head: TEXT });
  assert.equal(c.params.get('kv.weight')!.length, 6 * 16);
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w']), 'kernel');
  checkPermuted(c, ref, 'cross');
});

test('spatial cross-attention: t is a batch axis the context lacks (broadcast)', () => {
  const c = setup('attention(x, over: (h, w), heads: 4, context: txt)', { head: TEXT, seed: 3 });
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  close(ref, viaKernel(c, ['b', 't', 'h', 'w']), 'kernel');
  close(ref, viaKernel(c, ['t', 'b', 'w', 'h']), 'kernel, another grid order');
  checkPermuted(c, ref, 'broadcast cross');
});

test('qkv_bias and out_bias apart from bias: parameters and values (self and cross)', () => {
  const leaves = (c: Case) => [...c.params.keys()].sort();
  const self = setup('attention(x, over: (t, h, w), heads: 2, qkv_bias: true, out_bias: false)');
  assert.equal(leaves(self), ['proj.weight', 'qkv.bias', 'qkv.weight']);
  close(reference(self), naive(self), 'qkv bias only');
  // bias: false with out_bias: true keeps the output bias only
  const out = setup('attention(x, over: (h, w), heads: 2, bias: false, out_bias: true)');
  assert.equal(leaves(out), ['proj.bias', 'proj.weight', 'qkv.weight']);
  close(reference(out), naive(out), 'out bias only');
  const cross = setup('attention(x, over: (h, w), heads: 2, context: txt, qkv_bias: false)', { head: TEXT });
  assert.equal(leaves(cross), ['kv.weight', 'proj.bias', 'proj.weight', 'q.weight']);
  close(reference(cross), naive(cross), 'cross, out bias only');
  // the bias really enters: dropping it from the parameters changes the value
  const noBias = new Map(self.params);
  noBias.set('qkv.bias', new Float64Array(noBias.get('qkv.bias')!.length));
  assert.ok(relError(reference(self, self.x, undefined, noBias), reference(self)) > 1e-3);
  // unset, both follow bias: no new attributes
  assert.not.ok('qkv_bias' in setup('attention(x, over: t, heads: 2)').node.attrs);
});

test('dim_head: heads of their own width, qkv [c, 3 heads dh], proj [heads dh, c]', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 3, dim_head: 5)');
  assert.is(c.params.get('qkv.weight')!.length, 8 * 3 * 15);
  assert.is(c.params.get('qkv.bias')!.length, 3 * 15);
  assert.is(c.params.get('proj.weight')!.length, 15 * 8);
  const ref = reference(c);
  close(ref, naive(c), 'naive');
  checkPermuted(c, ref, 'dim_head');
  const w = setup('attention(x, over: (h, w), heads: 2, dim_head: 3, window: (h: 3, w: 2), shift: (h: 1, w: 1), rel_bias: true)');
  close(reference(w), naive(w), 'dim_head, shifted windows');
  const x = setup('attention(x, over: (t, h, w), heads: 2, dim_head: 6, context: txt, out_bias: false)', { head: TEXT });
  assert.is(x.params.get('kv.weight')!.length, 6 * 24);
  close(reference(x), naive(x), 'dim_head, cross');
  // dim_head = c / heads is the default layout exactly
  const same = setup('attention(x, over: (t, h, w), heads: 2, dim_head: 4)');
  close(reference(same), reference(setup('attention(x, over: (t, h, w), heads: 2)')), 'dim_head c / heads');
});

test('qk_norm "layer" and "rms": per-head norms of q and k with [dim_head] affine parameters', () => {
  const leaves = (c: Case) => [...c.params.keys()].filter((l) => l.includes('_norm')).sort();
  const layer = setup('attention(x, over: (t, h, w), heads: 2, qk_norm: "layer")');
  assert.equal(leaves(layer), ['k_norm.bias', 'k_norm.weight', 'q_norm.bias', 'q_norm.weight']);
  assert.is(layer.params.get('q_norm.weight')!.length, 4);
  const ref = reference(layer);
  close(ref, naive(layer), 'layer');
  checkPermuted(layer, ref, 'qk_norm layer');
  // the norm matters: not the value without it
  assert.ok(relError(ref, reference(setup('attention(x, over: (t, h, w), heads: 2)'), layer.x, undefined, layer.params)) > 1e-3);
  // each parameter enters, q's and k's apart; except k_norm.bias: one vector added to every key
  // shifts each query's scores by one constant, which the softmax removes
  const moved = (leaf: string) => {
    const other = new Map(layer.params);
    other.set(leaf, other.get(leaf)!.map((v, i) => v + 0.5 + 0.25 * i));
    return relError(reference(layer, layer.x, undefined, other), ref);
  };
  for (const leaf of ['q_norm.weight', 'k_norm.weight', 'q_norm.bias']) assert.ok(moved(leaf) > 1e-4, leaf);
  assert.ok(moved('k_norm.bias') < 1e-12, 'k_norm.bias cancels in the softmax');
  const rms = setup('attention(x, over: (h, w), heads: 3, dim_head: 4, qk_norm: "rms", window: (h: 3, w: 2), shift: (h: 1, w: 1))');
  assert.equal(leaves(rms), ['k_norm.weight', 'q_norm.weight']);
  close(reference(rms), naive(rms), 'rms, dim_head, shifted windows');
  const cross = setup('attention(x, over: (h, w), heads: 2, qk_norm: "layer", context: txt)', { head: TEXT });
  close(reference(cross), naive(cross), 'layer, cross');
});

test('rope: 3D over (t, h, w) split 4 / 6 / 6 (dim_head 16), 2D, and 1D over t after qk_norm', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2, dim_head: 16, rope: (t, h, w))');
  assert.equal(c.node.attrs.rope, [['t', 4], ['h', 6], ['w', 6]]);
  assert.is(c.node.params.length, 4, 'rope has no parameters');
  const ref = reference(c);
  close(ref, naive(c), '3D');
  checkPermuted(c, ref, 'rope 3D');
  assert.ok(relError(ref, reference(setup('attention(x, over: (t, h, w), heads: 2, dim_head: 16)'), c.x, undefined, c.params)) > 1e-3, 'rope matters');
  const t = setup('attention(x, over: t, heads: 2, rope: t, qk_norm: "rms")', { seed: 5 });
  close(reference(t), naive(t), '1D, after qk_norm');
  const two = setup('attention(x, over: (w, h), heads: 1, dim_head: 8, rope: (h, w))', { seed: 3 });
  assert.equal(two.node.attrs.rope, [['h', 4], ['w', 4]]);
  close(reference(two), naive(two), '2D, over (w, h)');
});

test('causal: keys at the query\'s token index and before, row-major over `over` as listed', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2, causal: true)');
  assert.is(c.node.attrs.causal, true);
  const ref = reference(c);
  close(ref, naive(c), 'causal (t, h, w)');
  checkPermuted(c, ref, 'causal');
  assert.ok(relError(ref, reference(setup('attention(x, over: (t, h, w), heads: 2)'), c.x, undefined, c.params)) > 1e-3, 'the mask matters');
  // the order of `over` is the causal order: (w, h) differs from (h, w)
  const wh = setup('attention(x, over: (w, h), heads: 2, causal: true, rel_bias: true, rope: (h, w))', { seed: 4 });
  close(reference(wh), naive(wh), 'causal (w, h), rel_bias, rope');
  const order = (over: string) => setup(`attention(x, over: ${over}, heads: 2, causal: true)`, { seed: 4 });
  const [a, b] = [order('(w, h)'), order('(h, w)')];
  assert.ok(relError(reference(b, a.x, undefined, a.params), reference(a)) > 1e-3);
  assert.not.ok('causal' in setup('attention(x, over: t, heads: 2, causal: false)').node.attrs);
});

test('evaluate: the graph with initParams gives the reference value', () => {
  const c = setup('attention(x, over: (t, h, w), heads: 2, window: (t: 2, h: 3, w: 2), shift: (t: 1, h: 1, w: 1), rel_bias: true)');
  const params = initParams(c.g, 5);
  const own = new Map(c.node.params.map((p) => [p.path.slice(c.node.path.length + 1), params.get(p.path)!]));
  const out = evaluate(c.g, new Map([['x', c.x]]), params).outputs.get('out')!;
  assert.equal(out.axes, c.node.axes);
  close(out, naive({ ...c, params: own }), 'evaluate vs naive');
});

test('fans: [in, out] of the [in, out] weights', () => {
  const c = setup('attention(x, over: (h, w), heads: 2, context: txt, rel_bias: false)', { head: TEXT });
  const fans = Object.fromEntries(c.node.params.map((p) => { const leaf = p.path.slice(c.node.path.length + 1); return [leaf, attention.fans!(leaf, p.shape)]; }));
  assert.equal(fans['q.weight'], [8, 8]);
  assert.equal(fans['kv.weight'], [6, 16]);
  assert.equal(fans['proj.weight'], [8, 8]);
  assert.equal(attention.fans!('qkv.weight', [8, 24]), [8, 24]);
});

test('key_mask: masked keys get probability 0 (self and cross, a batch axis broadcast); a fully masked row gives 0', () => {
  const maskOf = (axes: AxisPair[], keep: (p: Record<string, number>) => boolean): NamedTensor =>
    ({ axes, data: Float64Array.from(coords(axes), (p) => (keep(p) ? (p.t ?? p.l ?? 0) % 2 ? -0.5 : 2 : 0)) });
  const keyMask = (c: Case, m: NamedTensor) => attention.reference!({ inputs: c.ctx ? [c.x, c.ctx, m] : [c.x, m], params: c.params, attrs: c.node.attrs, axes: c.node.axes });
  // self-attention over (t, h, w): sample 0 keeps keys with (t + h + w) % 3 != 0, sample 1 none at (t, h) = (0, 0)
  // (setup reads the mask input as a context: dropped here)
  const self = { ...setup('attention(x, over: (t, h, w), heads: 2, rel_bias: true, key_mask: mean(x, over: c))'), ctx: undefined };
  assert.is(self.node.attrs.key_mask, true);
  const keepSelf = (p: Record<string, number>) => (p.b === 0 ? (p.t + p.h + p.w) % 3 !== 0 : p.t + p.h !== 0);
  const ms = maskOf([['b', 2], ['t', 4], ['h', 6], ['w', 4]], keepSelf);
  const got = keyMask(self, ms);
  close(got, naive(self, { keep: (q, k) => keepSelf({ ...k, b: q.b }) }), 'self, masked');
  assert.ok(relError(got, reference(self)) > 1e-3, 'the mask matters');
  // cross-attention to a caption [b, l]: sample 1 has every token masked, so its rows give exactly 0 (then proj's bias)
  const head = '  input txt : text[b, l=5, c=6]\n';
  const cross = setup('attention(x, over: (h, w), heads: 2, context: txt, key_mask: mean(txt, over: c))', { head });
  const keepCross = (p: Record<string, number>) => p.b === 0 && p.l !== 1 && p.l !== 4;
  const mc = maskOf([['b', 2], ['l', 5]], keepCross);
  const crossGot = keyMask(cross, mc);
  close(crossGot, naive(cross, { keep: (_q, k) => keepCross(k) }), 'cross, masked');
  const bias = cross.params.get('proj.bias')!;
  const at = relayout(crossGot, [['b', 2], ['t', 4], ['h', 6], ['w', 4], ['c', 8]]).data;
  for (let i = numelOf([['t', 4], ['h', 6], ['w', 4], ['c', 8]]); i < at.length; i++) assert.ok(Math.abs(at[i] - bias[i % 8]) < 1e-12, 'fully masked: proj(0)');
  // a mask without b is broadcast over the batch
  const bc = { ...setup('attention(x, over: t, heads: 2, key_mask: mean(x, over: (b, c, h, w)))'), ctx: undefined };
  const keepT = (p: Record<string, number>) => p.t !== 2;
  close(keyMask(bc, maskOf([['t', 4]], keepT)), naive(bc, { keep: (_q, k) => keepT(k) }), 'broadcast over b, h, w');
});

test.run();
