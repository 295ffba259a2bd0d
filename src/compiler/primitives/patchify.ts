// patchify(x, patch): fold non-overlapping patches into channels: n -> n/p, c -> c*prod(p).
import { fail } from '../diagnostics.ts';
import { product, sizeOf, withSizes } from './axes.ts';
import { patchSizes } from './patch-sizes.ts';
import type { Primitive } from './types.ts';

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
    { name: 'x', kind: 'tensor' },
    { name: 'patch', kind: 'per-axis' },
  ],
  apply(a) {
    const x = a.tensor('x');
    const patch = patchSizes(a, x);
    const c = sizeOf(x, 'c', a.span('x'));
    const sizes = new Map<string, number>();
    for (const [ax, p] of patch) {
      const n = sizeOf(x, ax, a.span('patch'));
      if (n % p !== 0) {
        fail('VDM031', a.span('patch'), `patch size ${ax}=${p} does not divide ${ax}=${n}`, dimHint(ax, n, p, a.dims));
      }
      sizes.set(ax, n / p);
    }
    sizes.set('c', c * product(patch.values()));
    return {
      inputs: [x], attrs: { patch: Object.fromEntries(patch) },
      outputs: [{ axes: withSizes(x.axes, sizes), dtype: x.dtype }],
      params: [], macs: 0,
    };
  },
};
