// attention(x, over, heads, context, context_over, window, shift, rel_bias, bias): multi-head
// attention whose tokens are the `over` axes; every other axis but c is a batch axis. With `window`,
// tokens attend within windows (Swin style, optionally shifted); with `context`, keys come from it.
import { fail } from '../diagnostics.ts';
import { asAxes, asPerAxis } from '../convert.ts';
import { didYouMean } from '../suggest.ts';
import { formatAxes, numel, type TensorValue } from '../values.ts';
import { product, requireAxes, resolvePerAxis, sizeOf } from './axes.ts';
import type { BoundArgs, Json, ParamShape, Primitive } from './types.ts';

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
    const x = a.tensor('x');
    const over = a.axes('over');
    requireAxes(x, over, a.span('over'));
    if (over.includes('c')) fail('VDM017', a.span('over'), "'over' of attention cannot include the channel axis c");
    const d = sizeOf(x, 'c', a.span('x'));
    const heads = a.size('heads');
    if (d % heads !== 0) fail('VDM030', a.span('heads'), `heads=${heads} does not divide c=${d}`);
    const relBias = a.bool('rel_bias');
    const bias = a.bool('bias');
    const windows = windowsOf(a, x, over);
    const ctx = contextOf(a, x, over);
    if (windows && ctx) fail('VDM032', a.span('window'), 'window cannot be combined with a context');

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
};
