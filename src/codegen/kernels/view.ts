// Strided views: how every kernel addresses its operands. Layout changes (patchify, axis
// permutations, window partition) are new strides over the same buffer, never copies.

export interface View {
  /** logical shape, outermost first */
  shape: readonly number[];
  /** element stride of each logical axis in the underlying buffer */
  strides: readonly number[];
  /** element offset of index (0, ..., 0) */
  offset: number;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function contiguous(shape: readonly number[], offset = 0): View {
  const strides: number[] = new Array(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) { strides[i] = s; s *= shape[i]; }
  return { shape: [...shape], strides, offset };
}

/** Reorders axes: result axis i is input axis perm[i]. */
export function permute(v: View, perm: readonly number[]): View {
  return { shape: perm.map((p) => v.shape[p]), strides: perm.map((p) => v.strides[p]), offset: v.offset };
}

/** Splits axis `axis` of size n into (n / inner, inner). */
export function splitAxis(v: View, axis: number, inner: number): View {
  const n = v.shape[axis];
  if (n % inner !== 0) throw new Error(`splitAxis: ${inner} does not divide ${n}`);
  const shape = [...v.shape.slice(0, axis), n / inner, inner, ...v.shape.slice(axis + 1)];
  const strides = [...v.strides.slice(0, axis), v.strides[axis] * inner, v.strides[axis], ...v.strides.slice(axis + 1)];
  return { shape, strides, offset: v.offset };
}

/** Float64 read of element `idx` (a multi-index) through a view. */
export function at(data: ArrayLike<number>, v: View, idx: readonly number[]): number {
  let o = v.offset;
  for (let i = 0; i < idx.length; i++) o += idx[i] * v.strides[i];
  return data[o];
}
