// embed(ids, classes, dim): a learned table lookup; ids [..] (i32) -> [.., c=dim]. For a label
// input, classes defaults to its table size (classes, plus one with a null class).
import { gatherKernel } from '../../codegen/kernels/embed.ts';
import { embedBackwardKernel, embedChainSumKernel, embedLinksKernel, embedLinksLength, type EmbedBackwardParams } from '../../codegen/kernels/embed-backward.ts';
import { input } from '../../codegen/kernels/expr.ts';
import { coalesce, contiguous, type View } from '../../codegen/kernels/view.ts';
import { emitElementwise, viewOver, type LowerVjpCall } from './lowering.ts';
import { fail } from '../ir/diagnostics.ts';
import { relayout } from '../ir/named-tensor.ts';
import type { Primitive } from './types.ts';

export const embed: Primitive = {
  name: 'embed',
  args: [
    { name: 'ids', kind: 'tensor' },
    { name: 'classes', kind: 'size', default: { computed: 'the label input\'s table size' } },
    { name: 'dim', kind: 'size' },
  ],
  apply(a) {
    const ids = a.tensor('ids');
    if (ids.dtype !== 'i32') fail('VDM017', a.span('ids'), "'ids' of embed must be integer labels (i32), got a f32 tensor");
    if (ids.axes.some(([n]) => n === 'c')) fail('VDM022', a.span('ids'), 'embed expects ids without a c axis');
    let classes: number;
    if (a.has('classes')) {
      classes = a.size('classes');
      if (ids.classes !== undefined && classes < ids.classes) {
        fail('VDM037', a.span('classes'), `the table has ${classes} rows, but the labels take ${ids.classes} values (ids 0 to ${ids.classes - 1}${ids.nullClass ? `, ${ids.classes - 1} the null class` : ''})`,
          `give classes: ${ids.classes}, or leave classes out: it defaults to the label input's table size`);
      }
    } else if (ids.classes !== undefined) classes = ids.classes;
    else fail('VDM015', a.callSpan, "embed needs 'classes' (the ids do not come from a label input)");
    const dim = a.size('dim');
    return {
      inputs: [ids], attrs: { classes, dim },
      outputs: [{ axes: [...ids.axes, ['c', dim]], dtype: 'f32' }],
      params: [{ leaf: 'weight', shape: [classes, dim], init: 'normal' }],
      macs: 0,
    };
  },
  // One gather: the ids buffer (i32, n = numel(ids) in a row) picks rows of the [classes, dim] weight
  // into the node's buffer as [n, dim].
  lower(call) {
    const [ids] = call.inputs;
    const n = ids.axes.reduce((a, [, k]) => a * k, 1);
    const classes = Number(call.attrs.classes);
    const dim = Number(call.attrs.dim);
    const spec = gatherKernel({ table: contiguous([classes, dim]), n, out: contiguous([n, dim]) });
    call.emit(spec, [call.params.get('weight')!, ids.buffer, call.out.buffer]);
  },
  // The table's gradient, every row written. One scan of all ids per (row, channel) while that reads
  // at most twice what the two-kernel path reads (one dispatch saved: class labels); else per-row
  // lists of ids first, so each (row, channel) walks only its own ids. Both sum in id order.
  lowerVjp(call) {
    const dtable = call.paramGrads.get('weight');
    if (!dtable) return;
    const [ids] = call.inputs;
    const n = ids.axes.reduce((a, [, k]) => a * k, 1);
    const rows = Number(call.attrs.classes);
    const dim = Number(call.attrs.dim);
    const dy = idRows(call, dim);
    const p: EmbedBackwardParams = { dtable: contiguous([rows, dim]), n, dy: dy.view };
    if (rows * dim * n <= 2 * (rows * n + (rows + n) * dim)) {
      call.emit(embedBackwardKernel(p), [ids.buffer, dy.buffer, dtable]);
      return;
    }
    const links = call.scratch('links', embedLinksLength(p)); // i32 entries
    call.emit(embedLinksKernel(p), [ids.buffer, links]);
    call.emit(embedChainSumKernel(p), [links, dy.buffer, dtable]);
  },
  // Each looked-up row of the weight gets the gradient of every output that read it (scatter-add,
  // with the reference's clamping); integer ids have no gradient.
  vjp({ inputs: [ids], attrs, grad }) {
    const classes = Number(attrs.classes);
    const dim = Number(attrs.dim);
    const g = relayout(grad, [...ids.axes, ['c', dim]]).data;
    const dw = new Float64Array(classes * dim);
    for (let i = 0; i < ids.data.length; i++) {
      const row = Math.min(Math.max(ids.data[i], 0), classes - 1);
      for (let k = 0; k < dim; k++) dw[row * dim + k] += g[i * dim + k];
    }
    return { inputs: [null], params: new Map([['weight', dw]]) };
  },
  // Row ids[..] of weight [classes, dim]; an out-of-range id is clamped to the nearest row, the bounds
  // policy of codegen/embed.ts's gather.
  reference({ inputs: [ids], params, attrs }) {
    const classes = Number(attrs.classes);
    const dim = Number(attrs.dim);
    const w = params.get('weight')!;
    const out = new Float64Array(ids.data.length * dim);
    for (let i = 0; i < ids.data.length; i++) {
      const id = ids.data[i];
      if (!Number.isInteger(id)) throw new Error(`embed: id ${id} is not an integer`);
      const row = Math.min(Math.max(id, 0), classes - 1);
      out.set(w.subarray(row * dim, (row + 1) * dim), i * dim);
    }
    return { axes: [...ids.axes, ['c', dim]], data: out };
  },
};

/**
 * The node's gradient as [n, dim] rows in the ids' order (their buffer's): a view when the id axes
 * walk the gradient as one axis, else a contiguous copy.
 */
function idRows(call: LowerVjpCall, dim: number): { view: View; buffer: string } {
  const [ids] = call.inputs;
  const n = ids.axes.reduce((a, [, k]) => a * k, 1);
  const target = [...ids.axes, ['c', dim] as const];
  const g = viewOver(call.grad, target);
  const rowsOf = coalesce(ids.axes.map(([, k]) => k), [g.strides.slice(0, -1)]);
  if (rowsOf.shape.length <= 1) {
    return { view: { shape: [n, dim], strides: [rowsOf.strides[0][0] ?? 0, g.strides[g.strides.length - 1]], offset: 0 }, buffer: call.grad.buffer };
  }
  const copy = { buffer: call.scratch('rows', n * dim), axes: target };
  emitElementwise(call, target, [call.grad], copy, input('in0'));
  return { view: contiguous([n, dim]), buffer: copy.buffer };
}
