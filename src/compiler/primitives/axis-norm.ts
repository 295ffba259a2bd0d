// Shared shape rule of layernorm and rmsnorm: normalise along one axis (default c), keep the axes,
// and with `affine` learn a per-feature scale (and, for layernorm, a shift).
import { emitNormVjp, viewOver } from './lowering.ts';
import { alongAxes } from '../../codegen/kernels/view.ts';
import { normKernel, normLanesFor } from '../../codegen/kernels/norm.ts';
import { alongAxis, relayout, sizeIn } from '../ir/named-tensor.ts';
import type { ParamShape, Primitive } from './types.ts';

export function axisNormPrimitive(name: string, withBias: boolean): Primitive {
  return {
    name,
    args: [
      { name: 'x', kind: 'tensor' },
      { name: 'affine', kind: 'bool', default: true },
      { name: 'eps', kind: 'number', default: 1e-6 },
      { name: 'axis', kind: 'axis', default: { axis: 'c' } },
    ],
    apply(a) {
      const { x, axis, size: n } = a.tensorAxis('x', 'axis');
      const affine = a.bool('affine');
      const eps = a.positive('eps');
      const params: ParamShape[] = [];
      if (affine) params.push({ leaf: 'weight', shape: [n], init: 'ones' });
      if (affine && withBias) params.push({ leaf: 'bias', shape: [n], init: 'zeros' });
      return { inputs: [x], attrs: { affine, eps, axis }, outputs: [{ axes: x.axes, dtype: 'f32' }], params, macs: 0 };
    },
    // One norm kernel: x and y viewed as [...other axes, axis] (rows, then the normalised axis), the
    // [n] weight and bias along the last view axis.
    lower(call) {
      const [x] = call.inputs;
      const axis = String(call.attrs.axis);
      const order = [...x.axes.filter(([n]) => n !== axis), x.axes.find(([n]) => n === axis)!];
      const shape = order.map(([, s]) => s);
      const along = alongAxes(shape, [shape.length - 1]);
      const weight = call.params.get('weight');
      const bias = call.params.get('bias');
      const spec = normKernel({
        kind: withBias ? 'layer' : 'rms', x: viewOver(x, order), y: viewOver(call.out, order), normalizedAxes: 1,
        eps: Number(call.attrs.eps), weight: weight ? along : undefined, bias: bias ? along : undefined,
        subgroupLanes: normLanesFor(call.adapter),
      });
      call.emit(spec, [x.buffer, ...(weight ? [weight] : []), ...(bias ? [bias] : []), call.out.buffer]);
    },
    // The forward's views over [...other axes, axis], with dy and dx (and the [n] gradients) beside them.
    lowerVjp(call) {
      const [x] = call.inputs;
      const [dx] = call.inputGrads;
      const axis = String(call.attrs.axis);
      const order = [...x.axes.filter(([n]) => n !== axis), x.axes.find(([n]) => n === axis)!];
      const shape = order.map(([, s]) => s);
      const along = alongAxes(shape, [shape.length - 1]);
      emitNormVjp(call, {
        kind: withBias ? 'layer' : 'rms', x: viewOver(x, order), dy: viewOver(call.grad, order), dx: dx ? viewOver(dx, order) : undefined,
        normalizedAxes: 1, eps: Number(call.attrs.eps),
        weight: call.params.has('weight') ? along : undefined, bias: call.params.has('bias') ? along : undefined,
      }, along);
    },
    // With xh = (x - mean) * rstd and dxh = g * weight, per row of n along the axis:
    //   dx = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh))   (rmsnorm: no mean(dxh) term, as mean = 0)
    //   dweight = sum over rows of g * xh, dbias = sum over rows of g.
    vjp({ inputs: [x], params, attrs, grad }) {
      const axis = String(attrs.axis);
      const eps = Number(attrs.eps);
      const w = params.get('weight');
      const b = params.get('bias');
      const n = sizeIn(x.axes, axis);
      const order = [...x.axes.filter(([m]) => m !== axis), [axis, n] as const];
      const xs = relayout(x, order).data;
      const gs = relayout(grad, order).data;
      const dx = new Float64Array(xs.length);
      const dw = new Float64Array(n);
      const db = new Float64Array(n);
      const xh = new Float64Array(n);
      const dxh = new Float64Array(n);
      for (let o = 0; o < xs.length; o += n) {
        let mean = 0;
        if (withBias) {
          for (let i = 0; i < n; i++) mean += xs[o + i];
          mean /= n;
        }
        let sq = 0;
        for (let i = 0; i < n; i++) sq += (xs[o + i] - mean) ** 2;
        const rstd = 1 / Math.sqrt(sq / n + eps);
        let mg = 0, mgx = 0;
        for (let i = 0; i < n; i++) {
          const gv = gs[o + i];
          xh[i] = (xs[o + i] - mean) * rstd;
          dxh[i] = w ? gv * w[i] : gv;
          dw[i] += gv * xh[i];
          db[i] += gv;
          mg += dxh[i];
          mgx += dxh[i] * xh[i];
        }
        mg = withBias ? mg / n : 0;
        mgx /= n;
        for (let i = 0; i < n; i++) dx[o + i] = rstd * (dxh[i] - mg - xh[i] * mgx);
      }
      const grads = new Map<string, Float64Array>();
      if (w) grads.set('weight', dw);
      if (b) grads.set('bias', db);
      return { inputs: [{ axes: order, data: dx }], params: grads };
    },
    // As codegen/norm.ts's normReference: (x - mean) / sqrt(biased var + eps) * weight + bias, where
    // rmsnorm (no bias) takes mean = 0, so its "variance" is the mean square.
    reference({ inputs: [x], params, attrs }) {
      const axis = String(attrs.axis);
      const eps = Number(attrs.eps);
      const w = params.get('weight');
      const b = params.get('bias');
      return alongAxis(x, axis, sizeIn(x.axes, axis), (src, dst) => {
        const n = src.length;
        let mean = 0;
        if (withBias) {
          for (let i = 0; i < n; i++) mean += src[i];
          mean /= n;
        }
        let sq = 0;
        for (let i = 0; i < n; i++) sq += (src[i] - mean) ** 2;
        const rstd = 1 / Math.sqrt(sq / n + eps);
        for (let i = 0; i < n; i++) {
          let v = (src[i] - mean) * rstd;
          if (w) v *= w[i];
          if (b) v += b[i];
          dst[i] = v;
        }
      });
    },
  };
}
