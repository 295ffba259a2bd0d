// Shared by the primitive kernel suites: fresh random inputs, a clean-compile check, and the
// comparison of GPU outputs against float64 references.
import * as assert from 'uvu/assert';
import type { KernelSpec } from '../../src/codegen/kernels/kernel.ts';
import { prng } from '../../src/compiler/reference/evaluate.ts';
import { compilationMessages } from '../../src/runtime/compile-check.ts';
import type { HostArray } from '../../src/runtime/gpu.ts';
import { runKernel } from '../runtime/kernels.ts';

/** Fresh every run; VDM_TEST_SEED=<seed from a failure message> replays a run's inputs. */
export const seed = process.env.VDM_TEST_SEED ? Number(process.env.VDM_TEST_SEED) >>> 0 : (Date.now() ^ (process.pid << 8)) >>> 0;
/** Fresh inputs every run; the seed is in every failure message. */
export const rand = prng(seed);
/** uniform in [lo, hi) */
export const randomArray = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
/**
 * |x| of every buffer: a linear op's reference run on it gives each output's magnitude (sum |term|,
 * see relError), as interpolation weights and window counts are never negative.
 */
export const absolute = <T extends Record<string, ArrayLike<number>>>(d: T) =>
  Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Float64Array.from(v, Math.abs)])) as unknown as T;

/**
 * Max over the elements the reference defines of |gpu - ref| / (|ref| + floor): relative error, with a
 * floor so that values that cancel to ~0 are judged against a scale. The floor is 1% of rms(ref), or of
 * the element's `magnitude` where that is larger: for a sum of products, sum |term|, the scale its
 * rounding error grows with (e.g. gemmReference(.., true)).
 * A NaN (an unwritten, poisoned element) on the GPU side counts as infinite error.
 */
export function relError(gpu: ArrayLike<number>, ref: ArrayLike<number>, magnitude?: ArrayLike<number>): number {
  let ss = 0, n = 0;
  for (let i = 0; i < ref.length; i++) if (!Number.isNaN(ref[i])) { ss += ref[i] * ref[i]; n++; }
  if (n === 0 && ref.length > 0) return Infinity; // a reference of NaN only compares nothing
  const floor = 0.01 * Math.sqrt(ss / Math.max(n, 1));
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(ref[i])) continue;
    const d = Math.abs(gpu[i] - ref[i]);
    // an exact match is no error, also where the reference is zero throughout (a state set to 0 * x)
    const e = d === 0 ? 0 : d / (Math.abs(ref[i]) + Math.max(floor, 0.01 * (magnitude?.[i] ?? 0)));
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

export async function assertCompilesClean(spec: KernelSpec): Promise<void> {
  const msgs = await compilationMessages(spec);
  assert.equal(msgs, [], `${spec.key}:\n${msgs.join('\n')}\n${spec.wgsl}`);
}

/**
 * Compiles (no warnings allowed), runs `spec` on `args`, and asserts that every output agrees with
 * its reference to `tol` (relError, with the outputs' `magnitudes` where given). Returns the GPU outputs.
 */
export async function expectMatches(spec: KernelSpec, args: (HostArray | number)[], refs: ArrayLike<number>[],
  what: string, tol = 1e-4, magnitudes: (ArrayLike<number> | undefined)[] = []): Promise<Float32Array[]> {
  await assertCompilesClean(spec);
  const outs = await runKernel(spec, args);
  assert.is(outs.length, refs.length, `${what}: output count`);
  outs.forEach((out, k) => {
    const err = relError(out, refs[k], magnitudes[k]);
    assert.ok(err < tol, `${what}: output ${k}: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
  });
  return outs;
}
