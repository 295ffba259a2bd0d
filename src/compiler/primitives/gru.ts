// gru(x, over, hidden, reverse: false): a gated recurrent unit scanning one axis; c -> hidden.
import { elementwiseKernel } from '../../codegen/kernels/elementwise.ts';
import { FUNCTIONS } from '../../codegen/kernels/functions.ts';
import { gemmKernel } from '../../codegen/kernels/gemm.ts';
import { reduceKernel } from '../../codegen/kernels/reduce.ts';
import { contractionViews, viewOver, weightGradViews, type LowerCall, type LowerVjpCall, type Value } from './lowering.ts';
import { gruScanKernel } from '../../codegen/kernels/scan.ts';
import { gruScanBackwardKernel } from '../../codegen/kernels/scan-backward.ts';
import { contiguous, type View } from '../../codegen/kernels/view.ts';
import { fail } from '../ir/diagnostics.ts';
import { relayout, sizeIn } from '../ir/named-tensor.ts';
import { numel } from '../ir/values.ts';
import { sizeOf, withSize } from './axes.ts';
import type { Primitive } from './types.ts';

const sigmoid = FUNCTIONS.sigmoid.f64, tanh = FUNCTIONS.tanh.f64;

export const gru: Primitive = {
  name: 'gru',
  args: [
    { name: 'x', kind: 'tensor' },
    { name: 'over', kind: 'axis' },
    { name: 'hidden', kind: 'size' },
    { name: 'reverse', kind: 'bool', default: false },
  ],
  apply(a) {
    const x = a.tensor('x');
    const over = a.axis('over');
    if (over === 'c') fail('VDM017', a.span('over'), "'over' of gru cannot be the channel axis c");
    sizeOf(x, over, a.span('over'));
    const c = sizeOf(x, 'c', a.span('x'));
    const h = a.size('hidden');
    const reverse = a.bool('reverse');
    return {
      inputs: [x], attrs: { over, hidden: h, reverse },
      outputs: [{ axes: withSize(x.axes, 'c', h), dtype: 'f32' }],
      params: [
        { leaf: 'weight_ih', shape: [3 * h, c], init: 'default' },
        { leaf: 'weight_hh', shape: [3 * h, h], init: 'default' },
        { leaf: 'bias_ih', shape: [3 * h], init: 'zeros' },
        { leaf: 'bias_hh', shape: [3 * h], init: 'zeros' },
      ],
      macs: (numel(x.axes) / c) * 3 * h * (c + h),
    };
  },
  // PyTorch initialises every GRU weight and bias uniform in ±1/sqrt(hidden) (shape[0] is 3 * hidden).
  fans: (_leaf, shape) => [shape[0] / 3, shape[0] / 3],
  // Two dispatches. A GEMM projects every step at once into a scratch xp, contiguous over
  // [...x's axes but c, 3H]: xp = x @ weight_ih^T + bias_ih (B = weight_ih [3H, c] read transposed,
  // strides [1, c]). Then the scan over `over` (the other axes batch rows) writes h into the node's
  // buffer, viewed in the same order with c = H last.
  lower(call) {
    const { xp, others, lead, H } = emitInputProjection(call);
    const over = String(call.attrs.over);
    const scan = gruScanKernel({
      hidden: H, xp: contiguous([...lead, 3 * H]), axis: others.findIndex(([n]) => n === over),
      out: viewOver(call.out, [...others, ['c', H]]), reverse: Boolean(call.attrs.reverse),
    });
    call.emit(scan, [xp.buffer, call.params.get('weight_hh')!, call.params.get('bias_hh')!, call.out.buffer]);
  },
  lowerVjp: lowerGruVjp,
  // Backpropagation through time: the forward scan again, keeping each step's h_prev, r, z, n and
  // W_hn h + b_hn, then the steps in the opposite order with dh = g[step] + (carried from the later step):
  //   dn = dh (1 - z)   dz = dh (h_prev - n)   dh_prev = dh z
  //   da_n = dn (1 - n^2): dxp_n = da_n, dhp_n = da_n r, dr = da_n hp_n
  //   dxp_z = dhp_z = dz z (1 - z)   dxp_r = dhp_r = dr r (1 - r)
  //   xp = W_ih x + b_ih: dx += W_ih^T dxp, dW_ih += dxp x^T, db_ih += dxp
  //   hp = W_hh h + b_hh: dh_prev += W_hh^T dhp, dW_hh += dhp h^T, db_hh += dhp
  vjp({ inputs: [x], params, attrs, grad }) {
    const over = String(attrs.over);
    const H = Number(attrs.hidden);
    const C = sizeIn(x.axes, 'c');
    const T = sizeIn(x.axes, over);
    const batch = x.axes.filter(([n]) => n !== over && n !== 'c');
    const xAxes = [...batch, [over, T] as const, ['c', C] as const];
    const xs = relayout(x, xAxes).data;
    const gs = relayout(grad, [...batch, [over, T], ['c', H]]).data;
    const wih = params.get('weight_ih')!, whh = params.get('weight_hh')!;
    const bih = params.get('bias_ih')!, bhh = params.get('bias_hh')!;
    const rows = xs.length / (T * C);
    const dx = new Float64Array(xs.length);
    const dwih = new Float64Array(3 * H * C), dwhh = new Float64Array(3 * H * H);
    const dbih = new Float64Array(3 * H), dbhh = new Float64Array(3 * H);
    // per scan position s: the state before it and its gates, each [T, H]
    const hPrev = new Float64Array(T * H), R = new Float64Array(T * H), Z = new Float64Array(T * H);
    const N = new Float64Array(T * H), HN = new Float64Array(T * H);
    const h = new Float64Array(H), xp = new Float64Array(3 * H), hp = new Float64Array(3 * H);
    const dh = new Float64Array(H), dprev = new Float64Array(H), dxp = new Float64Array(3 * H), dhp = new Float64Array(3 * H);
    const stepOf = (s: number) => (attrs.reverse ? T - 1 - s : s);
    for (let row = 0; row < rows; row++) {
      h.fill(0);
      for (let s = 0; s < T; s++) {
        const xo = (row * T + stepOf(s)) * C;
        for (let g = 0; g < 3 * H; g++) {
          let a = bih[g];
          for (let k = 0; k < C; k++) a += wih[g * C + k] * xs[xo + k];
          xp[g] = a;
          let b = bhh[g];
          for (let k = 0; k < H; k++) b += whh[g * H + k] * h[k];
          hp[g] = b;
        }
        hPrev.set(h, s * H);
        for (let i = 0; i < H; i++) {
          const r = sigmoid(xp[i] + hp[i]);
          const z = sigmoid(xp[H + i] + hp[H + i]);
          const n = tanh(xp[2 * H + i] + r * hp[2 * H + i]);
          R[s * H + i] = r; Z[s * H + i] = z; N[s * H + i] = n; HN[s * H + i] = hp[2 * H + i];
        }
        for (let i = 0; i < H; i++) h[i] = (1 - Z[s * H + i]) * N[s * H + i] + Z[s * H + i] * h[i];
      }
      dh.fill(0);
      for (let s = T - 1; s >= 0; s--) {
        const step = stepOf(s);
        const xo = (row * T + step) * C;
        for (let i = 0; i < H; i++) {
          const q = s * H + i;
          const d = dh[i] + gs[(row * T + step) * H + i];
          const r = R[q], z = Z[q], n = N[q];
          const dz = d * (hPrev[q] - n) * z * (1 - z);
          const dan = d * (1 - z) * (1 - n * n);
          const dr = dan * HN[q] * r * (1 - r);
          dxp[i] = dr; dhp[i] = dr;
          dxp[H + i] = dz; dhp[H + i] = dz;
          dxp[2 * H + i] = dan; dhp[2 * H + i] = dan * r;
          dprev[i] = d * z;
        }
        for (let g = 0; g < 3 * H; g++) {
          dbih[g] += dxp[g];
          dbhh[g] += dhp[g];
          for (let k = 0; k < C; k++) {
            dx[xo + k] += wih[g * C + k] * dxp[g];
            dwih[g * C + k] += dxp[g] * xs[xo + k];
          }
          for (let k = 0; k < H; k++) {
            dprev[k] += whh[g * H + k] * dhp[g];
            dwhh[g * H + k] += dhp[g] * hPrev[s * H + k];
          }
        }
        dh.set(dprev);
      }
    }
    return {
      inputs: [{ axes: xAxes, data: dx }],
      params: new Map([['weight_ih', dwih], ['weight_hh', dwhh], ['bias_ih', dbih], ['bias_hh', dbhh]]),
    };
  },
  // PyTorch's GRU as codegen/scan.ts's gruReference, gates r|z|n, h_0 = 0:
  //   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
  //   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  h' = (1 - z) * n + z * h
  // Every axis but `over` and c is a batch row; laid out as [...batch, over, c]. reverse scans from
  // the last step and still writes each state at its own step.
  reference({ inputs: [x], params, attrs }) {
    const over = String(attrs.over);
    const H = Number(attrs.hidden);
    const C = sizeIn(x.axes, 'c');
    const T = sizeIn(x.axes, over);
    const batch = x.axes.filter(([n]) => n !== over && n !== 'c');
    const t = relayout(x, [...batch, [over, T], ['c', C]]);
    const wih = params.get('weight_ih')!, whh = params.get('weight_hh')!;
    const bih = params.get('bias_ih')!, bhh = params.get('bias_hh')!;
    const rows = t.data.length / (T * C);
    const out = new Float64Array(rows * T * H);
    const h = new Float64Array(H), next = new Float64Array(H), xp = new Float64Array(3 * H), hp = new Float64Array(3 * H);
    for (let row = 0; row < rows; row++) {
      h.fill(0);
      for (let s = 0; s < T; s++) {
        const step = attrs.reverse ? T - 1 - s : s;
        const xo = (row * T + step) * C;
        for (let g = 0; g < 3 * H; g++) {
          let a = bih[g];
          for (let k = 0; k < C; k++) a += wih[g * C + k] * t.data[xo + k];
          xp[g] = a;
          let b = bhh[g];
          for (let k = 0; k < H; k++) b += whh[g * H + k] * h[k];
          hp[g] = b;
        }
        for (let i = 0; i < H; i++) {
          const r = sigmoid(xp[i] + hp[i]);
          const z = sigmoid(xp[H + i] + hp[H + i]);
          const n = tanh(xp[2 * H + i] + r * hp[2 * H + i]);
          next[i] = (1 - z) * n + z * h[i];
        }
        h.set(next);
        out.set(h, (row * T + step) * H);
      }
    }
    return { axes: [...batch, [over, T], ['c', H]], data: out };
  },
};

/** The forward's first dispatch: xp = x @ weight_ih^T + bias_ih into a scratch [...x's axes but c, 3H]. */
function emitInputProjection(call: LowerCall) {
  const [x] = call.inputs;
  const H = Number(call.attrs.hidden);
  const C = x.axes.find(([n]) => n === 'c')![1];
  const others = x.axes.filter(([n]) => n !== 'c');
  const lead = others.map(([, s]) => s);
  const xp: Value = { buffer: call.scratch('xp', lead.reduce((a, b) => a * b, 1) * 3 * H), axes: [...others, ['c', 3 * H]] };
  const views = contractionViews(x, xp, 'c');
  const gemm = gemmKernel({
    a: views.a, b: { shape: [C, 3 * H], strides: [1, C], offset: 0 }, out: views.out, bias: contiguous([3 * H]), adapter: call.adapter,
  });
  call.emit(gemm, [x.buffer, call.params.get('weight_ih')!, call.params.get('bias_ih')!, xp.buffer]);
  return { xp, others, lead, H, C };
}

/**
 * Backpropagation through time. The forward scratch is not kept, so xp is projected again; the
 * states are the node's value, copied one step along the scan into hprev (zeros before the first
 * step) so that the backward scan (kernels/scan-backward.ts) and the dW_hh GEMM read each step's
 * starting state from one contiguous buffer. The scan writes d xp and d (W_hh h + b_hh) per step;
 * everything summed over (row, step) pairs is then a GEMM or a reduction over them, no atomics:
 *   dW_hh = dhp^T hprev   db_hh = sum dhp   dW_ih = dxp^T x   db_ih = sum dxp   dx = dxp W_ih
 * All scratch rows are x's axes but c, in x's order, with the gate/unit axis last.
 */
function lowerGruVjp(call: LowerVjpCall): void {
  const [x] = call.inputs;
  const { xp, others, lead, H, C } = emitInputProjection(call);
  const ti = others.findIndex(([n]) => n === String(call.attrs.over));
  const T = lead[ti];
  const reverse = Boolean(call.attrs.reverse);
  const R = lead.reduce((a, b) => a * b, 1);
  const rows = (name: string, width: number): Value => ({ buffer: call.scratch(name, R * width), axes: [...others, ['c', width]] });
  const hprev = rows('hprev', H), dxp = rows('dxp', 3 * H), dhp = rows('dhp', 3 * H);

  // hprev[t] = h[t - 1] (h[t + 1] reversed); the first scanned step starts from zeros
  const hView = contiguous([...lead, H]);
  const withStep = (v: View, size: number, step: number): View => ({
    shape: v.shape.map((n, i) => (i === ti ? size : n)), strides: v.strides, offset: v.offset + step * v.strides[ti],
  });
  if (T > 1) {
    const src = viewOver(call.out, [...others, ['c', H]]);
    const [from, to] = reverse ? [1, 0] : [0, 1];
    const dst = withStep(hView, T - 1, to);
    call.emit(elementwiseKernel({
      shape: dst.shape, inputs: [{ name: 'h', view: withStep(src, T - 1, from) }],
      outputs: [{ name: 'hprev', view: dst, expr: { op: 'input', name: 'h' } }],
    }), [call.out.buffer, hprev.buffer]);
  }
  const first = withStep(hView, 1, reverse ? T - 1 : 0);
  call.emit(elementwiseKernel({ shape: first.shape, inputs: [], outputs: [{ name: 'hprev', view: first, expr: { op: 'const', value: 0 } }] }), [hprev.buffer]);

  const whh = call.params.get('weight_hh')!, wih = call.params.get('weight_ih')!;
  call.emit(gruScanBackwardKernel({
    hidden: H, axis: ti, reverse, xp: contiguous([...lead, 3 * H]), hprev: hView,
    dy: viewOver(call.grad, [...others, ['c', H]]), dxp: contiguous([...lead, 3 * H]), dhp: contiguous([...lead, 3 * H]),
  }), [xp.buffer, whh, call.params.get('bias_hh')!, hprev.buffer, call.grad.buffer, dxp.buffer, dhp.buffer]);

  const dwhh = call.paramGrads.get('weight_hh');
  if (dwhh) {
    const a: View = { shape: [3 * H, R], strides: [1, 3 * H], offset: 0 };
    call.emit(gemmKernel({ a, b: contiguous([R, H]), out: contiguous([3 * H, H]), adapter: call.adapter }), [dhp.buffer, hprev.buffer, dwhh]);
  }
  const columnSum = (src: Value, dst: string | undefined) => {
    if (dst) call.emit(reduceKernel({ op: 'sum', x: contiguous([R, 3 * H]), axes: [0], y: contiguous([3 * H]) }), [src.buffer, dst]);
  };
  columnSum(dhp, call.paramGrads.get('bias_hh'));
  columnSum(dxp, call.paramGrads.get('bias_ih'));
  const dwih = call.paramGrads.get('weight_ih');
  if (dwih) {
    // dW_ih [3H, C] = dxp^T x; partial products per batch entry where x's rows do not coalesce (c not last)
    const { a, b, batch } = weightGradViews(dxp, x, 'c', 'c');
    const partials = batch.length ? call.scratch('dw_ih', batch.reduce((m, n) => m * n, 1) * 3 * H * C) : dwih;
    call.emit(gemmKernel({ a, b, out: contiguous([...batch, 3 * H, C]), adapter: call.adapter }), [dxp.buffer, x.buffer, partials]);
    if (batch.length) {
      call.emit(reduceKernel({ op: 'sum', x: contiguous([...batch, 3 * H, C]), axes: batch.map((_, i) => i), y: contiguous([3 * H, C]) }), [partials, dwih]);
    }
  }
  const dx = call.inputGrads[0];
  if (dx) {
    const { a, out } = contractionViews(dxp, dx, 'c');
    call.emit(gemmKernel({ a, b: contiguous([3 * H, C]), out, adapter: call.adapter }), [dxp.buffer, wih, dx.buffer]);
  }
}
