// upsample(x, factor, mode) or upsample(x, like: y, mode): enlarge axes by whole factors, given per
// axis (a bare integer: every axis but b and c) or taken from the sizes of y's axes.
import { fail } from '../ir/diagnostics.ts';
import { asPerAxis } from '../ir/convert.ts';
import { alongAxis, sizeIn, type NamedTensor } from '../ir/named-tensor.ts';
import { resolvePerAxis, sizeOf, spatialAxes, withSizes } from './axes.ts';
import type { BoundArgs, Primitive } from './types.ts';
import type { TensorValue } from '../ir/values.ts';
import { viewOver } from './lowering.ts';
import { resizeKernel } from '../../codegen/kernels/resample.ts';
import { resizeBackwardKernel } from '../../codegen/kernels/resample-backward.ts';

function factorsOf(a: BoundArgs, x: TensorValue): Map<string, number> {
  const like = a.optionalTensor('like');
  if (like && !a.isNone('factor')) fail('VDM017', a.span('like'), 'upsample takes either factor or like, not both');
  if (like) {
    const factors = new Map<string, number>();
    for (const [ax, target] of like.axes) {
      if (ax === 'b' || ax === 'c' || !x.axes.some(([n]) => n === ax)) continue;
      const n = sizeOf(x, ax, a.span('x'));
      if (target % n !== 0) fail('VDM033', a.span('like'), `cannot upsample ${ax}=${n} to ${ax}=${target}: not a whole factor`);
      factors.set(ax, target / n);
    }
    return factors;
  }
  if (a.isNone('factor')) fail('VDM015', a.callSpan, 'upsample needs factor or like');
  const setting = asPerAxis(a.value('factor'), a.span('factor'), a.what('factor'));
  const names = typeof setting === 'number' ? spatialAxes(x) : setting.map(([n]) => n);
  const all = resolvePerAxis(setting, x.axes.map(([n]) => n), a.span('factor'), a.what('factor'), 1);
  return new Map(names.map((n) => [n, all.get(n)!]));
}

export const upsample: Primitive = {
  name: 'upsample',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'factor', kind: 'per-axis-or-none', default: null },
    { name: 'like', kind: 'tensor-or-none', default: null },
    { name: 'mode', kind: 'string', default: 'nearest', choices: ['nearest', 'linear'] },
  ],
  apply(a) {
    const x = a.tensor('x');
    const factors = factorsOf(a, x);
    const sizes = new Map<string, number>();
    for (const [ax, f] of factors) {
      if (f < 1) fail('VDM033', a.span('factor'), `upsample factor ${ax}=${f} must be at least 1`);
      sizes.set(ax, sizeOf(x, ax, a.span('factor')) * f);
    }
    const mode = a.string('mode');
    return {
      inputs: [x],
      attrs: { factor: Object.fromEntries(factors), mode },
      outputs: [{ axes: withSizes(x.axes, sizes), dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
  // One resize kernel: x and the node's value seen over x's axis order; axes whose size changes are resized.
  lower(call) {
    const [x] = call.inputs;
    const yAxes = x.axes.map(([n]) => call.out.axes.find(([m]) => m === n)!);
    const spec = resizeKernel({ mode: call.attrs.mode === 'linear' ? 'linear' : 'nearest', x: viewOver(x, x.axes), y: viewOver(call.out, yAxes) });
    call.emit(spec, [x.buffer, call.out.buffer]);
  },
  // One gather over dx: each element sums the outputs that read it, weighted as they read it.
  lowerVjp(call) {
    const [x] = call.inputs;
    const [dx] = call.inputGrads;
    if (!dx) return;
    const yAxes = x.axes.map(([n]) => call.out.axes.find(([m]) => m === n)!);
    const spec = resizeBackwardKernel({ mode: call.attrs.mode === 'linear' ? 'linear' : 'nearest', dy: viewOver(call.grad, yAxes), dx: viewOver(dx, x.axes) });
    call.emit(spec, [call.grad.buffer, dx.buffer]);
  },
  // src/codegen/resample.ts's resize, one axis at a time (its linear weights are a product over
  // axes, so this is the same up to rounding): nearest reads floor(o * n / m) = floor(o / f);
  // linear is align_corners=false (PyTorch), source (o + 0.5) n / m - 0.5 clamped at 0.
  reference({ inputs: [x], attrs, axes }) {
    const linear = attrs.mode === 'linear';
    let y: NamedTensor = x;
    for (const ax of Object.keys(attrs.factor as Record<string, number>)) {
      const n = sizeIn(x.axes, ax), m = sizeIn(axes, ax);
      if (n === m) continue;
      y = alongAxis(y, ax, m, (src, dst) => {
        for (let o = 0; o < m; o++) {
          if (!linear) { dst[o] = src[Math.floor((o * n) / m)]; continue; }
          const s = Math.max((o + 0.5) * (n / m) - 0.5, 0);
          const i0 = Math.min(Math.floor(s), n - 1);
          const i1 = Math.min(i0 + 1, n - 1);
          dst[o] = (1 - (s - i0)) * src[i0] + (s - i0) * src[i1];
        }
      });
    }
    return y;
  },
  // The transpose of the reference, one axis at a time in reverse order (each step is linear):
  // nearest adds dy[o] into dx[floor(o n / m)] (the copies' gradients summed); linear adds
  // (1 - f) dy[o] into dx[i0] and f dy[o] into dx[i1], with the reference's i0, i1 and f.
  vjp({ inputs: [x], attrs, axes, grad }) {
    const linear = attrs.mode === 'linear';
    let g: NamedTensor = grad;
    for (const ax of Object.keys(attrs.factor as Record<string, number>).reverse()) {
      const n = sizeIn(x.axes, ax), m = sizeIn(axes, ax);
      if (n === m) continue;
      g = alongAxis(g, ax, n, (src, dst) => {
        for (let o = 0; o < m; o++) {
          if (!linear) { dst[Math.floor((o * n) / m)] += src[o]; continue; }
          const s = Math.max((o + 0.5) * (n / m) - 0.5, 0);
          const i0 = Math.min(Math.floor(s), n - 1);
          const i1 = Math.min(i0 + 1, n - 1);
          dst[i0] += (1 - (s - i0)) * src[o];
          dst[i1] += (s - i0) * src[o];
        }
      });
    }
    return { inputs: [g] };
  },
};
