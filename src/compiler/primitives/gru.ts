// gru(x, over, hidden, reverse: false): a gated recurrent unit scanning one axis; c -> hidden.
import { gemmKernel } from '../../codegen/gemm.ts';
import { contractionViews, viewOver } from '../../codegen/lower.ts';
import { gruScanKernel } from '../../codegen/scan.ts';
import { contiguous } from '../../codegen/view.ts';
import { fail } from '../diagnostics.ts';
import { relayout, sizeIn } from '../named-tensor.ts';
import { numel } from '../values.ts';
import { sizeOf, withSize } from './axes.ts';
import type { Primitive } from './types.ts';

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
    const [x] = call.inputs;
    const over = String(call.attrs.over);
    const H = Number(call.attrs.hidden);
    const C = x.axes.find(([n]) => n === 'c')![1];
    const others = x.axes.filter(([n]) => n !== 'c');
    const lead = others.map(([, s]) => s);
    const xp = { buffer: call.scratch('xp', lead.reduce((a, b) => a * b, 1) * 3 * H), axes: [...others, ['c', 3 * H] as const] };
    const views = contractionViews(x, xp, 'c');
    const gemm = gemmKernel({
      a: views.a, b: { shape: [C, 3 * H], strides: [1, C], offset: 0 }, out: views.out, bias: contiguous([3 * H]), adapter: call.adapter,
    });
    call.emit(gemm, [x.buffer, call.params.get('weight_ih')!, call.params.get('bias_ih')!, xp.buffer]);
    const scan = gruScanKernel({
      hidden: H, xp: contiguous([...lead, 3 * H]), axis: others.findIndex(([n]) => n === over),
      out: viewOver(call.out, [...others, ['c', H]]), reverse: Boolean(call.attrs.reverse),
    });
    call.emit(scan, [xp.buffer, call.params.get('weight_hh')!, call.params.get('bias_hh')!, call.out.buffer]);
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
    const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
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
          const n = Math.tanh(xp[2 * H + i] + r * hp[2 * H + i]);
          next[i] = (1 - z) * n + z * h[i];
        }
        h.set(next);
        out.set(h, (row * T + step) * H);
      }
    }
    return { axes: [...batch, [over, T], ['c', H]], data: out };
  },
};
