// attention(x, over, heads, context, context_over, window, shift, rel_bias, bias, pad, qkv_bias,
// out_bias, dim_head, qk_norm, rope, causal, key_mask): multi-head attention whose tokens are the `over` axes;
// every other axis but c is a batch axis. With `window`, tokens attend within windows (Swin style,
// optionally shifted, with `pad` padded to a multiple of the window as Video Swin does); with
// `context`, keys come from it. qk_norm and rope (attention-options.ts) act on q and k between the
// projection and the fused kernel; causal and key_mask mask inside it. The float64 reference and the backward
// rule are in attention-reference.ts.
import { attentionKernel, attentionTilingFor, type AttentionParams, type Axis } from '../../codegen/kernels/attention.ts';
import { attentionBackwardKernels, attentionBackwardScratch, attentionBackwardTilingFor, type AttentionBackwardParams } from '../../codegen/kernels/attention-backward.ts';
import { emitCrop, emitDense, emitPad, emitZeros, viewOver, type GemmFusion, type LowerCall, type LowerVjpCall, type Value } from './lowering.ts';
import { attentionReferenceOf, attentionVjpOf } from './attention-reference.ts';
import { emitLinearVjp } from './linear.ts';
import { emitQkNorm, emitQkNormVjp, emitRope, QK_NORMS, qkNormOf, qkNormParams, ropeOf, ropeWidths, type NormSite } from './attention-options.ts';
import { contiguous, type View } from '../../codegen/kernels/view.ts';
import { fail } from '../ir/diagnostics.ts';
import { asAxes, asPerAxis } from '../ir/convert.ts';
import type { AxisPair } from '../ir/graph.ts';
import { numelOf, sizeIn } from '../ir/named-tensor.ts';
import { didYouMean } from '../ir/suggest.ts';
import { formatAxes, numel, type TensorValue } from '../ir/values.ts';
import { product, requireAxes, resolvePerAxis, sizeOf } from './axes.ts';
import type { Json } from '../ir/json.ts';
import type { BoundArgs, ParamShape, Primitive } from './types.ts';

interface Windows {
  window: Map<string, number>;
  shift: Map<string, number>;
  /** pad: true: the window as given (the bias table's), and each `over` axis padded to a multiple of the window */
  configured?: Map<string, number>;
  padded?: Map<string, number>;
}

/**
 * Window per `over` axis (clamped to an axis no longer than it, with no shift there: Video Swin's
 * get_window_size) and shift, both checked (VDM032). Without `pad` every window must divide its
 * axis; with it, the axis is padded after its end up to a multiple of the window.
 */
function windowsOf(a: BoundArgs, x: TensorValue, over: string[]): Windows | null {
  const shiftGiven = a.has('shift') && !(a.value('shift').kind === 'number' && a.number('shift') === 0);
  const pad = a.bool('pad');
  if (a.isNone('window')) {
    if (shiftGiven) fail('VDM032', a.span('shift'), 'shift needs a window');
    if (pad) fail('VDM032', a.span('pad'), 'pad needs a window', 'give a window, or drop pad');
    return null;
  }
  const window = resolvePerAxis(asPerAxis(a.value('window'), a.span('window'), a.what('window')), over, a.span('window'), a.what('window'));
  const shift = resolvePerAxis(a.perAxis('shift'), over, a.span('shift'), a.what('shift'), 0);
  const configured = new Map(window), padded = new Map<string, number>();
  for (const ax of over) {
    const n = sizeOf(x, ax, a.span('over'));
    let w = window.get(ax)!;
    if (w < 1) fail('VDM032', a.span('window'), `window ${ax}=${w} must be at least 1`);
    if (w >= n) {
      w = n;
      shift.set(ax, 0);
    }
    if (!pad && n % w !== 0) {
      fail('VDM032', a.span('window'), `window ${ax}=${w} does not divide ${ax}=${n}`, 'add `pad: true` to pad the axis to a multiple of the window (Video Swin), or change the window');
    }
    const s = shift.get(ax)!;
    if (s < 0 || s >= w) fail('VDM032', a.span('shift'), `shift ${ax}=${s} must be at least 0 and less than the window ${ax}=${w}`);
    window.set(ax, w);
    padded.set(ax, Math.ceil(n / w) * w);
  }
  return pad ? { window, shift, configured, padded } : { window, shift };
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

/** rope: [axis, width] per axis, each one of `over`, self-attention without windows only (VDM038). */
function ropeAttr(a: BoundArgs, over: string[], dh: number, windowed: boolean, cross: boolean): Json {
  const axes = asAxes(a.value('rope'), a.span('rope'), a.what('rope'));
  const span = a.span('rope');
  if (cross) fail('VDM038', span, 'rope applies to self-attention only, not with a context', 'drop rope, or attend over x itself');
  if (windowed) fail('VDM038', span, 'rope cannot be combined with windows', 'drop rope, or the window');
  for (const [i, ax] of axes.entries()) {
    if (!over.includes(ax)) fail('VDM038', span, `rope axis '${ax}' is not one of the token axes (${over.join(', ')})`, didYouMean(ax, over) ?? 'give rope axes from `over`');
    if (axes.indexOf(ax) !== i) fail('VDM038', span, `rope lists axis '${ax}' twice`);
  }
  const widths = ropeWidths(axes, dh, span);
  return axes.map((ax, i) => [ax, widths[i]]);
}

/**
 * key_mask (VDM044): f32 over every key token axis (`over`, or the context's token axes) plus any of
 * x's batch axes (one it lacks is broadcast); no c. Nonzero keeps a key.
 */
function keyMaskCheck(a: BoundArgs, m: TensorValue, x: TensorValue, keys: TensorValue, keyAxes: string[], over: string[], windowed: boolean): void {
  const span = a.span('key_mask');
  if (windowed) fail('VDM044', span, 'key_mask cannot be combined with windows', 'drop key_mask, or the window');
  if (m.dtype !== 'f32') fail('VDM044', span, 'key_mask must be a float tensor (nonzero keeps a key), not integer ids', 'pass a float mask, 1 = keep, 0 = masked');
  const batch = x.axes.filter(([n]) => n !== 'c' && !over.includes(n)).map(([n]) => n);
  for (const [n, s] of m.axes) {
    const kn = keyAxes.includes(n) ? sizeIn(keys.axes, n) : batch.includes(n) ? sizeIn(x.axes, n) : null;
    if (n === 'c') fail('VDM044', span, 'key_mask has a channel axis c', 'a mask holds one value per key: drop c, e.g. mean(m, over: c)');
    if (kn === null) {
      fail('VDM044', span, `key_mask axis '${n}' is neither a key token axis (${keyAxes.join(', ')}) nor a batch axis of x ${formatAxes(x.axes)}`,
        didYouMean(n, [...keyAxes, ...batch]) ?? 'give the mask the key token axes, and optionally batch axes of x, e.g. [b, l] for a caption');
    }
    if (kn !== s) {
      fail('VDM044', span, `key_mask axis '${n}' is ${s}, but ${kn} in the ${keyAxes.includes(n) ? 'keys' : 'x'}`, `give the mask one value per ${keyAxes.includes(n) ? 'key' : 'batch entry'}: ${n}=${kn}`);
    }
  }
  const missing = keyAxes.filter((n) => !m.axes.some(([k]) => k === n));
  if (missing.length) fail('VDM044', span, `key_mask lacks the key token axis '${missing[0]}'`, `give the mask every key token axis (${keyAxes.join(', ')})`);
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
    { name: 'pad', kind: 'bool', default: false },
    { name: 'qkv_bias', kind: 'bool', default: { computed: 'bias' } },
    { name: 'out_bias', kind: 'bool', default: { computed: 'bias' } },
    { name: 'dim_head', kind: 'size', default: { computed: 'c / heads' } },
    { name: 'qk_norm', kind: 'string', default: 'none', choices: QK_NORMS },
    { name: 'rope', kind: 'axes-or-none', default: null },
    { name: 'causal', kind: 'bool', default: false },
    { name: 'key_mask', kind: 'tensor-or-none', default: null },
  ],
  apply(a) {
    const { x, axes: over } = a.tensorAxes('x', 'over', true);
    const d = sizeOf(x, 'c', a.span('x'));
    const heads = a.size('heads');
    // dim_head (diffusers' attention_head_dim): heads of their own width, inner = heads * dim_head
    const dimHead = a.has('dim_head') ? a.size('dim_head') : null;
    if (dimHead === null && d % heads !== 0) {
      fail('VDM030', a.span('heads'), `heads=${heads} does not divide c=${d}`, `give heads a divisor of ${d}, or the head width with dim_head:`);
    }
    const inner = dimHead === null ? d : heads * dimHead;
    const relBias = a.bool('rel_bias');
    const bias = a.bool('bias');
    // bias: sets both; qkv_bias (the q/k/v or q and kv projections) and out_bias (proj) override it
    const qkvBias = a.has('qkv_bias') ? a.bool('qkv_bias') : bias;
    const outBias = a.has('out_bias') ? a.bool('out_bias') : bias;
    const qkNorm = a.string('qk_norm') as (typeof QK_NORMS)[number];
    const windows = windowsOf(a, x, over);
    const ctx = contextOf(a, x, over);
    if (windows && ctx) fail('VDM032', a.span('window'), 'window cannot be combined with a context');
    // Query-minus-key offsets only mean something when keys live on the queries' grid.
    if (relBias && ctx) fail('VDM032', a.span('rel_bias'), 'rel_bias applies to self-attention only, not with a context', 'drop rel_bias, or attend over x itself');

    // every query token in the batch, the padding included
    const queries = windows?.padded
      ? (numel(x.axes) / d / product(over.map((n) => sizeOf(x, n, a.span('over'))))) * product(windows.padded.values())
      : numel(x.axes) / d;
    const perQuery = windows ? product(windows.window.values()) : ctx ? ctx.tokens : product(over.map((n) => sizeOf(x, n, a.span('over'))));
    const params: ParamShape[] = [];
    const add = (leaf: string, shape: number[], init = 'default') => params.push({ leaf, shape, init });
    let macs = 0;
    if (ctx) {
      add('q.weight', [d, inner]);
      if (qkvBias) add('q.bias', [inner], 'zeros');
      add('kv.weight', [ctx.dc, 2 * inner]);
      if (qkvBias) add('kv.bias', [2 * inner], 'zeros');
      macs += queries * d * inner + (numel(ctx.context.axes) / ctx.dc) * ctx.dc * 2 * inner;
    } else {
      add('qkv.weight', [d, 3 * inner]);
      if (qkvBias) add('qkv.bias', [3 * inner], 'zeros');
      macs += queries * d * 3 * inner;
    }
    add('proj.weight', [inner, d]);
    if (outBias) add('proj.bias', [d], 'zeros');
    macs += 2 * queries * perQuery * inner; // QK^T and AV
    macs += (numel(x.axes) / d) * inner * d;
    if (qkNorm !== 'none') params.push(...qkNormParams(qkNorm, inner / heads));
    if (relBias) {
      // a window clamped under `pad` keeps the table of the window as given (as PyTorch's Video Swin)
      const extent = over.map((n) => windows ? (windows.configured ?? windows.window).get(n)! : sizeOf(x, n, a.span('over')));
      add('rel_bias', [product(extent.map((w) => 2 * w - 1)), heads], 'zeros');
    }
    const attrs: Record<string, Json> = {
      over, heads, rel_bias: relBias, bias,
      window: windows ? Object.fromEntries(windows.window) : null,
      shift: windows ? Object.fromEntries(windows.shift) : null,
      context_over: ctx ? ctx.over : null,
    };
    // the options are attributes only where given, so a spec without them keeps its graph
    if (a.has('qkv_bias')) attrs.qkv_bias = qkvBias;
    if (a.has('out_bias')) attrs.out_bias = outBias;
    if (dimHead !== null) attrs.dim_head = dimHead;
    if (qkNorm !== 'none') attrs.qk_norm = qkNorm;
    if (!a.isNone('rope')) attrs.rope = ropeAttr(a, over, inner / heads, windows !== null, ctx !== null);
    if (a.bool('causal')) {
      // the token order is row-major over `over` as given: one index per token, first axis most significant
      if (ctx) fail('VDM039', a.span('causal'), 'causal applies to self-attention only, not with a context', 'drop causal, or attend over x itself');
      if (windows) fail('VDM039', a.span('causal'), 'causal cannot be combined with windows', 'drop causal, or the window');
      attrs.causal = true;
    }
    const keyMask = a.optionalTensor('key_mask');
    if (keyMask) {
      keyMaskCheck(a, keyMask, x, ctx ? ctx.context : x, ctx ? ctx.over : over, over, windows !== null);
      attrs.key_mask = true;
    }
    if (windows?.padded) {
      attrs.pad = true;
      attrs.padded = Object.fromEntries(windows.padded);
      attrs.bias_window = Object.fromEntries(windows.configured!);
    }
    return {
      // the mask last: it gets no gradient
      inputs: [x, ...(ctx ? [ctx.context] : []), ...(keyMask ? [keyMask] : [])],
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
 * buffer holds the node's non-c axes in node order with c last. With pad: true, x is first copied
 * into zeros over the padded axes, and the attention output cropped before the output projection.
 */
function lowerAttention(call: LowerCall): void {
  const core = emitCore(call);
  const f = call.gemm;
  emitProjection(call, core.cropped(), call.out, 'proj.weight', 'proj.bias', f && { gate: f.gate, residual: f.residual });
}

/** The projections and the attention kernel (everything but the output projection). */
function emitCore(call: LowerCall) {
  const { attrs, node } = call;
  const over = attrs.over as string[];
  const heads = Number(attrs.heads);
  const window = attrs.window as Record<string, number> | null;
  const shift = attrs.shift as Record<string, number> | null;
  const ctxOver = attrs.context_over as string[] | null;
  const padded = (attrs.padded ?? null) as Record<string, number> | null;
  const biasWindow = (attrs.bias_window ?? null) as Record<string, number> | null;
  const d = sizeIn(node.axes, 'c'), dh = attrs.dim_head != null ? Number(attrs.dim_head) : d / heads, inner = heads * dh;
  const scratchOver = (name: string, axes: readonly AxisPair[], c: number): Value => {
    const full: AxisPair[] = [...axes, ['c', c]];
    return { buffer: call.scratch(name, numelOf(full)), axes: full };
  };
  // the node's rows, over the padded sizes with pad: true
  const nodeRows = node.axes.filter(([n]) => n !== 'c');
  const rowAxes: AxisPair[] = nodeRows.map(([n, size]) => [n, padded?.[n] ?? size]);
  let x = call.inputs[0];
  if (padded) {
    const xp = scratchOver('xpad', rowAxes, d);
    emitPad(call, x, xp);
    x = xp;
  }
  const batchAxes = rowAxes.filter(([n]) => !over.includes(n));
  const tokenAxes: AxisPair[] = over.map((n) => [n, sizeIn(rowAxes, n)]);
  const gridAxes = [...batchAxes, ...tokenAxes];
  const grid: Axis[] = gridAxes.map(([name, size]) => ({ name, size }));

  const o = scratchOver('o', rowAxes, inner);
  /** o over the node's own sizes: o itself, or (pad: true) a cropped copy */
  const cropped = (): Value => {
    if (!padded) return o;
    const oc = scratchOver('ocrop', nodeRows, inner);
    emitCrop(call, o, oc);
    return oc;
  };
  // a layer norm and modulate of x fused into the projection of x (call.gemm's prologue)
  const pro = call.gemm && { normalize: call.gemm.normalize, scale: call.gemm.scale, shift: call.gemm.shift };
  const oView = headsView(o, gridAxes, heads, dh, 0);
  const tiling = call.adapter ? attentionTilingFor(call.adapter.info, call.adapter.features.has('subgroups')) : undefined;
  const table = call.params.get('rel_bias');
  // key_mask: the last input, read over [...batch axes, ...key tokens] (stride 0 where it lacks an axis)
  const mask = attrs.key_mask === true ? call.inputs[call.inputs.length - 1] : null;
  const maskOver = (keyGrid: readonly AxisPair[]) => (mask ? { keyMask: viewOver(mask, keyGrid) } : {});

  // qk_norm: q and k normalised into scratch of their own ([..rows, inner] each), v read in place
  const qkNorm = qkNormOf(attrs);
  /** q's (or k's) view for the attention kernel: the projection's part, or its normalised copy */
  const normed = (which: 'q' | 'k', src: Value, rows: readonly AxisPair[], part: number, grid: readonly AxisPair[]) => {
    const site: NormSite = { which, x: headsView(src, rows, heads, dh, part), xBuffer: src.buffer };
    if (!qkNorm) return { view: headsView(src, grid, heads, dh, part), buffer: src.buffer, site };
    const n = scratchOver(`${which}norm`, rows, inner);
    emitQkNorm(call, qkNorm, site, headsView(n, rows, heads, dh, 0), n.buffer);
    return { view: headsView(n, grid, heads, dh, 0), buffer: n.buffer, site, normed: n };
  };

  if (ctxOver) {
    const ctx = call.inputs[1];
    const ctxRows = ctx.axes.filter(([n]) => n !== 'c');
    const ctxTokens: AxisPair[] = ctxOver.map((n) => [n, sizeIn(ctx.axes, n)]);
    const q = scratchOver('q', rowAxes, inner);
    const kv = scratchOver('kv', ctxRows, 2 * inner);
    emitProjection(call, x, q, 'q.weight', 'q.bias', pro);
    emitProjection(call, ctx, kv, 'kv.weight', 'kv.bias');
    // k and v over [...batch axes of the grid, ...context tokens]: batch axes the context lacks read stride 0
    const kvGrid = [...batchAxes, ...ctxTokens];
    const qn = normed('q', q, rowAxes, 0, gridAxes), kn = normed('k', kv, ctxRows, 0, kvGrid);
    const params: AttentionParams = {
      grid, tokens: over, heads, headDim: dh, context: ctxTokens.map(([name, size]) => ({ name, size })),
      q: qn.view, k: kn.view, v: headsView(kv, kvGrid, heads, dh, 1),
      o: oView, ...maskOver(kvGrid), tiling,
    };
    const buffers = [qn.buffer, kn.buffer, kv.buffer, ...(mask ? [mask.buffer] : [])];
    call.emit(attentionKernel(params), [...buffers, o.buffer]);
    return { o, cropped, x, padded, rowAxes, params, heads, dh, inner, gridAxes, kvGrid, q, kv, qkNorm, qn, kn, buffers, mask };
  }
  const qkv = scratchOver('qkv', rowAxes, 3 * inner);
  emitProjection(call, x, qkv, 'qkv.weight', 'qkv.bias', pro);
  const qn = normed('q', qkv, rowAxes, 0, gridAxes), kn = normed('k', qkv, rowAxes, 1, gridAxes);
  // rope turns q and k in place: in their normalised copies, or in the projection's scratch
  const rope = ropeOf(attrs);
  const gridNames = gridAxes.map(([n]) => n);
  if (rope) for (const t of [qn, kn]) emitRope(call, rope, gridNames, t.view, t.buffer);
  const params: AttentionParams = {
    grid, tokens: over, heads, headDim: dh,
    q: qn.view, k: kn.view, v: headsView(qkv, gridAxes, heads, dh, 2),
    o: oView, window: window ?? undefined, shift: shift ?? undefined,
    relPosBias: table ? contiguous([product(tokenAxes.map(([n, size]) => 2 * (biasWindow?.[n] ?? window?.[n] ?? size) - 1)), heads]) : undefined,
    ...(table && biasWindow ? { biasWindow } : {}),
    ...(attrs.causal === true ? { causal: true } : {}),
    ...maskOver(gridAxes),
    tiling,
  };
  const buffers = [qn.buffer, kn.buffer, qkv.buffer, ...(table ? [table] : []), ...(mask ? [mask.buffer] : [])];
  call.emit(attentionKernel(params), [...buffers, o.buffer]);
  return { o, cropped, x, padded, rowAxes, params, heads, dh, inner, gridAxes, kvGrid: gridAxes, qkv, qkNorm, qn, kn, rope, buffers, mask };
}

/**
 * The backward: the projections and the attention output are recomputed (scratch is not kept past
 * the node), then the output projection's backward gives d o, the fused attention backward
 * (recomputing scores, never storing them) gives dq, dk, dv into one packed gradient buffer laid
 * out like the projection, and the input projections' backward gives dx (and d context).
 */
function lowerAttentionVjp(call: LowerVjpCall): void {
  // the key mask gets no gradient: zeros where its producer wants one (a mask computed from parameters)
  const dMask = call.attrs.key_mask === true ? call.inputGrads[call.inputGrads.length - 1] : null;
  if (dMask) emitZeros(call, dMask);
  const core = emitCore(call);
  const { heads, dh, gridAxes, kvGrid } = core;
  const params = { ...core.params, backwardTiling: attentionBackwardTilingFor(call.adapter) };
  const d = sizeIn(call.node.axes, 'c'), inner = core.inner;
  const { rowAxes, padded } = core;
  const scratchOver = (name: string, axes: readonly AxisPair[], c: number): Value => {
    const full: AxisPair[] = [...axes, ['c', c]];
    return { buffer: call.scratch(name, numelOf(full)), axes: full };
  };
  // the output projection's backward over the node's rows; with pad: true, d o is padded with zeros
  const nodeRows = call.node.axes.filter(([n]) => n !== 'c');
  let dO = scratchOver('do', nodeRows, inner);
  emitLinearVjp(call, { x: core.cropped(), g: call.grad, axis: 'c', weight: call.params.get('proj.weight')!, dx: dO,
    dw: call.paramGrads.get('proj.weight')!, db: call.paramGrads.get('proj.bias') });
  if (padded) {
    const dOp = scratchOver('dopad', rowAxes, inner);
    emitPad(call, dO, dOp);
    dO = dOp;
  }
  const table = call.paramGrads.get('rel_bias');
  const scratch = call.scratch('stats', attentionBackwardScratch(params));
  const tail = (p: AttentionBackwardParams, grads: { dQ: string; dK: string; dV: string; shared: boolean }) => {
    for (const spec of attentionBackwardKernels(p)) {
      const names = spec.bindings.map((b) => b.name);
      const by: Record<string, string> = {
        q: core.buffers[0], k: core.buffers[1], v: core.buffers[2], relPosBias: call.params.get('rel_bias') ?? '', km: core.mask?.buffer ?? '',
        dO: dO.buffer, scratch, dQ: grads.dQ, dK: grads.dK, dV: grads.dV, dKV: grads.dK, dRelPosBias: table ?? '',
      };
      call.emit(spec, names.map((n) => {
        if (!by[n]) throw new Error(`attention backward: no buffer for binding '${n}'`);
        return by[n];
      }));
    }
  };
  const dOView = headsView(dO, gridAxes, heads, dh, 0);
  /**
   * With qk_norm the attention backward writes d(normalised q, k) into scratch of their own, and
   * each norm's backward writes the raw part's gradient into the packed projection gradient `dst`.
   */
  const { qkNorm, qn, kn } = core;
  const normGrads = (dst: { q: Value; k: Value }, kPart: number) => {
    if (!qkNorm) return null;
    const dqn = scratchOver('dqnorm', rowAxes, inner), dkn = scratchOver('dknorm', kn.normed!.axes.slice(0, -1), inner);
    return {
      dQ: headsView(dqn, gridAxes, heads, dh, 0), dK: headsView(dkn, kvGrid, heads, dh, 0), buffers: { dQ: dqn.buffer, dK: dkn.buffer },
      back: () => {
        const rowsOf = (v: Value) => v.axes.slice(0, -1);
        emitQkNormVjp(call, qkNorm, qn.site, { view: headsView(dqn, rowsOf(dqn), heads, dh, 0), buffer: dqn.buffer },
          { view: headsView(dst.q, rowsOf(dst.q), heads, dh, 0), buffer: dst.q.buffer });
        emitQkNormVjp(call, qkNorm, kn.site, { view: headsView(dkn, rowsOf(dkn), heads, dh, 0), buffer: dkn.buffer },
          { view: headsView(dst.k, rowsOf(dst.k), heads, dh, kPart), buffer: dst.k.buffer });
      },
    };
  };
  if (core.kv) {
    const ctx = call.inputs[1];
    const ctxRows = ctx.axes.filter(([n]) => n !== 'c');
    const dq = scratchOver('dq', rowAxes, inner);
    const dkv = scratchOver('dkv', ctxRows, 2 * inner);
    const ng = normGrads({ q: dq, k: dkv }, 0);
    tail({ ...params, dO: dOView, dQ: ng?.dQ ?? headsView(dq, gridAxes, heads, dh, 0), dK: ng?.dK ?? headsView(dkv, kvGrid, heads, dh, 0),
      dV: headsView(dkv, kvGrid, heads, dh, 1), sharedKVGrad: !ng },
    { dQ: ng?.buffers.dQ ?? dq.buffer, dK: ng?.buffers.dK ?? dkv.buffer, dV: dkv.buffer, shared: !ng });
    ng?.back();
    emitLinearVjp(call, { x: call.inputs[0], g: dq, axis: 'c', weight: call.params.get('q.weight')!, dx: call.inputGrads[0],
      dw: call.paramGrads.get('q.weight')!, db: call.paramGrads.get('q.bias') });
    emitLinearVjp(call, { x: ctx, g: dkv, axis: 'c', weight: call.params.get('kv.weight')!, dx: call.inputGrads[1],
      dw: call.paramGrads.get('kv.weight')!, db: call.paramGrads.get('kv.bias') });
    return;
  }
  const dqkv = scratchOver('dqkv', rowAxes, 3 * inner);
  const ng = normGrads({ q: dqkv, k: dqkv }, 1);
  const dQ = { view: ng?.dQ ?? headsView(dqkv, gridAxes, heads, dh, 0), buffer: ng?.buffers.dQ ?? dqkv.buffer };
  const dK = { view: ng?.dK ?? headsView(dqkv, gridAxes, heads, dh, 1), buffer: ng?.buffers.dK ?? dqkv.buffer };
  tail({ ...params, dO: dOView, dQ: dQ.view, dK: dK.view, dV: headsView(dqkv, gridAxes, heads, dh, 2), sharedKVGrad: !ng,
    dRelPosBias: table ? params.relPosBias : undefined }, { dQ: dQ.buffer, dK: dK.buffer, dV: dqkv.buffer, shared: !ng });
  // rope's backward: the gradients of the turned q and k turned back, in place
  if (core.rope) for (const t of [dQ, dK]) emitRope(call, core.rope, gridAxes.map(([n]) => n), t.view, t.buffer, true);
  ng?.back();
  const dx = call.inputGrads[0];
  const dxp = padded && dx ? scratchOver('dxpad', rowAxes, d) : dx;
  emitLinearVjp(call, { x: core.x, g: dqkv, axis: 'c', weight: call.params.get('qkv.weight')!, dx: dxp,
    dw: call.paramGrads.get('qkv.weight')!, db: call.paramGrads.get('qkv.bias') });
  if (dx && dxp !== dx) emitCrop(call, dxp!, dx);
}

