// attention(x, over, heads, context, context_over, window, shift, rel_bias, bias): multi-head
// attention whose tokens are the `over` axes; every other axis but c is a batch axis. With `window`,
// tokens attend within windows (Swin style, optionally shifted); with `context`, keys come from it.
import { attentionKernel, attentionTilingFor, type AttentionParams, type Axis } from '../../codegen/kernels/attention.ts';
import { attentionBackwardKernels, attentionBackwardScratch, attentionBackwardTilingFor, type AttentionBackwardParams } from '../../codegen/kernels/attention-backward.ts';
import { emitDense, viewOver, type GemmFusion, type LowerCall, type LowerVjpCall, type Value } from './lowering.ts';
import { emitLinearVjp } from './linear.ts';
import { contiguous, type View } from '../../codegen/kernels/view.ts';
import { fail } from '../ir/diagnostics.ts';
import { asAxes, asPerAxis } from '../ir/convert.ts';
import type { AxisPair } from '../ir/graph.ts';
import { numelOf, relayout, sizeIn, sumTo, type NamedTensor } from '../ir/named-tensor.ts';
import { didYouMean } from '../ir/suggest.ts';
import { formatAxes, numel, type TensorValue } from '../ir/values.ts';
import { product, requireAxes, resolvePerAxis, sizeOf } from './axes.ts';
import type { Json } from '../ir/json.ts';
import type { BoundArgs, ParamShape, Primitive, ReferenceCall, VjpCall, VjpResult } from './types.ts';

interface Windows {
  window: Map<string, number>;
  shift: Map<string, number>;
}

/** Window per `over` axis (clamped to the axis, with no shift there) and shift, both checked (VDM032). */
function windowsOf(a: BoundArgs, x: TensorValue, over: string[]): Windows | null {
  const shiftGiven = a.has('shift') && !(a.value('shift').kind === 'number' && a.number('shift') === 0);
  if (a.isNone('window')) {
    if (shiftGiven) fail('VDM032', a.span('shift'), 'shift needs a window');
    return null;
  }
  const window = resolvePerAxis(asPerAxis(a.value('window'), a.span('window'), a.what('window')), over, a.span('window'), a.what('window'));
  const shift = resolvePerAxis(a.perAxis('shift'), over, a.span('shift'), a.what('shift'), 0);
  for (const ax of over) {
    const n = sizeOf(x, ax, a.span('over'));
    let w = window.get(ax)!;
    if (w < 1) fail('VDM032', a.span('window'), `window ${ax}=${w} must be at least 1`);
    if (w >= n) {
      w = n;
      shift.set(ax, 0);
    }
    if (n % w !== 0) fail('VDM032', a.span('window'), `window ${ax}=${w} does not divide ${ax}=${n}`);
    const s = shift.get(ax)!;
    if (s < 0 || s >= w) fail('VDM032', a.span('shift'), `shift ${ax}=${s} must be at least 0 and less than the window ${ax}=${w}`);
    window.set(ax, w);
  }
  return { window, shift };
}

/** Key tokens of a cross-attention context; its batch axes must match x's by name and size. */
function contextOf(a: BoundArgs, x: TensorValue, over: string[]): { context: TensorValue; over: string[]; tokens: number; dc: number } | null {
  const context = a.optionalTensor('context');
  if (!context) {
    if (!a.isNone('context_over')) fail('VDM017', a.span('context_over'), 'context_over needs a context');
    return null;
  }
  const names = context.axes.map(([n]) => n);
  const ctxOver = a.isNone('context_over')
    ? names.filter((n) => n !== 'b' && n !== 'c')
    : asAxes(a.value('context_over'), a.span('context_over'), a.what('context_over'));
  requireAxes(context, ctxOver, a.span('context_over'));
  // Axes match by name: a key axis that is also one of x's batch axes would be read as both.
  const clash = ctxOver.find((n) => n === 'c' || (x.axes.some(([m]) => m === n) && !over.includes(n)));
  if (clash) {
    fail('VDM020', a.span('context_over'), `context token axis '${clash}' is also a ${clash === 'c' ? 'channel' : 'batch'} axis of x ${formatAxes(x.axes)}`,
      'give the context\'s token axis a name of its own (e.g. l for text)');
  }
  const dc = sizeOf(context, 'c', a.span('context'));
  for (const [n, s] of context.axes) {
    if (n === 'c' || ctxOver.includes(n)) continue;
    const xs = x.axes.find(([m]) => m === n);
    if (!xs || over.includes(n)) {
      fail('VDM020', a.span('context'), `context batch axis '${n}' is not a batch axis of x ${formatAxes(x.axes)}`,
        didYouMean(n, x.axes.map(([m]) => m)));
    }
    if (xs[1] !== s) fail('VDM021', a.span('context'), `axis '${n}' is ${xs[1]} in x but ${s} in the context`);
  }
  return { context, over: ctxOver, tokens: product(ctxOver.map((n) => sizeOf(context, n, a.span('context')))), dc };
}

export const attention: Primitive = {
  name: 'attention',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axes' },
    { name: 'heads', kind: 'size', default: 1 },
    { name: 'context', kind: 'tensor-or-none', default: null },
    { name: 'context_over', kind: 'axes-or-none', default: null },
    { name: 'window', kind: 'per-axis-or-none', default: null },
    { name: 'shift', kind: 'per-axis', default: 0 },
    { name: 'rel_bias', kind: 'bool', default: false },
    { name: 'bias', kind: 'bool', default: true },
  ],
  apply(a) {
    const { x, axes: over } = a.tensorAxes('x', 'over', true);
    const d = sizeOf(x, 'c', a.span('x'));
    const heads = a.size('heads');
    if (d % heads !== 0) fail('VDM030', a.span('heads'), `heads=${heads} does not divide c=${d}`);
    const relBias = a.bool('rel_bias');
    const bias = a.bool('bias');
    const windows = windowsOf(a, x, over);
    const ctx = contextOf(a, x, over);
    if (windows && ctx) fail('VDM032', a.span('window'), 'window cannot be combined with a context');
    // Query-minus-key offsets only mean something when keys live on the queries' grid.
    if (relBias && ctx) fail('VDM032', a.span('rel_bias'), 'rel_bias applies to self-attention only, not with a context', 'drop rel_bias, or attend over x itself');

    const queries = numel(x.axes) / d; // every query token in the batch
    const perQuery = windows ? product(windows.window.values()) : ctx ? ctx.tokens : product(over.map((n) => sizeOf(x, n, a.span('over'))));
    const params: ParamShape[] = [];
    const add = (leaf: string, shape: number[], init = 'default') => params.push({ leaf, shape, init });
    let macs = 0;
    if (ctx) {
      add('q.weight', [d, d]);
      if (bias) add('q.bias', [d], 'zeros');
      add('kv.weight', [ctx.dc, 2 * d]);
      if (bias) add('kv.bias', [2 * d], 'zeros');
      macs += queries * d * d + (numel(ctx.context.axes) / ctx.dc) * ctx.dc * 2 * d;
    } else {
      add('qkv.weight', [d, 3 * d]);
      if (bias) add('qkv.bias', [3 * d], 'zeros');
      macs += queries * d * 3 * d;
    }
    add('proj.weight', [d, d]);
    if (bias) add('proj.bias', [d], 'zeros');
    macs += 2 * queries * perQuery * d; // QK^T and AV
    macs += queries * d * d;
    if (relBias) {
      const extent = over.map((n) => windows ? windows.window.get(n)! : sizeOf(x, n, a.span('over')));
      add('rel_bias', [product(extent.map((w) => 2 * w - 1)), heads], 'zeros');
    }
    const attrs: Record<string, Json> = {
      over, heads, rel_bias: relBias, bias,
      window: windows ? Object.fromEntries(windows.window) : null,
      shift: windows ? Object.fromEntries(windows.shift) : null,
      context_over: ctx ? ctx.over : null,
    };
    return {
      inputs: ctx ? [x, ctx.context] : [x],
      attrs,
      outputs: [{ axes: x.axes, dtype: 'f32' }],
      params,
      macs,
    };
  },
  // every weight is [in, out]; biases and rel_bias are zeros-initialised, so theirs never matter
  fans: (_leaf, shape) => [shape[0], shape[shape.length - 1]],
  lower: lowerAttention,
  lowerVjp: lowerAttentionVjp,
  reference: attentionReferenceOf,
  vjp: attentionVjpOf,
};

/** A GEMM projecting `src` along c into `dst` (c of `dst` is `out` wide): weight [in, out], bias [out] if present. */
function emitProjection(call: LowerCall, src: Value, dst: Value, weight: string, bias: string, fusion?: GemmFusion): void {
  emitDense(call, { src, dst, weight: call.params.get(weight)!, bias: call.params.get(bias), axis: 'c', fusion });
}

/** View [...grid, heads, dh] of part `part` (q|k|v, each heads * dh wide) of the c-last rows of `v`. */
function headsView(v: Value, grid: readonly AxisPair[], heads: number, dh: number, part: number): View {
  const rows = viewOver(v, [...grid, ['c', sizeIn(v.axes, 'c')]]);
  return { shape: [...rows.shape.slice(0, -1), heads, dh], strides: [...rows.strides.slice(0, -1), dh, 1], offset: part * heads * dh };
}

/**
 * Three steps: a GEMM projecting x (and the context) into scratch rows [.., 3, heads, dh] (self) or
 * q [.., heads, dh] and kv [.., 2, heads, dh] (cross), one attention kernel over a grid of the batch
 * axes (node order) then the `over` axes (`over` order, so the bias table's radix follows it) into
 * scratch rows [.., heads, dh], and the output projection GEMM into the node's buffer. Every scratch
 * buffer holds the node's non-c axes in node order with c last.
 */
function lowerAttention(call: LowerCall): void {
  const { o } = emitCore(call);
  const f = call.gemm;
  emitProjection(call, o, call.out, 'proj.weight', 'proj.bias', f && { gate: f.gate, residual: f.residual });
}

/** The projections and the attention kernel (everything but the output projection). */
function emitCore(call: LowerCall) {
  const { attrs, node } = call;
  const x = call.inputs[0];
  const over = attrs.over as string[];
  const heads = Number(attrs.heads);
  const window = attrs.window as Record<string, number> | null;
  const shift = attrs.shift as Record<string, number> | null;
  const ctxOver = attrs.context_over as string[] | null;
  const d = sizeIn(node.axes, 'c'), dh = d / heads;
  const rowAxes = node.axes.filter(([n]) => n !== 'c');
  const scratchOver = (name: string, axes: readonly AxisPair[], c: number): Value => {
    const full: AxisPair[] = [...axes, ['c', c]];
    return { buffer: call.scratch(name, numelOf(full)), axes: full };
  };
  const batchAxes = rowAxes.filter(([n]) => !over.includes(n));
  const tokenAxes: AxisPair[] = over.map((n) => [n, sizeIn(node.axes, n)]);
  const gridAxes = [...batchAxes, ...tokenAxes];
  const grid: Axis[] = gridAxes.map(([name, size]) => ({ name, size }));

  const o = scratchOver('o', rowAxes, d);
  // a layer norm and modulate of x fused into the projection of x (call.gemm's prologue)
  const pro = call.gemm && { normalize: call.gemm.normalize, scale: call.gemm.scale, shift: call.gemm.shift };
  const oView = headsView(o, gridAxes, heads, dh, 0);
  const tiling = call.adapter ? attentionTilingFor(call.adapter.info, call.adapter.features.has('subgroups')) : undefined;
  const table = call.params.get('rel_bias');

  if (ctxOver) {
    const ctx = call.inputs[1];
    const ctxRows = ctx.axes.filter(([n]) => n !== 'c');
    const ctxTokens: AxisPair[] = ctxOver.map((n) => [n, sizeIn(ctx.axes, n)]);
    const q = scratchOver('q', rowAxes, d);
    const kv = scratchOver('kv', ctxRows, 2 * d);
    emitProjection(call, x, q, 'q.weight', 'q.bias', pro);
    emitProjection(call, ctx, kv, 'kv.weight', 'kv.bias');
    // k and v over [...batch axes of the grid, ...context tokens]: batch axes the context lacks read stride 0
    const kvGrid = [...batchAxes, ...ctxTokens];
    const params: AttentionParams = {
      grid, tokens: over, heads, headDim: dh, context: ctxTokens.map(([name, size]) => ({ name, size })),
      q: headsView(q, gridAxes, heads, dh, 0), k: headsView(kv, kvGrid, heads, dh, 0), v: headsView(kv, kvGrid, heads, dh, 1),
      o: oView, tiling,
    };
    call.emit(attentionKernel(params), [q.buffer, kv.buffer, kv.buffer, o.buffer]);
    return { o, params, heads, dh, gridAxes, kvGrid, q, kv, buffers: [q.buffer, kv.buffer, kv.buffer] };
  }
  const qkv = scratchOver('qkv', rowAxes, 3 * d);
  emitProjection(call, x, qkv, 'qkv.weight', 'qkv.bias', pro);
  const params: AttentionParams = {
    grid, tokens: over, heads, headDim: dh,
    q: headsView(qkv, gridAxes, heads, dh, 0), k: headsView(qkv, gridAxes, heads, dh, 1), v: headsView(qkv, gridAxes, heads, dh, 2),
    o: oView, window: window ?? undefined, shift: shift ?? undefined,
    relPosBias: table ? contiguous([product(tokenAxes.map(([n, size]) => 2 * (window?.[n] ?? size) - 1)), heads]) : undefined,
    tiling,
  };
  call.emit(attentionKernel(params), [qkv.buffer, qkv.buffer, qkv.buffer, ...(table ? [table] : []), o.buffer]);
  return { o, params, heads, dh, gridAxes, kvGrid: gridAxes, qkv, buffers: [qkv.buffer, qkv.buffer, qkv.buffer, ...(table ? [table] : [])] };
}

/**
 * The backward: the projections and the attention output are recomputed (scratch is not kept past
 * the node), then the output projection's backward gives d o, the fused attention backward
 * (recomputing scores, never storing them) gives dq, dk, dv into one packed gradient buffer laid
 * out like the projection, and the input projections' backward gives dx (and d context).
 */
function lowerAttentionVjp(call: LowerVjpCall): void {
  const core = emitCore(call);
  const { o, heads, dh, gridAxes, kvGrid } = core;
  const params = { ...core.params, backwardTiling: attentionBackwardTilingFor(call.adapter) };
  const d = sizeIn(call.node.axes, 'c');
  const rowAxes = call.node.axes.filter(([n]) => n !== 'c');
  const scratchOver = (name: string, axes: readonly AxisPair[], c: number): Value => {
    const full: AxisPair[] = [...axes, ['c', c]];
    return { buffer: call.scratch(name, numelOf(full)), axes: full };
  };
  const dO = scratchOver('do', rowAxes, d);
  emitLinearVjp(call, { x: o, g: call.grad, axis: 'c', weight: call.params.get('proj.weight')!, dx: dO,
    dw: call.paramGrads.get('proj.weight')!, db: call.paramGrads.get('proj.bias') });
  const table = call.paramGrads.get('rel_bias');
  const scratch = call.scratch('stats', attentionBackwardScratch(params));
  const tail = (p: AttentionBackwardParams, grads: { dQ: string; dK: string; dV: string; shared: boolean }) => {
    for (const spec of attentionBackwardKernels(p)) {
      const names = spec.bindings.map((b) => b.name);
      const by: Record<string, string> = {
        q: core.buffers[0], k: core.buffers[1], v: core.buffers[2], relPosBias: call.params.get('rel_bias') ?? '',
        dO: dO.buffer, scratch, dQ: grads.dQ, dK: grads.dK, dV: grads.dV, dKV: grads.dK, dRelPosBias: table ?? '',
      };
      call.emit(spec, names.map((n) => {
        if (!by[n]) throw new Error(`attention backward: no buffer for binding '${n}'`);
        return by[n];
      }));
    }
  };
  const dOView = headsView(dO, gridAxes, heads, dh, 0);
  if (core.kv) {
    const ctx = call.inputs[1];
    const ctxRows = ctx.axes.filter(([n]) => n !== 'c');
    const dq = scratchOver('dq', rowAxes, d);
    const dkv = scratchOver('dkv', ctxRows, 2 * d);
    tail({ ...params, dO: dOView, dQ: headsView(dq, gridAxes, heads, dh, 0), dK: headsView(dkv, kvGrid, heads, dh, 0),
      dV: headsView(dkv, kvGrid, heads, dh, 1), sharedKVGrad: true }, { dQ: dq.buffer, dK: dkv.buffer, dV: dkv.buffer, shared: true });
    emitLinearVjp(call, { x: call.inputs[0], g: dq, axis: 'c', weight: call.params.get('q.weight')!, dx: call.inputGrads[0],
      dw: call.paramGrads.get('q.weight')!, db: call.paramGrads.get('q.bias') });
    emitLinearVjp(call, { x: ctx, g: dkv, axis: 'c', weight: call.params.get('kv.weight')!, dx: call.inputGrads[1],
      dw: call.paramGrads.get('kv.weight')!, db: call.paramGrads.get('kv.bias') });
    return;
  }
  const dqkv = scratchOver('dqkv', rowAxes, 3 * d);
  tail({ ...params, dO: dOView, dQ: headsView(dqkv, gridAxes, heads, dh, 0), dK: headsView(dqkv, gridAxes, heads, dh, 1),
    dV: headsView(dqkv, gridAxes, heads, dh, 2), sharedKVGrad: true,
    dRelPosBias: table ? params.relPosBias : undefined }, { dQ: dqkv.buffer, dK: dqkv.buffer, dV: dqkv.buffer, shared: true });
  emitLinearVjp(call, { x: call.inputs[0], g: dqkv, axis: 'c', weight: call.params.get('qkv.weight')!, dx: call.inputGrads[0],
    dw: call.paramGrads.get('qkv.weight')!, db: call.paramGrads.get('qkv.bias') });
}

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

/** One token axis: n positions in windows of w, shifted by s (window w = n and s = 0 without windows). */
interface TokenAxis { n: number; w: number; s: number }

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
  const tokenAxes: AxisPair[] = over.map((n) => [n, sizeIn(axes, n)]);
  const d = sizeIn(axes, 'c');
  return {
    over, heads: Number(attrs.heads), d, batchAxes, tokenAxes,
    window: attrs.window as Record<string, number> | null,
    shift: attrs.shift as Record<string, number> | null,
    ctxOver: attrs.context_over as string[] | null,
    layout: [...batchAxes, ...tokenAxes, ['c', d]] as AxisPair[],
  };
}

/**
 * The node's value, following src/codegen/attention.ts: projected rows are [.., 3, heads, dh] (qkv) or
 * [.., 2, heads, dh] (kv), scores scaled by 1/sqrt(dh), windows over the grid rolled by -shift with
 * keys from other original regions excluded, and the relative-position table indexed by
 * query-minus-key window offsets with the first `over` axis most significant.
 */
function attentionReferenceOf({ inputs, params, attrs, axes }: ReferenceCall): NamedTensor {
  const { over, heads, window, shift, ctxOver, batchAxes, tokenAxes, d, layout } = workingLayout(attrs, axes);
  const x = relayout(inputs[0], layout);
  const nb = numelOf(batchAxes), nq = numelOf(tokenAxes), dh = d / heads;
  const bias = (leaf: string) => params.get(leaf);

  // q, k, v as [batch, tokens, heads * dh] row-major, each with its row length (3d, 2d or d) and offset
  let q: Float64Array, kv: Float64Array, qStride: number, kvStride: number, kOff: number, vOff: number, nk: number;
  if (ctxOver) {
    const ctx = inputs[1];
    const dc = sizeIn(ctx.axes, 'c');
    const ctxTokens: AxisPair[] = ctxOver.map((n) => [n, sizeIn(ctx.axes, n)]);
    nk = numelOf(ctxTokens);
    // a batch axis of x that the context lacks is broadcast (relayout gives it stride 0)
    const c = relayout(ctx, [...batchAxes, ...ctxTokens, ['c', dc]]);
    q = project(x.data, nb * nq, d, params.get('q.weight')!, bias('q.bias'), d);
    kv = project(c.data, nb * nk, dc, params.get('kv.weight')!, bias('kv.bias'), 2 * d);
    qStride = d; kvStride = 2 * d; kOff = 0; vOff = d;
  } else {
    nk = nq;
    q = kv = project(x.data, nb * nq, d, params.get('qkv.weight')!, bias('qkv.bias'), 3 * d);
    qStride = kvStride = 3 * d; kOff = d; vOff = 2 * d;
  }

  // Token axes for the window arithmetic; cross-attention has one window holding every context token.
  const qAxes: TokenAxis[] = tokenAxes.map(([n, size]) => ({ n: size, w: window?.[n] ?? size, s: shift?.[n] ?? 0 }));
  const table = bias('rel_bias');
  const keySets = keySetsOf(qAxes, nq, nk, ctxOver !== null);
  const scores = new Float64Array(nk);
  const o = new Float64Array(nb * nq * d);
  const scale = 1 / Math.sqrt(dh);

  for (let i = 0; i < nq; i++) {
    // the query's key set: original token indices (and bias rows) of the keys its window lets it see
    const { index: keyIndex, rel: keyRel } = keySets[i];
    const keys = keyIndex.length;
    for (let b = 0; b < nb; b++) {
      const qRow = (b * nq + i) * qStride;
      for (let h = 0; h < heads; h++) {
        probabilities(scores, { q, qRow: qRow + h * dh, kv, kvRow0: b * nk, kvStride, kOff: kOff + h * dh, dh, scale, table, heads, h }, keyIndex, keyRel);
        const oRow = (b * nq + i) * d + h * dh;
        for (let j = 0; j < keys; j++) {
          const vRow = (b * nk + keyIndex[j]) * kvStride + vOff + h * dh;
          for (let e = 0; e < dh; e++) o[oRow + e] += scores[j] * kv[vRow + e];
        }
      }
    }
  }
  return { axes: layout, data: project(o, nb * nq, d, params.get('proj.weight')!, bias('proj.bias'), d) };
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
 * Cross-attention: every context token.
 */
function keySetsOf(qAxes: readonly TokenAxis[], nq: number, nk: number, cross: boolean): { index: Int32Array; rel: Int32Array }[] {
  const k = qAxes.length;
  const masked = qAxes.some((a) => a.s > 0);
  const radix = qAxes.map((_, i) => qAxes.slice(i + 1).reduce((r, a) => r * (2 * a.w - 1), 1));
  const rolled = new Array<number>(k), qPos = new Array<number>(k), kPos = new Array<number>(k);
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
    const inWindow = qAxes.reduce((p, a) => p * a.w, 1);
    for (let j = 0; j < inWindow; j++) {
      let excluded = false, orig = 0, rr = 0;
      for (let a = k - 1, r = j; a >= 0; a--) { kPos[a] = r % qAxes[a].w; r = Math.floor(r / qAxes[a].w); }
      for (let a = 0; a < k; a++) {
        const ax = qAxes[a];
        const kr = rolled[a] - qPos[a] + kPos[a];
        if (masked && regionOf(ax, kr) !== regionOf(ax, rolled[a])) excluded = true;
        orig = orig * ax.n + (kr + ax.s) % ax.n;
        rr += (qPos[a] - kPos[a] + ax.w - 1) * radix[a];
      }
      // a masked pair has probability exactly 0: it is left out, so it gets no gradient either
      if (excluded) continue;
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
function attentionVjpOf({ inputs, params, attrs, axes, grad }: VjpCall): VjpResult {
  const { over, heads, window, shift, ctxOver, batchAxes, tokenAxes, d, layout } = workingLayout(attrs, axes);
  const x = relayout(inputs[0], layout);
  const g = relayout(grad, layout).data;
  const nb = numelOf(batchAxes), nq = numelOf(tokenAxes), dh = d / heads;
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
    q = project(x.data, nb * nq, d, params.get('q.weight')!, bias('q.bias'), d);
    kv = project(ctxRows.data, nb * nk, dc, params.get('kv.weight')!, bias('kv.bias'), 2 * d);
    qStride = d; kvStride = 2 * d; kOff = 0; vOff = d;
  } else {
    nk = nq;
    q = kv = project(x.data, nb * nq, d, params.get('qkv.weight')!, bias('qkv.bias'), 3 * d);
    qStride = kvStride = 3 * d; kOff = d; vOff = 2 * d;
  }
  // gradients of q and kv in the same buffers' layouts (one shared buffer for self-attention)
  const dq = new Float64Array(q.length);
  const dkv = ctxOver ? new Float64Array(kv.length) : dq;

  // output projection: do = g Wp^T (needs no o); dWp and dbp once o is known
  const wp = params.get('proj.weight')!;
  const dO = new Float64Array(nb * nq * d);
  for (let r = 0; r < nb * nq; r++) {
    for (let e = 0; e < d; e++) {
      let acc = 0;
      for (let f = 0; f < d; f++) acc += g[r * d + f] * wp[e * d + f];
      dO[r * d + e] = acc;
    }
  }

  const qAxes: TokenAxis[] = tokenAxes.map(([n, size]) => ({ n: size, w: window?.[n] ?? size, s: shift?.[n] ?? 0 }));
  const sets = keySetsOf(qAxes, nq, nk, ctxOver !== null);
  const table = bias('rel_bias');
  const dTable = table ? new Float64Array(table.length) : undefined;
  const o = new Float64Array(nb * nq * d);
  const scale = 1 / Math.sqrt(dh);
  const maxKeys = sets.reduce((m, s) => Math.max(m, s.index.length), 0);
  const p = new Float64Array(maxKeys), dp = new Float64Array(maxKeys);

  for (let i = 0; i < nq; i++) {
    const { index, rel } = sets[i];
    const keys = index.length;
    for (let b = 0; b < nb; b++) {
      const qRow = (b * nq + i) * qStride;
      for (let h = 0; h < heads; h++) {
        // forward: the probabilities of this (query, head), then o
        probabilities(p, { q, qRow: qRow + h * dh, kv, kvRow0: b * nk, kvStride, kOff: kOff + h * dh, dh, scale, table, heads, h }, index, rel);
        const oRow = (b * nq + i) * d + h * dh;
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
  const proj = projectBack(o, nb * nq, d, wp, g, d);
  grads.set('proj.weight', proj.dW);
  if (params.has('proj.bias')) grads.set('proj.bias', proj.dB);
  if (dTable) grads.set('rel_bias', dTable);

  if (ctxOver) {
    const qb = projectBack(x.data, nb * nq, d, params.get('q.weight')!, dq, d);
    const kb = projectBack(ctxRows!.data, nb * nk, dc, params.get('kv.weight')!, dkv, 2 * d);
    grads.set('q.weight', qb.dW);
    grads.set('kv.weight', kb.dW);
    if (params.has('q.bias')) grads.set('q.bias', qb.dB);
    if (params.has('kv.bias')) grads.set('kv.bias', kb.dB);
    // the context was broadcast over x's batch axes it lacks: its gradient sums over them
    const dCtx = sumTo({ axes: ctxRows!.axes, data: kb.dSrc }, inputs[1].axes);
    return { inputs: [{ axes: layout, data: qb.dSrc }, dCtx], params: grads };
  }
  const qkvb = projectBack(x.data, nb * nq, d, params.get('qkv.weight')!, dq, 3 * d);
  grads.set('qkv.weight', qkvb.dW);
  if (params.has('qkv.bias')) grads.set('qkv.bias', qkvb.dB);
  return { inputs: [{ axes: layout, data: qkvb.dSrc }], params: grads };
}
