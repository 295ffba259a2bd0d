// Broadcasting by axis NAME: the result has the left operand's axes, then the right's new ones.
// An axis both have must have one size, or size 1 in one of them: that operand is constant along
// the axis and spreads over the other's n entries (a per-sample [b, c, t=1] gate times a
// [b, c, t=16] video). Any other pair of sizes is VDM021.
import { fail } from './diagnostics.ts';
import type { Span } from './source.ts';
import type { Axis } from './values.ts';

export function broadcastAxes(left: readonly Axis[], right: readonly Axis[], span: Span): readonly Axis[] {
  if (left === right) return left;
  let out: Axis[] | null = null; // copied only when the right operand adds or widens an axis
  for (const [name, size] of right) {
    const at = left.findIndex(([n]) => n === name);
    if (at < 0) {
      (out ??= [...left]).push([name, size]);
      continue;
    }
    const mine = left[at][1];
    if (mine === size || size === 1) continue;
    if (mine === 1) {
      (out ??= [...left])[at] = [name, size];
      continue;
    }
    fail('VDM021', span, `axis '${name}' has size ${mine} on the left but ${size} on the right`,
      `elementwise operands must agree on every axis they share, or have size 1 there to broadcast: left ${name}=${mine}, right ${name}=${size}`);
  }
  return out ?? left;
}
