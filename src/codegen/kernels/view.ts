// Strided views: how every kernel addresses its operands, and the index arithmetic over them that
// the kernels and their float64 references share. Layout changes (patchify, axis permutations,
// window partition) are new strides over the same buffer, never copies.

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

/** numpy-style broadcast of `v` to `shape` (right-aligned): new and size-1 axes get stride 0. */
export function broadcastTo(v: View, shape: readonly number[]): View {
  const lead = shape.length - v.shape.length;
  if (lead < 0) throw new Error(`cannot broadcast shape [${v.shape}] to the smaller rank of [${shape}]`);
  const strides = shape.map((n, i) => {
    if (i < lead) return 0;
    const m = v.shape[i - lead];
    if (m === n) return v.strides[i - lead];
    if (m === 1) return 0;
    throw new Error(`cannot broadcast shape [${v.shape}] to [${shape}]`);
  });
  return { shape: [...shape], strides, offset: v.offset };
}

/**
 * A view over `shape` that is contiguous along `axes` (in the given order, last fastest) and
 * constant along every other axis: a per-channel parameter seen from a full tensor.
 */
export function alongAxes(shape: readonly number[], axes: readonly number[], offset = 0): View {
  const strides = shape.map(() => 0);
  let s = 1;
  for (let k = axes.length - 1; k >= 0; k--) { strides[axes[k]] = s; s *= shape[axes[k]]; }
  return { shape: [...shape], strides, offset };
}

/** Number of buffer elements a view can touch (its highest element + 1); strides may be negative. */
export function extent(v: View): number {
  if (v.shape.some((n) => n === 0)) return v.offset;
  return v.shape.reduce((o, n, i) => o + Math.max(0, (n - 1) * v.strides[i]), v.offset) + 1;
}

/** The lowest element a view touches: a negative stride (a reversed axis) walks down from the offset. */
export function lowest(v: View): number {
  return v.shape.reduce((o, n, i) => o + Math.min(0, (n - 1) * v.strides[i]), v.offset);
}

/** Strides of `v` seen over `shape`: broadcast axes read stride 0. Checks ranks and sizes. */
export function stridesOver(v: View, shape: readonly number[], what: string): number[] {
  if (v.shape.length !== shape.length) {
    throw new Error(`${what}: view of rank ${v.shape.length} over an iteration space of rank ${shape.length}`);
  }
  return shape.map((n, i) => {
    if (v.shape[i] === n) return v.strides[i];
    if (v.shape[i] === 1) return 0;
    throw new Error(`${what}: axis ${i} has size ${v.shape[i]}, expected ${n} (or 1 to broadcast)`);
  });
}

/**
 * Merges neighbouring axes that every operand walks as one (stride[i] == stride[i+1] * shape[i+1])
 * and drops size-1 axes: fewer divisions per element in the kernel.
 */
export function coalesce(shape: readonly number[], strideSets: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strideSets.map(() => []);
  shape.forEach((n, i) => {
    if (n === 1) return;
    const last = outShape.length - 1;
    if (last >= 0 && strideSets.every((s, k) => outStrides[k][last] === s[i] * n)) {
      outShape[last] *= n;
      strideSets.forEach((s, k) => { outStrides[k][last] = s[i]; });
    } else {
      outShape.push(n);
      strideSets.forEach((s, k) => outStrides[k].push(s[i]));
    }
  });
  return { shape: outShape, strides: outStrides };
}

/** WGSL `let` lines decomposing `flat` into coordinates `${prefix}0..` over `shape` (outermost first). */
export function wgslCoords(shape: readonly number[], flat: string, prefix: string): string[] {
  if (shape.length === 0) return [];
  const lines = [`var ${prefix}r: u32 = ${flat};`];
  for (let i = shape.length - 1; i > 0; i--) {
    lines.push(`let ${prefix}${i} = ${prefix}r % ${shape[i]}u; ${prefix}r = ${prefix}r / ${shape[i]}u;`);
  }
  lines.push(`let ${prefix}0 = ${prefix}r;`);
  return lines;
}

/**
 * WGSL u32 expression: offset + sum of coordinate * stride (zero strides skipped). A negative
 * stride becomes a subtraction; the caller checks that no address goes below zero (lowest()).
 */
export function wgslDot(offset: number, strides: readonly number[], prefix: string): string {
  const term = (s: number, i: number) => (Math.abs(s) === 1 ? `${prefix}${i}` : `${prefix}${i} * ${Math.abs(s)}u`);
  const plus = strides.flatMap((s, i) => (s > 0 ? [term(s, i)] : []));
  const minus = strides.flatMap((s, i) => (s < 0 ? [term(s, i)] : []));
  if (offset !== 0 || plus.length === 0) plus.unshift(`${offset}u`);
  return [plus.join(' + '), ...minus].join(' - ');
}

/**
 * Calls f(idx) for every multi-index of `shape` in row-major order. `idx` is one array the loop
 * advances in place: read it, never change or keep it.
 */
export function forEachIndex(shape: readonly number[], f: (idx: number[]) => void): void {
  const idx = shape.map(() => 0);
  const total = numel(shape);
  for (let flat = 0; flat < total; flat++) {
    f(idx);
    for (let i = shape.length - 1; i >= 0; i--) { if (++idx[i] < shape[i]) break; idx[i] = 0; }
  }
}
