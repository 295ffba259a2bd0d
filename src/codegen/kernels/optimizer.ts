// The optimizer step on the GPU, over one flat f32 arena holding every parameter (and arenas of the
// same layout for the gradients, the AdamW moments m and v, and the EMA weights):
//   1. gradient norm: per-chunk sums of squares (gradNormPartialsKernel), then one workgroup adds
//      them up and takes the square root (l2FinishKernel): a fixed tree, so the result is the same
//      on every run;
//   2. nonfinite check: counts NaN / Inf gradients and finds the first one's arena index (atomicMin)
//      for the training loop to map back to a parameter (segmentAt);
//   3. AdamW (torch.optim.AdamW: decoupled weight decay, bias correction) with global-norm clipping
//      (torch.nn.utils.clip_grad_norm_) and the EMA update, in one pass that reads the norm on the GPU.
// Beside them: their float64 references, the AdamWParams uniform (adamwParams) and the warm-up +
// cosine learning-rate schedule (learningRate).
//
// The arena is described by segments (one per parameter tensor): elements outside every segment
// (alignment padding between tensors) are never read or written. The kernels sweep a chunk table
// that splits each segment into chunks of at most `chunkSize` elements, one workgroup per chunk, so
// a workgroup reads its bounds and its weight-decay flag once, whatever the number of tensors:
//   chunk table: array<vec4u>, chunk c = (begin, end, flags, segment); flags bit 0: weight decay
// Kernels depend only on the number of chunks (and the workgroup size), not on the arena's layout.
import { GRID_MAIN, GRID_WORKGROUP, gridFor, type KernelSpec } from './kernel.ts';
import { l2FinishKernel, workgroupSumKernel } from './reduce.ts';

/** One parameter tensor in the arena: elements [offset, offset + length). */
export interface ArenaSegment {
  offset: number;
  length: number;
  /** false for parameters excluded from weight decay (biases, norm gains, embeddings, ...) */
  weightDecay: boolean;
}

export interface ArenaLayout {
  segments: readonly ArenaSegment[];
  /** most elements per chunk (one workgroup each); default 4096 */
  chunkSize?: number;
  /** default OPTIMIZER_WORKGROUP (a power of two) */
  workgroupSize?: number;
}

export const DECAY_FLAG = 1;

/** The optimizer kernels' default workgroup size; the gradient norm's finish uses it too. */
export const OPTIMIZER_WORKGROUP = 64;

function settings(l: ArenaLayout) {
  const chunkSize = l.chunkSize ?? 4096;
  const wg = l.workgroupSize ?? OPTIMIZER_WORKGROUP;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new Error(`optimizer: chunkSize must be a positive integer (got ${chunkSize})`);
  if (!Number.isInteger(Math.log2(wg))) throw new Error(`optimizer: workgroup size must be a power of two (got ${wg})`);
  if (l.segments.length === 0) throw new Error('optimizer: the arena has no segments');
  const sorted = [...l.segments].sort((a, b) => a.offset - b.offset);
  sorted.forEach((s, i) => {
    if (!Number.isInteger(s.offset) || s.offset < 0 || !Number.isInteger(s.length) || s.length < 1) {
      throw new Error(`optimizer: segment [${s.offset}, +${s.length}) needs an integer offset >= 0 and length >= 1`);
    }
    if (s.offset + s.length > 0xffffffff) throw new Error('optimizer: the arena exceeds 2^32 - 1 elements');
    if (i > 0 && sorted[i - 1].offset + sorted[i - 1].length > s.offset) throw new Error(`optimizer: segments at ${sorted[i - 1].offset} and ${s.offset} overlap`);
  });
  const chunks = l.segments.reduce((n, s) => n + Math.ceil(s.length / chunkSize), 0);
  return { chunkSize, wg, chunks };
}

/** Number of chunks (workgroups) of a layout: the gradient-norm partials count. */
export const chunkCount = (l: ArenaLayout) => settings(l).chunks;

/** The chunk table buffer (4 u32 per chunk: begin, end, flags, segment index), in segment order. */
export function chunkTable(l: ArenaLayout): Uint32Array {
  const { chunkSize, chunks } = settings(l);
  const out = new Uint32Array(4 * chunks);
  let c = 0;
  l.segments.forEach((s, k) => {
    for (let b = s.offset; b < s.offset + s.length; b += chunkSize, c++) {
      out.set([b, Math.min(b + chunkSize, s.offset + s.length), s.weightDecay ? DECAY_FLAG : 0, k], 4 * c);
    }
  });
  return out;
}

/** The segment holding arena element `index` (e.g. the first nonfinite gradient), or undefined in padding. */
export function segmentAt(segments: readonly ArenaSegment[], index: number): { segment: number; element: number } | undefined {
  const k = segments.findIndex((s) => index >= s.offset && index < s.offset + s.length);
  return k < 0 ? undefined : { segment: k, element: index - segments[k].offset };
}

const CHUNK_HEADER = '@group(0) @binding(0) var<storage, read> b_chunks: array<vec4u>;';
// Every kernel: one workgroup per chunk; the early return is uniform over the workgroup.
const CHUNK_READ = '  let chunk = b_chunks[g];';
const chunkPrologue = (chunks: number) => [`  let g = ${GRID_WORKGROUP};`, `  if (g >= ${chunks}u) { return; }`, CHUNK_READ];
const NONFINITE = (x: string) => `(bitcast<u32>(${x}) & 0x7f800000u) == 0x7f800000u`; // WGSL may assume no NaN: test the bits

// ---------------------------------------------------------------- 1. gradient norm

/** Stage 1: partials[c] = sum of grad^2 over chunk c. Bindings: chunks, grad, partials (chunkCount floats). */
export function gradNormPartialsKernel(l: ArenaLayout): KernelSpec {
  const { wg, chunks } = settings(l);
  return workgroupSumKernel({
    key: `gradnorm:${chunks}:${wg}`,
    decls: [
      CHUNK_HEADER,
      '@group(0) @binding(1) var<storage, read> b_grad: array<f32>;',
      '@group(0) @binding(2) var<storage, read_write> b_partials: array<f32>;',
    ],
    bindings: [{ name: 'chunks', access: 'read' }, { name: 'grad', access: 'read' }, { name: 'partials', access: 'read_write' }],
    wg,
    groups: chunks,
    head: [CHUNK_READ],
    accumulate: [
      `  for (var i = chunk.x + lid; i < chunk.y; i += ${wg}u) {`,
      '    let v = b_grad[i];',
      '    acc += v * v;',
      '  }',
    ],
    store: 'b_partials[g] = total;',
  });
}

/**
 * Both stages of the global gradient norm: partials (chunks, grad, partials) then finish
 * (partials, norm: 1 float, the L2 norm over every segment).
 */
export function gradNormKernels(l: ArenaLayout): { partials: KernelSpec; finish: KernelSpec; count: number } {
  const { wg, chunks } = settings(l);
  return { partials: gradNormPartialsKernel(l), finish: l2FinishKernel(chunks, wg), count: chunks };
}

/** Float64 reference: the L2 norm of the gradient over every segment. */
export function gradNormReference(segments: readonly ArenaSegment[], grad: ArrayLike<number>): number {
  let s = 0;
  for (const seg of segments) for (let i = seg.offset; i < seg.offset + seg.length; i++) s += grad[i] * grad[i];
  return Math.sqrt(s);
}

// ---------------------------------------------------------------- 2. nonfinite gradients

/** flag[0]: how many gradients are NaN or ±Inf; flag[1]: the arena index of the first (NO_INDEX: none). */
export const NO_INDEX = 0xffffffff;

/** Resets the flag buffer to (0, NO_INDEX): dispatch it before nonfiniteKernel. Bindings: flag (2 u32). */
export function nonfiniteClearKernel(): KernelSpec {
  return {
    key: 'nonfinite-clear',
    wgsl: [
      '@group(0) @binding(0) var<storage, read_write> b_flag: array<u32, 2>;',
      '@compute @workgroup_size(1)',
      'fn main() {',
      '  b_flag[0] = 0u;',
      `  b_flag[1] = ${NO_INDEX}u;`,
      '}',
      '',
    ].join('\n'),
    entryPoint: 'main',
    bindings: [{ name: 'flag', access: 'read_write' }],
    dispatch: [1, 1, 1],
  };
}

/**
 * Adds the number of nonfinite gradients to flag[0] and lowers flag[1] to the first one's index.
 * Each workgroup combines its lanes in workgroup atomics first: one global atomic per workgroup
 * that found any. Bindings: chunks, grad, flag (2 u32, cleared by nonfiniteClearKernel).
 */
export function nonfiniteKernel(l: ArenaLayout): KernelSpec {
  const { wg, chunks } = settings(l);
  const wgsl = [
    CHUNK_HEADER,
    '@group(0) @binding(1) var<storage, read> b_grad: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> b_flag: array<atomic<u32>, 2>;',
    'var<workgroup> wg_count: atomic<u32>;',
    'var<workgroup> wg_first: atomic<u32>;',
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    `  let g = ${GRID_WORKGROUP};`,
    `  if (g >= ${chunks}u) { return; }`,
    `  if (lid == 0u) { atomicStore(&wg_first, ${NO_INDEX}u); } // wg_count starts at 0`,
    '  workgroupBarrier();',
    '  let chunk = b_chunks[g];',
    '  var count = 0u;',
    `  var first = ${NO_INDEX}u;`,
    `  for (var i = chunk.x + lid; i < chunk.y; i += ${wg}u) {`,
    `    if (${NONFINITE('b_grad[i]')}) {`,
    '      count += 1u;',
    '      first = min(first, i);',
    '    }',
    '  }',
    '  if (count > 0u) {',
    '    atomicAdd(&wg_count, count);',
    '    atomicMin(&wg_first, first);',
    '  }',
    '  workgroupBarrier();',
    '  if (lid == 0u) {',
    '    let n = atomicLoad(&wg_count);',
    '    if (n > 0u) {',
    '      atomicAdd(&b_flag[0], n);',
    '      atomicMin(&b_flag[1], atomicLoad(&wg_first));',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
  return {
    key: `nonfinite:${chunks}:${wg}`,
    wgsl,
    entryPoint: 'main',
    bindings: [{ name: 'chunks', access: 'read' }, { name: 'grad', access: 'read' }, { name: 'flag', access: 'read_write' }],
    dispatch: gridFor(chunks),
  };
}

/** Reference: [count of nonfinite gradients in the segments, index of the first or NO_INDEX]. */
export function nonfiniteReference(segments: readonly ArenaSegment[], grad: ArrayLike<number>): [number, number] {
  let count = 0, first = NO_INDEX;
  for (const seg of segments) {
    for (let i = seg.offset; i < seg.offset + seg.length; i++) {
      if (!Number.isFinite(grad[i])) { count++; first = Math.min(first, i); }
    }
  }
  return [count, first];
}

// ---------------------------------------------------------------- 3. AdamW + clipping + EMA

export interface AdamWConfig {
  /** (beta1, beta2); default (0.9, 0.999) */
  betas?: readonly [number, number];
  /** default 1e-8 */
  eps?: number;
  /** decoupled weight decay for segments with weightDecay; default 0.01 (PyTorch's AdamW) */
  weightDecay?: number;
  /** clip the global gradient norm to this; <= 0: no clipping. Default 1 */
  maxGradNorm?: number;
  /** ema = d · ema + (1 - d) · param after each update, d = emaDecay (default 0.9999) or less, see emaWarmup */
  emaDecay?: number;
  /**
   * d = min(emaDecay, (1 + step) / (10 + step)) at update `step` (default true), as diffusers'
   * EMAModel does: a run of a few thousand steps then averages over its last few hundred instead
   * of keeping mostly the initial weights (0.9999^4000 = 0.67).
   */
  emaWarmup?: boolean;
}

/** The EMA decay of update `step` (1-based). */
export function emaDecayAt(c: AdamWConfig, step: number): number {
  const d = c.emaDecay ?? 0.9999;
  return (c.emaWarmup ?? true) ? Math.min(d, (1 + step) / (10 + step)) : d;
}

function hyper(c: AdamWConfig) {
  const [beta1, beta2] = c.betas ?? [0.9, 0.999];
  const h = { beta1, beta2, eps: c.eps ?? 1e-8, weightDecay: c.weightDecay ?? 0.01, maxGradNorm: c.maxGradNorm ?? 1, emaDecay: c.emaDecay ?? 0.9999 };
  for (const [name, v] of [['beta1', beta1], ['beta2', beta2], ['emaDecay', h.emaDecay]] as const) {
    if (!(v >= 0 && v < 1)) throw new Error(`adamw: ${name} must be in [0, 1) (got ${v})`);
  }
  if (!(h.eps > 0) || !(h.weightDecay >= 0) || !Number.isFinite(h.maxGradNorm)) throw new Error(`adamw: needs eps > 0, weightDecay >= 0 and a finite maxGradNorm (got ${h.eps}, ${h.weightDecay}, ${h.maxGradNorm})`);
  return h;
}

/** Field order of the AdamWParams uniform (12 f32, 48 bytes). */
export const ADAMW_FIELDS = ['lr', 'beta1', 'beta2', 'eps', 'weight_decay', 'max_norm', 'ema_decay',
  'one_minus_beta1', 'one_minus_beta2', 'one_minus_ema_decay', 'bias_correction1', 'bias_correction2'] as const;

/**
 * The AdamWParams uniform for update number `step` (1-based, as PyTorch counts) at learning rate `lr`
 * (learningRate(schedule, step)). The step enters through the bias corrections 1 - beta^step, and
 * they and every 1 - x are computed here in float64: in f32 on the GPU, 1 - 0.999^3 would lose
 * 4-5 digits to cancellation, and 1 - f32(0.999) is off by 1e-5 relative.
 */
export function adamwParams(c: AdamWConfig, lr: number, step: number): Float32Array {
  const h = hyper(c);
  if (!Number.isInteger(step) || step < 1) throw new Error(`adamw: step must be a positive integer, counted from 1 (got ${step})`);
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`adamw: lr must be finite and >= 0 (got ${lr})`);
  const emaDecay = emaDecayAt(c, step);
  const values: Record<(typeof ADAMW_FIELDS)[number], number> = {
    lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weight_decay: h.weightDecay, max_norm: h.maxGradNorm, ema_decay: emaDecay,
    one_minus_beta1: 1 - h.beta1, one_minus_beta2: 1 - h.beta2, one_minus_ema_decay: 1 - emaDecay,
    bias_correction1: -Math.expm1(step * Math.log(h.beta1)), bias_correction2: -Math.expm1(step * Math.log(h.beta2)),
  };
  return Float32Array.from(ADAMW_FIELDS, (f) => values[f]);
}

export interface AdamWKernelParams extends ArenaLayout {
  /** update the EMA arena too (default true) */
  ema?: boolean;
}

/**
 * One AdamW step over every segment. Bindings: params (uniform AdamWParams, adamwParams()), chunks,
 * norm (1 float, from gradNormKernels), grad, then read_write param, m, v and (unless ema: false) ema.
 * Per element, with clip = min(1, max_norm / (norm + 1e-6)) (1 when max_norm <= 0):
 *   g = clip · grad;  m = β1 m + (1 - β1) g;  v = β2 v + (1 - β2) g²
 *   param = param · (1 - lr · wd) - (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps)   (wd = 0 outside decayed segments)
 *   ema = d · ema + (1 - d) · param
 * When the norm is NaN or Inf (a nonfinite gradient), nothing is written: the step is skipped rather
 * than spreading NaN into the weights; nonfiniteKernel says where it came from.
 */
export function adamwKernel(p: AdamWKernelParams): KernelSpec {
  const { wg, chunks } = settings(p);
  const ema = p.ema ?? true;
  const wgsl = [
    `struct AdamWParams { ${ADAMW_FIELDS.map((f) => `${f}: f32`).join(', ')} }`,
    '@group(0) @binding(0) var<uniform> hp: AdamWParams;',
    CHUNK_HEADER.replace('binding(0)', 'binding(1)'),
    '@group(0) @binding(2) var<storage, read> b_norm: array<f32>;',
    '@group(0) @binding(3) var<storage, read> b_grad: array<f32>;',
    '@group(0) @binding(4) var<storage, read_write> b_param: array<f32>;',
    '@group(0) @binding(5) var<storage, read_write> b_m: array<f32>;',
    '@group(0) @binding(6) var<storage, read_write> b_v: array<f32>;',
    ema ? '@group(0) @binding(7) var<storage, read_write> b_ema: array<f32>;' : '',
    `@compute @workgroup_size(${wg})`,
    GRID_MAIN,
    ...chunkPrologue(chunks),
    '  let norm = b_norm[0];',
    `  if (${NONFINITE('norm')}) { return; }`,
    '  let clip = select(1.0, min(1.0, hp.max_norm / (norm + 1e-6)), hp.max_norm > 0.0);',
    `  let decay = select(1.0, 1.0 - hp.lr * hp.weight_decay, (chunk.z & ${DECAY_FLAG}u) != 0u);`,
    '  let step_size = hp.lr / hp.bias_correction1;',
    '  let bc2_sqrt = sqrt(hp.bias_correction2);',
    `  for (var i = chunk.x + lid; i < chunk.y; i += ${wg}u) {`,
    '    let g = clip * b_grad[i];',
    '    let m = hp.beta1 * b_m[i] + hp.one_minus_beta1 * g;',
    '    let v = hp.beta2 * b_v[i] + hp.one_minus_beta2 * (g * g);',
    '    let param = b_param[i] * decay - step_size * m / (sqrt(v) / bc2_sqrt + hp.eps);',
    '    b_m[i] = m;',
    '    b_v[i] = v;',
    '    b_param[i] = param;',
    ema ? '    b_ema[i] = hp.ema_decay * b_ema[i] + hp.one_minus_ema_decay * param;' : '',
    '  }',
    '}',
    '',
  ].filter((line) => line !== '').join('\n');
  const rw = (name: string) => ({ name, access: 'read_write' as const });
  return {
    key: `adamw:${chunks}:${wg}:${ema ? 'ema' : 'noema'}`,
    wgsl,
    entryPoint: 'main',
    bindings: [
      { name: 'params', access: 'uniform' }, { name: 'chunks', access: 'read' }, { name: 'norm', access: 'read' },
      { name: 'grad', access: 'read' }, rw('param'), rw('m'), rw('v'), ...(ema ? [rw('ema')] : []),
    ],
    dispatch: gridFor(chunks),
  };
}

/** Optimizer state in float64; arrays of the arena's length (padding is carried along untouched). */
export interface OptimizerState {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
  ema: Float64Array;
}

/**
 * Float64 reference of one step, the maths of torch.nn.utils.clip_grad_norm_ followed by
 * torch.optim.AdamW (amsgrad off) and the EMA, for update number `step` (from 1) at rate `lr`.
 * Returns the new state (the input is not modified), the norm, the clip factor, whether the step
 * was skipped for a nonfinite norm, and `magnitude`: per element, the sum of the absolute values of
 * the terms each value is built from over all steps so far (pass the previous step's back in; it
 * starts as |state|). f32 rounding error grows with it, not with the value, where terms cancel.
 */
export function adamwReference(segments: readonly ArenaSegment[], state: OptimizerState, grad: ArrayLike<number>,
  c: AdamWConfig, lr: number, step: number, magnitude?: OptimizerState,
): { state: OptimizerState; magnitude: OptimizerState; norm: number; clip: number; skipped: boolean } {
  const h = hyper(c);
  const copy = (s: OptimizerState, f = (x: number) => x): OptimizerState =>
    ({ param: s.param.map(f), m: s.m.map(f), v: s.v.map(f), ema: s.ema.map(f) });
  const next = copy(state);
  const mag = magnitude ? copy(magnitude) : copy(state, Math.abs);
  const norm = gradNormReference(segments, grad);
  const clip = h.maxGradNorm > 0 ? Math.min(1, h.maxGradNorm / (norm + 1e-6)) : 1;
  if (!Number.isFinite(norm)) return { state: next, magnitude: mag, norm, clip, skipped: true };
  const bc1 = 1 - h.beta1 ** step, bc2 = 1 - h.beta2 ** step;
  const ed = emaDecayAt(c, step);
  for (const seg of segments) {
    const decay = seg.weightDecay ? 1 - lr * h.weightDecay : 1;
    for (let i = seg.offset; i < seg.offset + seg.length; i++) {
      const g = clip * grad[i];
      next.m[i] = h.beta1 * state.m[i] + (1 - h.beta1) * g;
      next.v[i] = h.beta2 * state.v[i] + (1 - h.beta2) * g * g;
      const denom = Math.sqrt(next.v[i]) / Math.sqrt(bc2) + h.eps;
      next.param[i] = state.param[i] * decay - (lr / bc1) * next.m[i] / denom;
      next.ema[i] = ed * state.ema[i] + (1 - ed) * next.param[i];
      mag.m[i] = h.beta1 * mag.m[i] + (1 - h.beta1) * Math.abs(g);
      mag.v[i] = next.v[i];
      mag.param[i] = Math.abs(decay) * mag.param[i] + (lr / bc1) * mag.m[i] / denom; // the update carries m's scale
      mag.ema[i] = ed * mag.ema[i] + (1 - ed) * mag.param[i];
    }
  }
  return { state: next, magnitude: mag, norm, clip, skipped: false };
}

// ---------------------------------------------------------------- learning-rate schedule

export interface LrSchedule {
  /** the rate at the end of warm-up */
  peak: number;
  /** linear warm-up from 0: lr(t) = peak · t / warmupSteps for t <= warmupSteps */
  warmupSteps: number;
  /** cosine decay from peak (at warmupSteps) to `final` (at totalSteps); `final` after that */
  totalSteps: number;
  /** default 0 */
  final?: number;
}

/** The learning rate of update number `step` (from 1; step 0 gives the warm-up's start). */
export function learningRate(s: LrSchedule, step: number): number {
  const final = s.final ?? 0;
  if (!Number.isInteger(s.warmupSteps) || !Number.isInteger(s.totalSteps) || s.warmupSteps < 0 || s.totalSteps < s.warmupSteps || s.totalSteps < 1) {
    throw new Error(`lr schedule: needs integers 0 <= warmupSteps <= totalSteps, totalSteps >= 1 (got ${s.warmupSteps}, ${s.totalSteps})`);
  }
  if (!Number.isInteger(step) || step < 0) throw new Error(`lr schedule: step must be an integer >= 0 (got ${step})`);
  if (step < s.warmupSteps) return (s.peak * step) / s.warmupSteps;
  if (step >= s.totalSteps) return s.warmupSteps === s.totalSteps ? s.peak : final;
  const progress = (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps);
  return final + (s.peak - final) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
