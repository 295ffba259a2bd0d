// Broadcasting by axis NAME: the result has the left operand's axes, then the right's new ones;
// an axis both have must have one size (VDM021).
import { fail } from './diagnostics.ts';
import type { Span } from './source.ts';
import type { Axis } from './values.ts';

export function broadcastAxes(left: readonly Axis[], right: readonly Axis[], span: Span): readonly Axis[] {
  if (left === right) return left;
  let out: Axis[] | null = null; // copied only when the right operand adds an axis
  for (const [name, size] of right) {
    const mine = left.find(([n]) => n === name);
    if (!mine) {
      (out ??= [...left]).push([name, size]);
      continue;
    }
    if (mine[1] !== size) {
      fail('VDM021', span, `axis '${name}' has size ${mine[1]} on the left but ${size} on the right`,
        `elementwise operands must agree on every axis they share: left ${name}=${mine[1]}, right ${name}=${size}`);
    }
  }
  return out ?? left;
}
