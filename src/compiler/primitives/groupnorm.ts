// groupnorm(x, groups: 32, affine: true, eps: 1e-5, over): statistics per group of channels over
// the `over` axes (default: every axis but b and c).
import { emitNormVjp, viewOver, type LowerCall, type Value } from './lowering.ts';
import { groupNormView, normKernel, normLanesFor } from '../../codegen/kernels/norm.ts';
import { fail } from '../ir/diagnostics.ts';
import type { AxisPair } from '../ir/graph.ts';
import { numelOf, relayout, sizeIn, type NamedTensor } from '../ir/named-tensor.ts';
import { requireAxes, sizeOf } from './axes.ts';
import type { ParamShape, Primitive, ReferenceCall } from './types.ts';

export const groupnorm: Primitive = {
  name: 'groupnorm',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'groups', kind: 'size', default: 32 },
    { name: 'affine', kind: 'bool', default: true },
    { name: 'eps', kind: 'number', default: 1e-5 },
    { name: 'over', kind: 'axes', default: { computed: 'every axis but b and c' } },
  ],
  apply(a) {
    const x = a.tensor('x');
    const c = sizeOf(x, 'c', a.span('x'));
    const groups = a.size('groups');
    if (c % groups !== 0) fail('VDM030', a.span('groups'), `groups=${groups} does not divide c=${c}`);
    const over = a.has('over') ? a.axes('over') : x.axes.map(([n]) => n).filter((n) => n !== 'b' && n !== 'c');
    requireAxes(x, over, a.span('over'));
    if (over.includes('c')) fail('VDM017', a.span('over'), "'over' of groupnorm cannot include the channel axis c");
    const affine = a.bool('affine');
    const eps = a.positive('eps');
    const params: ParamShape[] = affine
      ? [{ leaf: 'weight', shape: [c], init: 'ones' }, { leaf: 'bias', shape: [c], init: 'zeros' }]
      : [];
    return { inputs: [x], attrs: { groups, affine, eps, over }, outputs: [{ axes: x.axes, dtype: 'f32' }], params, macs: 0 };
  },
  // One norm kernel over x and y viewed as [...batch, c, ...over] and regrouped by groupNormView:
  // rows (batch..., group), each normalising (c / groups, ...over); weight and bias per channel.
  lower(call) {
    const { xv, yv } = groupViews(call, call.out);
    const weight = call.params.get('weight');
    const bias = call.params.get('bias');
    const spec = normKernel({
      kind: 'group', x: xv.view, y: yv.view, normalizedAxes: xv.normalizedAxes, eps: Number(call.attrs.eps),
      weight: weight ? xv.perChannel() : undefined, bias: bias ? xv.perChannel() : undefined,
      subgroupLanes: normLanesFor(call.adapter),
    });
    call.emit(spec, [call.inputs[0].buffer, ...(weight ? [weight] : []), ...(bias ? [bias] : []), call.out.buffer]);
  },
  // The forward's group views of x, dy and dx; dweight and dbias per channel as the forward reads them.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    const { xv, yv: dyv } = groupViews(call, call.grad);
    emitNormVjp(call, {
      kind: 'group', x: xv.view, dy: dyv.view, dx: dx ? groupViews(call, dx).yv.view : undefined,
      normalizedAxes: xv.normalizedAxes, eps: Number(call.attrs.eps),
      weight: call.params.has('weight') ? xv.perChannel() : undefined, bias: call.params.has('bias') ? xv.perChannel() : undefined,
    }, xv.perChannel());
  },
  // Per (row, group) block of `per` values, with xh = (x - mean) * rstd and dxh = g * weight[ch]:
  //   dx = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)); dweight[ch] = sum g * xh, dbias[ch] = sum g.
  vjp({ inputs: [x], params, attrs, grad }) {
    const { order, c, eps, inner, per } = blocksOf(x, attrs);
    const xs = relayout(x, order).data;
    const gs = relayout(grad, order).data;
    const w = params.get('weight');
    const b = params.get('bias');
    const dx = new Float64Array(xs.length);
    const dw = new Float64Array(c);
    const db = new Float64Array(c);
    const xh = new Float64Array(per);
    const dxh = new Float64Array(per);
    for (let start = 0; start < xs.length; start += per) {
      let mean = 0;
      for (let e = 0; e < per; e++) mean += xs[start + e];
      mean /= per;
      let sq = 0;
      for (let e = 0; e < per; e++) sq += (xs[start + e] - mean) ** 2;
      const rstd = 1 / Math.sqrt(sq / per + eps);
      let mg = 0, mgx = 0;
      for (let e = 0; e < per; e++) {
        const ch = Math.floor((start + e) / inner) % c;
        const gv = gs[start + e];
        xh[e] = (xs[start + e] - mean) * rstd;
        dxh[e] = w ? gv * w[ch] : gv;
        dw[ch] += gv * xh[e];
        db[ch] += gv;
        mg += dxh[e];
        mgx += dxh[e] * xh[e];
      }
      mg /= per;
      mgx /= per;
      for (let e = 0; e < per; e++) dx[start + e] = rstd * (dxh[e] - mg - xh[e] * mgx);
    }
    const grads = new Map<string, Float64Array>();
    if (w) grads.set('weight', dw);
    if (b) grads.set('bias', db);
    return { inputs: [{ axes: order, data: dx }], params: grads };
  },
  // Every axis but c and `over` indexes a separate batch row. Laid out as [...batch, c, ...over], one
  // (row, group) is a contiguous block of (c / groups) * numel(over) values: mean, biased variance
  // (two passes, as codegen/norm.ts), then the per-channel affine.
  reference({ inputs: [x], params, attrs }) {
    const { order, c, eps, inner, per } = blocksOf(x, attrs);
    const t = relayout(x, order);
    const w = params.get('weight');
    const b = params.get('bias');
    const out = new Float64Array(t.data.length);
    for (let start = 0; start < t.data.length; start += per) {
      let mean = 0;
      for (let e = 0; e < per; e++) mean += t.data[start + e];
      mean /= per;
      let sq = 0;
      for (let e = 0; e < per; e++) sq += (t.data[start + e] - mean) ** 2;
      const rstd = 1 / Math.sqrt(sq / per + eps);
      for (let e = 0; e < per; e++) {
        const ch = Math.floor((start + e) / inner) % c;
        let v = (t.data[start + e] - mean) * rstd;
        if (w) v *= w[ch];
        if (b) v += b[ch];
        out[start + e] = v;
      }
    }
    return { axes: t.axes, data: out };
  },
};

/**
 * x and `y` (a value over x's axes) viewed as [...batch, c, ...over] and regrouped by groupNormView:
 * rows (batch..., group), each normalising (c / groups, ...over).
 */
function groupViews(call: Pick<LowerCall, 'inputs' | 'attrs'>, y: Value) {
  const [x] = call.inputs;
  const over = call.attrs.over as string[];
  const order = [
    ...x.axes.filter(([n]) => n !== 'c' && !over.includes(n)),
    x.axes.find(([n]) => n === 'c')!,
    ...over.map((n) => x.axes.find(([m]) => m === n)!),
  ];
  const batch = order.length - over.length - 1;
  const groups = Number(call.attrs.groups);
  return { xv: groupNormView(viewOver(x, order), batch, groups, batch), yv: groupNormView(viewOver(y, order), batch, groups, batch) };
}

/**
 * The working layout [batch.., c, over..] (every axis that is neither c nor normalised is a batch
 * axis), in which each group is one contiguous block of `per` values, `inner` per channel.
 */
function blocksOf(x: NamedTensor, attrs: ReferenceCall['attrs']) {
  const over = (attrs.over as string[]).map((n): AxisPair => [n, sizeIn(x.axes, n)]);
  const c = sizeIn(x.axes, 'c');
  const batch = x.axes.filter(([n]) => n !== 'c' && !over.some(([m]) => m === n));
  const inner = numelOf(over);
  return { order: [...batch, ['c', c], ...over] as AxisPair[], c, eps: Number(attrs.eps), inner, per: (c / Number(attrs.groups)) * inner };
}
