// Patch sizes for patchify/unpatchify: a named tuple, or one integer for every axis but b and c.
// Each must be at least 1.
import { fail } from '../ir/diagnostics.ts';
import { resolvePerAxis, spatialAxes } from './axes.ts';
import type { BoundArgs } from './types.ts';
import type { TensorValue } from '../ir/values.ts';

export function patchSizes(a: BoundArgs, x: TensorValue): Map<string, number> {
  const setting = a.perAxis('patch');
  const names = typeof setting === 'number' ? spatialAxes(x) : setting.map(([n]) => n);
  const all = resolvePerAxis(setting, x.axes.map(([n]) => n).filter((n) => n !== 'c'), a.span('patch'), a.what('patch'), 1);
  const sizes = new Map(names.map((n) => [n, all.get(n)!]));
  for (const [ax, p] of sizes) if (p < 1) fail('VDM031', a.span('patch'), `patch size ${ax}=${p} must be at least 1`);
  return sizes;
}
