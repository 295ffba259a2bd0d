// patchify(x, patch, pad, order): fold non-overlapping patches into channels: n -> n/p, c -> c*prod(p).
// With pad: true an axis p does not divide is padded with zeros after its end (Video Swin's
// PatchEmbed3D and PatchMerging): n -> ceil(n/p). `order` lists the patch axes outermost first in
// the channel (default t, h, w): (w, h) is Video Swin's PatchMerging, whose 2 x 2 neighbours are
// concatenated as (h, w) = (0, 0), (1, 0), (0, 1), (1, 1).
import { fail } from '../ir/diagnostics.ts';
import type { AxisPair } from '../ir/graph.ts';
import { numelOf, position, relayout, sizeIn, stridesOf } from '../ir/named-tensor.ts';
import { product, sizeOf } from './axes.ts';
import { applyPatch } from './patch-sizes.ts';
import type { Json } from '../ir/json.ts';
import type { BoundArgs, Primitive } from './types.ts';
import { elementwiseKernel } from '../../codegen/kernels/elementwise.ts';
import { input } from '../../codegen/kernels/expr.ts';
import { emitCrop, emitPad, type LowerCall, type Value } from './lowering.ts';

/**
 * Which `--dim` would make the patch fit. The axis may be the dim itself, or the dim already
 * reduced by earlier layers (a Swin stage after patch merging), which needs a larger multiple.
 */
function dimHint(ax: string, n: number, p: number, dims: ReadonlyMap<string, number>): string {
  const dim = dims.get(ax);
  if (dim === n) return `set ${ax} to a multiple of ${p} (e.g. \`--dim ${ax}=${Math.ceil(n / p) * p}\`)`;
  if (dim !== undefined && dim > n && dim % n === 0) {
    const m = (dim / n) * p;
    return `${ax} is the dim ${ax}=${dim} reduced ${dim / n}x by earlier layers: set ${ax} to a multiple of ${m} (e.g. \`--dim ${ax}=${Math.ceil(dim / m) * m}\`)`;
  }
  return `the size of ${ax} here must be a multiple of ${p}`;
}

export const patchify: Primitive = {
  name: 'patchify',
  args: [
    { name: 'x', kind: 'tensor' }, { name: 'patch', kind: 'per-axis' }, { name: 'pad', kind: 'bool', default: false },
    { name: 'order', kind: 'axes', default: { computed: 'the patch axes t, h, w (those patched), then any other' } },
  ],
  apply(a) {
    const pad = a.bool('pad');
    const order = orderArg(a);
    const r = applyPatch(a, (x, patch, c) => {
      const sizes = new Map<string, number>();
      for (const [ax, p] of patch) {
        const n = sizeOf(x, ax, a.span('patch'));
        if (n % p !== 0 && !pad) {
          fail('VDM031', a.span('patch'), `patch size ${ax}=${p} does not divide ${ax}=${n}`, dimHint(ax, n, p, a.dims));
        }
        sizes.set(ax, Math.ceil(n / p));
      }
      sizes.set('c', c * product(patch.values()));
      return sizes;
    });
    // the attribute only where padding happens, so a dividing patch lowers as before
    const x = a.tensor('x');
    const padded = pad && Object.entries(r.attrs.patch as Record<string, number>).some(([ax, p]) => sizeOf(x, ax, a.span('patch')) % p !== 0);
    return { ...r, attrs: { ...r.attrs, ...(padded ? { pad: true } : {}), ...order(r.attrs.patch) } };
  },
  lower(call) {
    if (call.attrs.pad !== true) return lowerPatchCopy(call, call.inputs[0], call.out, true);
    // zeros over the padded sizes, x copied in, then the plain patch copy
    const xp: Value = { buffer: call.scratch('xpad', numelOf(paddedAxes(call))), axes: paddedAxes(call) };
    emitPad(call, call.inputs[0], xp);
    lowerPatchCopy({ ...call, inputs: [xp] }, xp, call.out, true);
  },
  // A permutation (and a crop): the gradient is unpatchify of the output's gradient, without the padding.
  lowerVjp(call) {
    const [dx] = call.inputGrads;
    if (!dx) return;
    if (call.attrs.pad !== true) return lowerPatchCopy({ ...call, inputs: [call.grad], out: dx }, dx, call.grad, false);
    const dxp: Value = { buffer: call.scratch('dxpad', numelOf(paddedAxes(call))), axes: paddedAxes(call) };
    lowerPatchCopy({ ...call, inputs: [call.grad], out: dxp }, dxp, call.grad, false);
    emitCrop(call, dxp, dx);
  },
  // patchMap places x's elements; with pad: true the rest of the output stays zero
  reference({ inputs: [x], attrs, axes }) {
    const to = patchMap(x.axes, axes, attrs.patch, attrs.order);
    const y = new Float64Array(numelOf(axes));
    for (let i = 0; i < to.length; i++) y[to[i]] = x.data[i];
    return { axes, data: y };
  },
  // A permutation y[to[i]] = x[i], so dx[i] = dy[to[i]]: unpatchify of the gradient.
  vjp({ inputs: [x], attrs, axes, grad }) {
    const to = patchMap(x.axes, axes, attrs.patch, attrs.order);
    const dy = relayout(grad, axes).data;
    const dx = new Float64Array(to.length);
    for (let i = 0; i < to.length; i++) dx[i] = dy[to[i]];
    return { inputs: [{ axes: x.axes, data: dx }] };
  },
};

/** The input's axes (in its order) padded to whole patches: the output's size times the patch along each patched axis. */
function paddedAxes(call: LowerCall): AxisPair[] {
  const patch = call.attrs.patch as Record<string, number>;
  return call.inputs[0].axes.map(([n, s]): AxisPair => (n in patch && n !== 'c' ? [n, sizeIn(call.node.axes, n) * Number(patch[n])] : [n, s]));
}

/**
 * patchify (toPatched) or unpatchify as one elementwise copy. The iteration space is the patched
 * tensor's axes with its channel axis split into (patch offsets in patchOrder, then c), as patchMap
 * lays the channel out; a patched axis's index i reads the unpatched one at i * p (+ the offset axis),
 * so both sides are plain strided views. Axes are ordered by the written side's strides.
 */
export function lowerPatchCopy(call: LowerCall, unpatched: Value, patched: Value, toPatched: boolean): void {
  const patch = call.attrs.patch as Record<string, number>;
  const order = patchOrder(call.attrs.patch, call.attrs.order);
  const us = stridesOf(unpatched.axes), ps = stridesOf(patched.axes);
  const u = (name: string) => us[position(unpatched.axes, name)];
  const C = sizeIn(unpatched.axes, 'c');
  const dims: { size: number; u: number; p: number }[] = [];
  patched.axes.forEach(([name, n], i) => {
    if (name !== 'c') { dims.push({ size: n, u: u(name) * Number(patch[name] ?? 1), p: ps[i] }); return; }
    const offsets: typeof dims = [];
    let inner = C * ps[i];
    for (let k = order.length - 1; k >= 0; k--) {
      const p = Number(patch[order[k]]);
      offsets.unshift({ size: p, u: u(order[k]), p: inner });
      inner *= p;
    }
    dims.push(...offsets, { size: C, u: u('c'), p: ps[i] });
  });
  const key = (d: (typeof dims)[number]) => (toPatched ? d.p : d.u);
  const sorted = dims.map((d, i) => [d, i] as const)
    .sort(([a, i], [b, j]) => key(b) - key(a) || i - j).map(([d]) => d);
  const shape = sorted.map((d) => d.size);
  const view = (side: 'u' | 'p') => ({ shape, strides: sorted.map((d) => d[side]), offset: 0 });
  const [src, dst] = toPatched ? [view('u'), view('p')] : [view('p'), view('u')];
  const spec = elementwiseKernel({ shape, inputs: [{ name: 'x', view: src }], outputs: [{ name: 'y', view: dst, expr: input('x') }] });
  call.emit(spec, [call.inputs[0].buffer, call.out.buffer]);
}

/**
 * The `order` argument of patchify and unpatchify, checked against the patch: each patch axis once.
 * Its attribute only where it differs from the default, so a spec without it lowers as before.
 */
export function orderArg(a: BoundArgs): (patch: Json) => { order?: string[] } {
  if (!a.has('order')) return () => ({});
  const order = a.axes('order');
  return (patch) => {
    const names = Object.keys(patch as Record<string, number>);
    if (order.length !== names.length || !names.every((n) => order.includes(n))) {
      fail('VDM017', a.span('order'), `'order' must list each patch axis once (${names.join(', ')}), got (${order.join(', ')})`,
        `give order: (${patchOrder(patch).join(', ')}) or another arrangement of those axes`);
    }
    return order.join() === patchOrder(patch).join() ? {} : { order };
  };
}

/**
 * The patch axes in channel order, outermost first: `order` where given, else t, h, w (those
 * patched), then any other patch axis in the order of the `patch` attribute.
 */
export function patchOrder(patch: Json, order?: Json): string[] {
  if (Array.isArray(order)) return order.map(String);
  const names = Object.keys(patch as Record<string, number>);
  return [...['t', 'h', 'w'].filter((n) => names.includes(n)), ...names.filter((n) => !['t', 'h', 'w'].includes(n))];
}

/**
 * For each element of the unpatched tensor (row-major in `unpatched`), its offset in the patched
 * one (row-major in `patched`; both in any axis order). Index n along a patch axis of size p goes
 * to n / p, its offset n % p into the channel: channel ((dt * ph + dh) * pw + dw) * C + c, the
 * offsets outermost and c innermost, as DiT's final-layer unpatchify reads it (h, w, p, q, c).
 * Each axis adds its own term to the offset, so one table per axis and an odometer suffice.
 */
export function patchMap(unpatched: readonly AxisPair[], patched: readonly AxisPair[], patchAttr: Json, orderAttr?: Json): Int32Array {
  const patch = patchAttr as Record<string, number>;
  const order = patchOrder(patchAttr, orderAttr);
  const C = sizeIn(unpatched, 'c');
  const out = stridesOf(patched);
  const cStride = out[position(patched, 'c')];
  // Stride of each patch offset within the channel index, in units of C.
  const inner = new Map<string, number>();
  let acc = 1;
  for (let i = order.length - 1; i >= 0; i--) { inner.set(order[i], acc); acc *= Number(patch[order[i]]); }
  const terms = unpatched.map(([name, n]) => {
    const stride = out[position(patched, name)];
    const p = Number(patch[name] ?? 1);
    const q = inner.get(name) ?? 0;
    return Int32Array.from({ length: n }, (_, i) => Math.floor(i / p) * stride + (i % p) * q * C * cStride);
  });
  const map = new Int32Array(numelOf(unpatched));
  const idx = unpatched.map(() => 0);
  let offset = terms.reduce((s, t) => s + t[0], 0);
  for (let flat = 0; flat < map.length; flat++) {
    map[flat] = offset;
    for (let a = unpatched.length - 1; a >= 0; a--) {
      offset -= terms[a][idx[a]];
      if (++idx[a] < unpatched[a][1]) { offset += terms[a][idx[a]]; break; }
      idx[a] = 0;
      offset += terms[a][0];
    }
  }
  return map;
}
