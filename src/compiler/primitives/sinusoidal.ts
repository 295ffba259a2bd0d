// sinusoidal(s, dim: 256, max_period: 10000): the timestep embedding of DiT, cat(cos, sin): s [b] -> [b, c=dim].
import { timestepEmbeddingKernel } from '../../codegen/kernels/embed.ts';
import { elementwiseKernel } from '../../codegen/kernels/elementwise.ts';
import { constant, input, mul, sub, unary } from '../../codegen/kernels/expr.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { contiguous } from '../../codegen/kernels/view.ts';
import { viewOver, type Value } from './lowering.ts';
import { rangeView } from './slice.ts';
import { fail } from '../ir/diagnostics.ts';
import { relayout } from '../ir/named-tensor.ts';
import type { Primitive } from './types.ts';

export const sinusoidal: Primitive = {
  name: 'sinusoidal',
  args: [
    { name: 's', kind: 'tensor' },
    { name: 'dim', kind: 'size', default: 256 },
    { name: 'max_period', kind: 'number', default: 10000 },
  ],
  apply(a) {
    const s = a.tensor('s');
    if (s.axes.some(([n]) => n === 'c')) fail('VDM022', a.span('s'), 'sinusoidal expects a tensor without a c axis');
    const dim = a.size('dim');
    if (dim % 2 !== 0) fail('VDM035', a.span('dim'), `dim=${dim} must be even: the embedding is cos and sin halves`);
    const maxPeriod = a.positive('max_period');
    return {
      inputs: [s], attrs: { dim, max_period: maxPeriod },
      outputs: [{ axes: [...s.axes, ['c', dim]], dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
  // One timestep-embedding kernel (cos_sin): s's buffer is n = numel(s) timesteps in a row, and the
  // node's axes [...s axes, c] make its buffer [n, dim], whatever batch axes s has.
  lower(call) {
    const [s] = call.inputs;
    const n = s.axes.reduce((a, [, k]) => a * k, 1);
    const dim = Number(call.attrs.dim);
    const spec = timestepEmbeddingKernel({
      t: contiguous([n]), dim, out: contiguous([n, dim]), maxPeriod: Number(call.attrs.max_period), order: 'cos_sin',
    });
    call.emit(spec, [s.buffer, call.out.buffer]);
  },
  // ds = sum over k of f_k (cos_k · g[half + k] - sin_k · g[k]), with cos_k, sin_k the forward's
  // value (accurate for large s, see kernels/embed.ts). f_k = max_period^(-k / half) needs k per
  // element, which no view holds: ramp[k] = half - k is the sum of ones[k .. k + half) over a buffer
  // of half ones then half zeros (overlapping rows of one reduce).
  lowerVjp(call) {
    const [ds] = call.inputGrads;
    if (!ds) return;
    const [s] = call.inputs;
    const half = Number(call.attrs.dim) / 2;
    const ones = call.scratch('ones', 2 * half);
    for (const [offset, value] of [[0, 1], [half, 0]]) {
      call.emit(elementwiseKernel({ shape: [half], inputs: [], outputs: [{ name: 'out', view: contiguous([half], offset), expr: constant(value) }] }), [ones]);
    }
    const ramp = call.scratch('ramp', half);
    call.emit(reduceKernel({ op: 'sum', x: { shape: [half, half], strides: [1, 1], offset: 0 }, axes: [1], y: contiguous([half]) }), [ones, ramp]);
    // the terms over [...s axes, k], then their sum over k
    const target = [...s.axes, ['c', half] as const];
    const shape = target.map(([, k]) => k);
    const terms: Value = { buffer: call.scratch('terms', shape.reduce((p, q) => p * q, 1)), axes: target };
    const f = unary('exp', mul(sub(input('ramp'), half), Math.log(Number(call.attrs.max_period)) / half));
    const part = (v: Value, start: number) => rangeView(v, target, 'c', start);
    call.emit(elementwiseKernel({
      shape,
      inputs: [
        { name: 'ramp', view: { shape, strides: shape.map((_, i) => (i === shape.length - 1 ? 1 : 0)), offset: 0 } },
        { name: 'cos', view: part(call.out, 0) }, { name: 'sin', view: part(call.out, half) },
        { name: 'gcos', view: part(call.grad, 0) }, { name: 'gsin', view: part(call.grad, half) },
      ],
      outputs: [{ name: 'out', view: viewOver(terms, target), expr: mul(f, sub(mul(input('cos'), input('gsin')), mul(input('sin'), input('gcos')))) }],
    }), [ramp, call.out.buffer, call.out.buffer, call.grad.buffer, call.grad.buffer, terms.buffer]);
    call.emit(reduceKernel({ op: 'sum', x: viewOver(terms, target), axes: [target.length - 1], y: viewOver(ds, s.axes) }), [terms.buffer, ds.buffer]);
  },
  // d/ds cos(s f) = -f sin(s f), d/ds sin(s f) = f cos(s f): ds = sum over k of both channels' terms.
  vjp({ inputs: [s], attrs, grad }) {
    const dim = Number(attrs.dim);
    const period = Number(attrs.max_period);
    const half = Math.floor(dim / 2);
    const g = relayout(grad, [...s.axes, ['c', dim]]).data;
    const ds = new Float64Array(s.data.length);
    for (let i = 0; i < s.data.length; i++) {
      let acc = 0;
      for (let k = 0; k < half; k++) {
        const f = Math.exp((-Math.log(period) * k) / half);
        const arg = s.data[i] * f;
        acc += f * (-Math.sin(arg) * g[i * dim + k] + Math.cos(arg) * g[i * dim + half + k]);
      }
      ds[i] = acc;
    }
    return { inputs: [{ axes: s.axes, data: ds }] };
  },
  // As codegen/embed.ts's timestepEmbeddingReference (order cos_sin): channel k < half is
  // cos(s f_k), channel half + k is sin(s f_k), f_k = exp(-ln(max_period) k / half); a last odd
  // channel (never allowed by the shape rule) would stay 0.
  reference({ inputs: [s], attrs }) {
    const dim = Number(attrs.dim);
    const period = Number(attrs.max_period);
    const half = Math.floor(dim / 2);
    const out = new Float64Array(s.data.length * dim);
    for (let i = 0; i < s.data.length; i++) {
      for (let k = 0; k < half; k++) {
        const arg = s.data[i] * Math.exp((-Math.log(period) * k) / half);
        out[i * dim + k] = Math.cos(arg);
        out[i * dim + half + k] = Math.sin(arg);
      }
    }
    return { axes: [...s.axes, ['c', dim]], data: out };
  },
};
