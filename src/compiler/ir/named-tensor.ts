// Float64 tensors with named axes: the values of the graph's reference evaluation. Data is row-major
// in the order of `axes`; which order that is never matters to a caller, who names axes.
import type { AxisPair } from './graph.ts';

export interface NamedTensor {
  readonly axes: readonly AxisPair[];
  readonly data: Float64Array;
}

export const numelOf = (axes: readonly AxisPair[]) => axes.reduce((n, [, s]) => n * s, 1);

export function tensor(axes: readonly AxisPair[], data?: ArrayLike<number>): NamedTensor {
  const n = numelOf(axes);
  if (data && data.length !== n) throw new Error(`tensor over ${fmt(axes)} needs ${n} values, got ${data.length}`);
  return { axes, data: data ? Float64Array.from(data) : new Float64Array(n) };
}

export const fmt = (axes: readonly AxisPair[]) => `[${axes.map(([n, s]) => `${n}=${s}`).join(', ')}]`;

/** Row-major strides of `axes`, by position. */
export function stridesOf(axes: readonly AxisPair[]): number[] {
  const s = new Array<number>(axes.length);
  let acc = 1;
  for (let i = axes.length - 1; i >= 0; i--) { s[i] = acc; acc *= axes[i][1]; }
  return s;
}

export function position(axes: readonly AxisPair[], name: string): number {
  const i = axes.findIndex(([n]) => n === name);
  if (i < 0) throw new Error(`no axis '${name}' in ${fmt(axes)}`);
  return i;
}

export const sizeIn = (axes: readonly AxisPair[], name: string) => axes[position(axes, name)][1];

/**
 * Stride of each of `target`'s axes in row-major data over `axes`: 0 where `axes` lacks the axis or
 * has it with size 1 (broadcast by name). The same rule serves CPU tensors and GPU buffer views
 * (codegen/lower.ts).
 */
export function stridesFor(axes: readonly AxisPair[], target: readonly AxisPair[]): number[] {
  const own = stridesOf(axes);
  return target.map(([name, size]) => {
    const i = axes.findIndex(([n]) => n === name);
    if (i < 0) return 0;
    if (axes[i][1] === size) return own[i];
    if (axes[i][1] === 1) return 0;
    throw new Error(`axis '${name}' is ${axes[i][1]}, expected ${size} (or 1 to broadcast)`);
  });
}

/**
 * Calls f(outFlat, offsets) for every index of `target` in row-major order, with each tensor's data
 * offset at that index (tensors lacking an axis are broadcast along it).
 */
export function forEachOffset(target: readonly AxisPair[], tensors: readonly NamedTensor[],
  f: (outFlat: number, offsets: readonly number[]) => void): void {
  const strides = tensors.map((t) => stridesFor(t.axes, target));
  const idx = target.map(() => 0);
  const off = tensors.map(() => 0);
  const total = numelOf(target);
  for (let flat = 0; flat < total; flat++) {
    f(flat, off);
    for (let a = target.length - 1; a >= 0; a--) {
      if (++idx[a] < target[a][1]) {
        for (let k = 0; k < off.length; k++) off[k] += strides[k][a];
        break;
      }
      for (let k = 0; k < off.length; k++) off[k] -= strides[k][a] * (target[a][1] - 1);
      idx[a] = 0;
    }
  }
}

/** `t` laid out over `target`'s axes (same names; missing ones broadcast). */
export function relayout(t: NamedTensor, target: readonly AxisPair[]): NamedTensor {
  const out = new Float64Array(numelOf(target));
  forEachOffset(target, [t], (o, [i]) => { out[o] = t.data[i]; });
  return { axes: target, data: out };
}

/** Elementwise map over `target` axes of any number of tensors broadcast by name. */
export function zipWith(target: readonly AxisPair[], tensors: readonly NamedTensor[], f: (...v: number[]) => number): NamedTensor {
  const out = new Float64Array(numelOf(target));
  const vals = new Array<number>(tensors.length);
  forEachOffset(target, tensors, (o, offs) => {
    for (let k = 0; k < tensors.length; k++) vals[k] = tensors[k].data[offs[k]];
    out[o] = f(...vals);
  });
  return { axes: target, data: out };
}

/**
 * Maps every vector along `axis` to a vector of `outSize` (the same axes, that one resized):
 * f(src, dst) gets contiguous copies, so it never deals with strides.
 */
export function alongAxis(t: NamedTensor, axis: string, outSize: number,
  f: (src: Float64Array, dst: Float64Array) => void): NamedTensor {
  const p = position(t.axes, axis);
  const n = t.axes[p][1];
  const axes = t.axes.map((a, i) => (i === p ? [a[0], outSize] as const : a));
  const inner = numelOf(t.axes.slice(p + 1));
  const outer = numelOf(t.axes.slice(0, p));
  const out = new Float64Array(outer * outSize * inner);
  const src = new Float64Array(n);
  const dst = new Float64Array(outSize);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      for (let k = 0; k < n; k++) src[k] = t.data[(o * n + k) * inner + i];
      dst.fill(0);
      f(src, dst);
      for (let k = 0; k < outSize; k++) out[(o * outSize + k) * inner + i] = dst[k];
    }
  }
  return { axes, data: out };
}

/** Sums `t` down to `target` axes (a subset of its own, by name): the gradient of a broadcast. */
export function sumTo(t: NamedTensor, target: readonly AxisPair[]): NamedTensor {
  for (const [n] of target) position(t.axes, n);
  const out = new Float64Array(numelOf(target));
  const into = stridesFor(target, t.axes);
  const idx = t.axes.map(() => 0);
  let o = 0;
  for (let flat = 0; flat < t.data.length; flat++) {
    out[o] += t.data[flat];
    for (let a = t.axes.length - 1; a >= 0; a--) {
      if (++idx[a] < t.axes[a][1]) { o += into[a]; break; }
      o -= into[a] * (t.axes[a][1] - 1);
      idx[a] = 0;
    }
  }
  return { axes: target, data: out };
}
