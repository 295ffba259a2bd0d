// pool(x, kernel, mode: "avg"|"max"): non-overlapping pooling; each kernel size must divide its axis.
// A bare integer kernel applies to every axis but b and c.
import { fail } from '../ir/diagnostics.ts';
import { alongAxis, relayout, sizeIn, stridesOf, type NamedTensor } from '../ir/named-tensor.ts';
import type { AxisPair } from '../ir/graph.ts';
import { resolvePerAxis, sizeOf, spatialAxes, withSizes } from './axes.ts';
import type { Primitive } from './types.ts';
import { viewOver } from './lowering.ts';
import { poolKernel } from '../../codegen/kernels/resample.ts';
import { poolBackwardKernel } from '../../codegen/kernels/resample-backward.ts';

export const pool: Primitive = {
  name: 'pool',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'kernel', kind: 'per-axis' },
    { name: 'mode', kind: 'string', default: 'avg', choices: ['avg', 'max'] },
  ],
  apply(a) {
    const x = a.tensor('x');
    const setting = a.perAxis('kernel');
    const names = typeof setting === 'number' ? spatialAxes(x) : setting.map(([n]) => n);
    const kernel = resolvePerAxis(setting, x.axes.map(([n]) => n), a.span('kernel'), a.what('kernel'), 1);
    const sizes = new Map<string, number>();
    for (const ax of names) {
      const n = sizeOf(x, ax, a.span('kernel'));
      const k = kernel.get(ax)!;
      if (k < 1 || n % k !== 0) fail('VDM033', a.span('kernel'), `pool kernel ${ax}=${k} does not divide ${ax}=${n}`);
      sizes.set(ax, n / k);
    }
    const mode = a.string('mode');
    return {
      inputs: [x],
      attrs: { kernel: Object.fromEntries(names.map((n) => [n, kernel.get(n)!])), mode },
      outputs: [{ axes: withSizes(x.axes, sizes), dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
  // One pooling kernel: x and the node's value seen over x's axis order, a factor per axis (1 for
  // axes not pooled).
  lower(call) {
    const [x] = call.inputs;
    const kernel = call.attrs.kernel as Record<string, number>;
    const yAxes = x.axes.map(([n]) => call.out.axes.find(([m]) => m === n)!);
    const spec = poolKernel({
      op: call.attrs.mode === 'max' ? 'max' : 'avg',
      x: viewOver(x, x.axes), factors: x.axes.map(([n]) => Number(kernel[n] ?? 1)), y: viewOver(call.out, yAxes),
    });
    call.emit(spec, [x.buffer, call.out.buffer]);
  },
  // One gather over dx, everything seen over x's axis order as in `lower`; max rescans x for the
  // window's arg-max (the forward's values, so the same element wins).
  lowerVjp(call) {
    const [x] = call.inputs;
    const [dx] = call.inputGrads;
    if (!dx) return;
    const kernel = call.attrs.kernel as Record<string, number>;
    const max = call.attrs.mode === 'max';
    const yAxes = x.axes.map(([n]) => call.out.axes.find(([m]) => m === n)!);
    const spec = poolBackwardKernel({
      op: max ? 'max' : 'avg', x: viewOver(x, x.axes), factors: x.axes.map(([n]) => Number(kernel[n] ?? 1)),
      dy: viewOver(call.grad, yAxes), dx: viewOver(dx, x.axes),
    });
    call.emit(spec, [...(max ? [x.buffer] : []), call.grad.buffer, dx.buffer]);
  },
  // Windows are boxes (window = stride, no overlap), so pooling one axis at a time gives the same
  // value: max of maxes exactly, the mean of means up to rounding. Output sizes come from the node
  // (floor(n / k), as src/codegen/resample.ts's pooling: a ragged tail, were one allowed, is dropped).
  reference({ inputs: [x], attrs, axes }) {
    const max = attrs.mode === 'max';
    let y: NamedTensor = x;
    for (const [ax, kv] of Object.entries(attrs.kernel as Record<string, number>)) {
      const k = Number(kv);
      if (k === 1) continue;
      y = alongAxis(y, ax, sizeIn(axes, ax), (src, dst) => {
        for (let o = 0; o < dst.length; o++) {
          let acc = max ? -Infinity : 0;
          for (let i = o * k; i < (o + 1) * k; i++) acc = max ? Math.max(acc, src[i]) : acc + src[i];
          dst[o] = max ? acc : acc / k;
        }
      });
    }
    return y;
  },
  // Each x element belongs to one window (boxes, no overlap). avg: y = mean of the window, so
  // dx[i] = dy[window(i)] / prod(k). max: y = the window's largest value, so dx = dy at that
  // window's arg-max (the first one in x's order, were there ties) and 0 elsewhere in it.
  vjp({ inputs: [x], attrs, axes, grad }) {
    const kernel = attrs.kernel as Record<string, number>;
    const k = x.axes.map(([n]) => Number(kernel[n] ?? 1));
    const yAxes = x.axes.map(([n]): AxisPair => [n, sizeIn(axes, n)]); // the output over x's axis order
    const dy = relayout(grad, yAxes).data;
    const ys = stridesOf(yAxes);
    // window[i]: the output element x's element i pools into (-1 in a dropped ragged tail)
    const window = new Int32Array(x.data.length);
    const idx = x.axes.map(() => 0);
    for (let flat = 0; flat < window.length; flat++) {
      let o = 0;
      for (let a = 0; a < idx.length; a++) {
        const q = Math.floor(idx[a] / k[a]);
        if (q >= yAxes[a][1]) { o = -1; break; }
        o += q * ys[a];
      }
      window[flat] = o;
      for (let a = idx.length - 1; a >= 0; a--) { if (++idx[a] < x.axes[a][1]) break; idx[a] = 0; }
    }
    const dx = new Float64Array(x.data.length);
    if (attrs.mode === 'max') {
      const best = new Int32Array(dy.length).fill(-1);
      for (let i = 0; i < window.length; i++) {
        const o = window[i];
        if (o >= 0 && (best[o] < 0 || x.data[i] > x.data[best[o]])) best[o] = i;
      }
      for (let o = 0; o < best.length; o++) if (best[o] >= 0) dx[best[o]] += dy[o];
    } else {
      const volume = k.reduce((p, v) => p * v, 1);
      for (let i = 0; i < window.length; i++) if (window[i] >= 0) dx[i] = dy[window[i]] / volume;
    }
    return { inputs: [{ axes: x.axes, data: dx }] };
  },
};
