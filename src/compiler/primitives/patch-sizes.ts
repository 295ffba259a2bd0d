// Patch sizes for patchify/unpatchify: a named tuple, or one integer for every axis but b and c.
// Each must be at least 1. Also the frame of the two shape rules.
import { fail } from '../ir/diagnostics.ts';
import { resolvePerAxis, sizeOf, spatialAxes, withSizes } from './axes.ts';
import type { BoundArgs, PrimitiveResult } from './types.ts';
import type { TensorValue } from '../ir/values.ts';

export function patchSizes(a: BoundArgs, x: TensorValue): Map<string, number> {
  const setting = a.perAxis('patch');
  const names = typeof setting === 'number' ? spatialAxes(x) : setting.map(([n]) => n);
  const all = resolvePerAxis(setting, x.axes.map(([n]) => n).filter((n) => n !== 'c'), a.span('patch'), a.what('patch'), 1);
  const sizes = new Map(names.map((n) => [n, all.get(n)!]));
  for (const [ax, p] of sizes) if (p < 1) fail('VDM031', a.span('patch'), `patch size ${ax}=${p} must be at least 1`);
  return sizes;
}

/**
 * The shape rule of patchify and unpatchify: both are relayouts of x (no parameters, no MACs) whose
 * new sizes of c and of the patched axes `resize` gives from x, the patch sizes and x's channels.
 */
export function applyPatch(a: BoundArgs, resize: (x: TensorValue, patch: Map<string, number>, c: number) => Map<string, number>): PrimitiveResult {
  const x = a.tensor('x');
  const patch = patchSizes(a, x);
  const sizes = resize(x, patch, sizeOf(x, 'c', a.span('x')));
  return {
    inputs: [x], attrs: { patch: Object.fromEntries(patch) },
    outputs: [{ axes: withSizes(x.axes, sizes), dtype: x.dtype }],
    params: [], macs: 0,
  };
}
