// unpatchify(x, patch, order): the inverse of patchify: n -> n*p, c -> c/prod(p) (which must divide);
// `order` as patchify's.
import { fail } from '../ir/diagnostics.ts';
import { relayout } from '../ir/named-tensor.ts';
import { product, sizeOf } from './axes.ts';
import { applyPatch } from './patch-sizes.ts';
import { lowerPatchCopy, orderArg, patchMap } from './patchify.ts';
import type { Primitive } from './types.ts';

export const unpatchify: Primitive = {
  name: 'unpatchify',
  args: [
    { name: 'x', kind: 'tensor' }, { name: 'patch', kind: 'per-axis' },
    { name: 'order', kind: 'axes', default: { computed: 'the patch axes t, h, w (those patched), then any other' } },
  ],
  apply(a) {
    const order = orderArg(a);
    const r = applyPatch(a, (x, patch, c) => {
      const volume = product(patch.values());
      if (c % volume !== 0) {
        fail('VDM031', a.span('patch'), `patch volume ${volume} does not divide c=${c}`);
      }
      const sizes = new Map<string, number>([['c', c / volume]]);
      for (const [ax, p] of patch) sizes.set(ax, sizeOf(x, ax, a.span('patch')) * p);
      return sizes;
    });
    return { ...r, attrs: { ...r.attrs, ...order(r.attrs.patch) } };
  },
  lower: (call) => lowerPatchCopy(call, call.out, call.inputs[0], false),
  // A permutation: the gradient is patchify of the output's gradient.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (dx) lowerPatchCopy({ ...call, inputs: [call.grad], out: dx }, call.grad, dx, true);
  },
  // The exact inverse of patchify's reference (same channel order, see patchMap there).
  reference({ inputs: [x], attrs, axes }) {
    const from = patchMap(axes, x.axes, attrs.patch, attrs.order);
    const y = new Float64Array(from.length);
    for (let i = 0; i < from.length; i++) y[i] = x.data[from[i]];
    return { axes, data: y };
  },
  // A permutation y[i] = x[from[i]], so dx[from[i]] = dy[i]: patchify of the gradient.
  vjp({ inputs: [x], attrs, axes, grad }) {
    const from = patchMap(axes, x.axes, attrs.patch, attrs.order);
    const dy = relayout(grad, axes).data;
    const dx = new Float64Array(x.data.length);
    for (let i = 0; i < from.length; i++) dx[from[i]] = dy[i];
    return { inputs: [{ axes: x.axes, data: dx }] };
  },
};
