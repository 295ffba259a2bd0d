// WGSL addressing of strided operands for the matrix kernels (GEMM, convolution): buffer
// declarations, per-batch base offsets and the test for 16-byte vector access. Shapes and strides
// are compile-time constants, so every address is a short chain of constant multiplies.

export interface OperandLayout {
  /** the WGSL variable name */
  wgslName: string;
  offset: number;
  /** stride per batch axis (0 where shared) */
  batchStrides: readonly number[];
  /** strides of the trailing (non-batch) axes */
  strides: readonly number[];
  /** sizes of the trailing axes */
  sizes: readonly number[];
  /** true when the binding is array<vec4f> (see vec4Along) */
  vec4: boolean;
}

/**
 * Whether an operand can be read (or written) as aligned vec4s along trailing axis `axis`: unit
 * stride there, a size that is a multiple of 4, and every other stride and the offset multiples of 4.
 */
export function vec4Along(offset: number, batchStrides: readonly number[], strides: readonly number[], sizes: readonly number[], axis: number): boolean {
  if (strides[axis] !== 1 || sizes[axis] % 4 !== 0 || offset % 4 !== 0) return false;
  return [...batchStrides, ...strides.filter((_, i) => i !== axis)].every((s) => s % 4 === 0);
}

export function declareBuffer(binding: number, op: Pick<OperandLayout, 'wgslName' | 'vec4'>, write = false): string {
  return `@group(0) @binding(${binding}) var<storage, ${write ? 'read_write' : 'read'}> ${op.wgslName}: array<${op.vec4 ? 'vec4f' : 'f32'}>;`;
}

/** `let bi<i>` statements decomposing the flat batch index `flat` over `batch` (row-major). */
export function batchIndexWgsl(batch: readonly number[], flat: string): string[] {
  if (batch.length === 0) return [];
  const lines = [`var bRest = ${flat};`];
  for (let i = batch.length - 1; i >= 0; i--) {
    lines.push(`let bi${i} = bRest % ${batch[i]}u;`, `bRest = bRest / ${batch[i]}u;`);
  }
  return lines;
}

/** Element offset of the operand's batch entry (uses the bi<i> from batchIndexWgsl). */
export function batchBaseWgsl(op: Pick<OperandLayout, 'offset' | 'batchStrides'>): string {
  const terms = op.batchStrides.map((s, i) => (s ? `bi${i} * ${s}u` : '')).filter(Boolean);
  return [`${op.offset}u`, ...terms].join(' + ');
}

/** `base + i0 * s0 + i1 * s1 ...` over the trailing axes, skipping zero strides. */
export function offsetWgsl(base: string, idx: readonly string[], strides: readonly number[]): string {
  const terms = idx.map((e, i) => (strides[i] === 0 ? '' : strides[i] === 1 ? e : `(${e}) * ${strides[i]}u`)).filter(Boolean);
  return [base, ...terms].join(' + ');
}
