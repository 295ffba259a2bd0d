// sincos(x, over, scale): a fixed 2-D/3-D sine-cosine position table with axes `over` and
// c = size(x, c). It is a buffer, not a parameter, and reads only x's sizes. `scale` multiplies the
// positions (one number for every axis, or per axis: interpolated positions as PixArt and Latte use).
import { positionTableKernel } from '../../codegen/kernels/embed.ts';
import { contiguous } from '../../codegen/kernels/view.ts';
import { asNamedNumbers, asPositive } from '../ir/convert.ts';
import { fail } from '../ir/diagnostics.ts';
import { sizeIn } from '../ir/named-tensor.ts';
import { sizeOf } from './axes.ts';
import { emitZeros } from './lowering.ts';
import { didYouMean } from '../ir/suggest.ts';
import type { BoundArgs, Primitive } from './types.ts';

export const sincos: Primitive = {
  name: 'sincos',
  args: [{ name: 'x', kind: 'tensor' }, { name: 'over', kind: 'axes' }, { name: 'scale', kind: 'per-axis', default: 1 }],
  apply(a) {
    const { x, axes: over } = a.tensorAxes('x', 'over', true);
    const dim = sizeOf(x, 'c', a.span('x'));
    const need = [0, 2, 4, 16][over.length];
    if (need === undefined) fail('VDM017', a.span('over'), `sincos builds tables over 1, 2 or 3 axes, not ${over.length}`);
    if (dim % need !== 0) {
      fail('VDM030', a.span('x'), `a position table over ${over.length} ${over.length > 1 ? 'axes' : 'axis'} needs c divisible by ${need}, got c=${dim}`,
        over.length === 3 ? 'a quarter of the channels encodes the first axis and 3/8 each of the others, in sin/cos pairs' : 'the channels are split into sin/cos pairs per axis');
    }
    const scale = scales(a, over);
    return {
      // Only a scale other than 1 is recorded: unscaled tables keep their attributes and kernels.
      inputs: [], attrs: { over, dim, ...(scale.every((v) => v === 1) ? {} : { scale }) },
      outputs: [{ axes: [...over.map((n) => [n, sizeOf(x, n, a.span('over'))] as const), ['c', dim]], dtype: 'f32' }],
      params: [], macs: 0,
    };
  },
  // One position-table kernel: grid = the `over` sizes in their order (the node's leading axes), the
  // channel blocks as the reference's, into the node's buffer as [numel(grid), dim].
  // The table depends on x's shape only: x gets a zero gradient.
  lowerVjp(call) {
    if (call.inputGrads[0]) emitZeros(call, call.inputGrads[0]);
  },
  lower(call) {
    const over = call.attrs.over as string[];
    const dim = Number(call.attrs.dim);
    const grid = over.map((n) => call.out.axes.find(([m]) => m === n)![1]);
    const scale = scaleOf(call.attrs, over.length);
    const blocks = sincosBlocks(over.length, dim).map(([axis, channels]) => (scale[axis] === 1 ? { axis, channels } : { axis, channels, scale: scale[axis] }));
    const spec = positionTableKernel({ grid, blocks, out: contiguous([grid.reduce((a, b) => a * b, 1), dim]) });
    call.emit(spec, [call.out.buffer]);
  },
  // A constant table: the shape rule gives it no tensor inputs (x is read for its sizes only), so
  // there is nothing to send a gradient to.
  vjp: () => ({ inputs: [] }),
  // codegen/embed.ts's position tables (MAE / DiT), with grid = the `over` axes in their given order:
  // 1 axis: all channels; 2 axes: first half the last axis (w of (h, w)), second half the first;
  // 3 axes: a quarter the first (t), then 3/8 the last (w), 3/8 the middle (h). Each block of C
  // channels is [sin | cos] of position * scale * base^(-k / (C / 2)), base 10000.
  reference({ attrs, axes }) {
    const over = attrs.over as string[];
    const dim = Number(attrs.dim);
    const grid = over.map((n) => sizeIn(axes, n));
    const blocks = sincosBlocks(over.length, dim);
    const scale = scaleOf(attrs, over.length);
    const out = new Float64Array(grid.reduce((a, b) => a * b, 1) * dim);
    const coords = grid.map(() => 0);
    for (let m = 0; m * dim < out.length; m++) {
      let r = m;
      for (let a = grid.length - 1; a >= 0; a--) { coords[a] = r % grid[a]; r = Math.floor(r / grid[a]); }
      let c = 0;
      for (const [axis, channels] of blocks) {
        const half = channels / 2;
        for (let j = 0; j < channels; j++, c++) {
          const arg = (coords[axis] * scale[axis]) / 10000 ** ((j % half) / half);
          out[m * dim + c] = j < half ? Math.sin(arg) : Math.cos(arg);
        }
      }
    }
    return { axes: [...over.map((n, i) => [n, grid[i]] as const), ['c', dim]], data: out };
  },
};

/** [grid axis, channels] blocks of the table, in channel order (see the reference). */
function sincosBlocks(rank: number, dim: number): [number, number][] {
  const blocks: [number, number][] = rank === 1 ? [[0, dim]]
    : rank === 2 ? [[1, dim / 2], [0, dim / 2]]
    : rank === 3 ? [[0, dim / 4], [2, (3 * dim) / 8], [1, (3 * dim) / 8]]
    : [];
  // The shape rule refuses these (VDM030); a graph built elsewhere must not get a guessed table.
  if (blocks.length === 0 || blocks.some(([, n]) => !Number.isInteger(n) || n < 2 || n % 2 !== 0)) {
    throw new Error(`sincos: no position table over ${rank} axes with c=${dim} (1 axis: c even; 2: c % 4 == 0; 3: c % 16 == 0)`);
  }
  return blocks;
}

/** The scale of each `over` axis: one positive number for all, or a named tuple (missing axes: 1). */
function scales(a: BoundArgs, over: readonly string[]): number[] {
  const v = a.value('scale');
  if (v.kind !== 'tuple') {
    const k = asPositive(v, a.span('scale'), a.what('scale'));
    return over.map(() => k);
  }
  const given = asNamedNumbers(v, a.span('scale'), a.what('scale'));
  for (const [n, k] of given) {
    if (!over.includes(n)) fail('VDM020', a.span('scale'), `${a.what('scale')} names axis '${n}', which is not among (${over.join(', ')})`, didYouMean(n, over));
    if (!(k > 0)) fail('VDM035', a.span('scale'), `${a.what('scale')}.${n} must be a positive number, got ${k}`, 'positions are multiplied by the scale: use a number > 0');
  }
  return over.map((n) => given.find(([m]) => m === n)?.[1] ?? 1);
}

const scaleOf = (attrs: Readonly<Record<string, unknown>>, rank: number): number[] =>
  Array.isArray(attrs.scale) ? (attrs.scale as number[]) : new Array<number>(rank).fill(1);
