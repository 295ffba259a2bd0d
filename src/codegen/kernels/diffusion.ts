// The forward process on the GPU: x_t = sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) ε per batch entry, with the
// training target beside it (ε, v = sqrt(ᾱ_t) ε − sqrt(1 − ᾱ_t) x0, or x0) and the timestep as the
// model's f32 input. The schedule is a table [T, 2] of (sqrt ᾱ_t, sqrt(1 − ᾱ_t)) computed in float64
// on the host, so no f32 cumprod drifts; t comes from the Philox timestep kernel. Rectified flow
// uses the same kernel with the table (1 − t', t') and its target `flow`, the velocity ε − x0.
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';

export type Target = 'epsilon' | 'v' | 'x0' | 'flow';

export interface QSampleParams {
  /** batch entries; each holds `perSample` consecutive elements of x0, noise, x_t and the target */
  batch: number;
  perSample: number;
  /** number of diffusion steps T (rows of the table) */
  steps: number;
  target: Target;
  workgroupSize?: number;
}

const TARGET_WGSL: Record<Target, string> = {
  epsilon: 'e',
  v: 'a * e - s * x',
  x0: 'x',
  flow: 'e - x',
};

/**
 * Bindings: x0, noise, t (i32 [batch]), table (f32 [steps, 2]), then written: xt, timestep (f32
 * [batch]), target. Every element is written; t outside [0, T) is clamped (the generator never makes one).
 */
export function qSampleKernel(p: QSampleParams): KernelSpec {
  const wg = p.workgroupSize ?? 64;
  const n = p.batch * p.perSample;
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(p.steps) || p.steps < 1) throw new Error(`q_sample: bad sizes ${JSON.stringify(p)}`);
  if (!(p.target in TARGET_WGSL)) throw new Error(`q_sample: unknown target '${p.target}'`);
  const wgsl = `@group(0) @binding(0) var<storage, read> b_x0: array<f32>;
@group(0) @binding(1) var<storage, read> b_noise: array<f32>;
@group(0) @binding(2) var<storage, read> b_t: array<i32>;
@group(0) @binding(3) var<storage, read> b_table: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_xt: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_timestep: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_target: array<f32>;

@compute @workgroup_size(${wg})
${GRID_MAIN}
  let i = (${GRID_WORKGROUP}) * ${wg}u + lid;
  if (i >= ${n}u) { return; }
  let bi = i / ${p.perSample}u;
  let t = u32(clamp(b_t[bi], 0, ${p.steps - 1}));
  let a = b_table[2u * t];
  let s = b_table[2u * t + 1u];
  let x = b_x0[i];
  let e = b_noise[i];
  b_xt[i] = a * x + s * e;
  b_target[i] = ${TARGET_WGSL[p.target]};
  if (i < ${p.batch}u) { b_timestep[i] = f32(b_t[i]); }
}
`;
  return {
    key: `qsample:${JSON.stringify([p.batch, p.perSample, p.steps, p.target, wg])}`,
    wgsl,
    entryPoint: 'main',
    bindings: [
      { name: 'x0', access: 'read' }, { name: 'noise', access: 'read' }, { name: 't', access: 'read' }, { name: 'table', access: 'read' },
      { name: 'xt', access: 'read_write' }, { name: 'timestep', access: 'read_write' }, { name: 'target', access: 'read_write' },
    ],
    dispatch: gridFor(Math.ceil(n / wg)),
  };
}

/** The float64 reference of qSampleKernel: x_t, the timestep as a number, the target. */
export function qSampleReference(p: QSampleParams, x0: ArrayLike<number>, noise: ArrayLike<number>, t: ArrayLike<number>,
  table: ArrayLike<number>): { xt: Float64Array; timestep: Float64Array; target: Float64Array } {
  const n = p.batch * p.perSample;
  const xt = new Float64Array(n);
  const target = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const k = Math.min(Math.max(t[Math.floor(i / p.perSample)], 0), p.steps - 1);
    const [a, s, x, e] = [table[2 * k], table[2 * k + 1], x0[i], noise[i]];
    xt[i] = a * x + s * e;
    target[i] = p.target === 'epsilon' ? e : p.target === 'v' ? a * e - s * x : p.target === 'flow' ? e - x : x;
  }
  return { xt, timestep: Float64Array.from({ length: p.batch }, (_, b) => t[b]), target };
}
