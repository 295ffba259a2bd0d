// The lowering contract: what a primitive's `lower` gets (its node, operand values on the GPU, ways
// to add buffers and dispatches) and the view helpers primitives address operands with. The driver
// (src/codegen/lower.ts) implements it; primitives import only this file, so neither imports the other.
import type { AxisPair, GraphNode } from '../ir/graph.ts';
import { stridesFor, stridesOf } from '../ir/named-tensor.ts';
import { elementwiseKernel } from '../../codegen/kernels/elementwise.ts';
import type { Activation } from '../../codegen/kernels/epilogue.ts';
import { input, type Expr } from '../../codegen/kernels/expr.ts';
import { gemmKernel } from '../../codegen/kernels/gemm.ts';
import type { GemmParams } from '../../codegen/kernels/gemm-plan.ts';
import type { AdapterTraits, KernelSpec } from '../../codegen/kernels/kernel.ts';
import { coalesce, contiguous, numel, type View } from '../../codegen/kernels/view.ts';
import { normLanesFor } from '../../codegen/kernels/norm.ts';
import { normParamsBackwardKernel, normRowsBackwardKernel, type NormBackwardParams } from '../../codegen/kernels/norm-backward.ts';

/** A value on the GPU: a buffer holding a tensor contiguous in the order of `axes`. */
export interface Value {
  readonly buffer: string;
  readonly axes: readonly AxisPair[];
  /** computed inside its consumer's kernel (fuse.ts), or read in place (`strides`): no buffer of its own */
  readonly fused?: boolean;
  /**
   * a part of another value read in place (a split part that only GEMM operands read: fuse-gemm.ts):
   * `buffer` is that value's, with these element strides per axis of `axes` from `offset`
   */
  readonly strides?: readonly number[];
  readonly offset?: number;
}

/** What a primitive's `lower` gets: its node, operand values, and ways to add buffers and dispatches. */
export interface LowerCall {
  readonly node: GraphNode;
  readonly attrs: GraphNode['attrs'];
  readonly inputs: readonly Value[];
  /** parameter leaf -> buffer (row-major in the parameter's shape) */
  readonly params: ReadonlyMap<string, string>;
  /** the node's own buffer, contiguous over its axes in the order `out.axes` gives (the layout's choice) */
  readonly out: Value;
  readonly adapter?: AdapterTraits;
  /** what fusion folded into this node's GEMM (linear, attention's projections): src/codegen/fuse-gemm.ts */
  readonly gemm?: GemmFusion;
  /** a scratch buffer for this node's intermediates, named after the node */
  scratch(name: string, elements: number): string;
  /** appends a dispatch of `spec` over `buffers` (in spec.bindings order) */
  emit(spec: KernelSpec, buffers: readonly string[]): void;
}

/**
 * A GEMM prologue and epilogue around a dense layer: the input's rows are layer-normalised (no
 * affine) along the contracted axis, then x * (1 + scale) + shift; the result is
 * act(acc + bias) * gate + residual. scale and shift are read over the input's axes, gate and
 * residual over the output's, by name (missing axes broadcast).
 */
export interface GemmFusion {
  readonly normalize?: { readonly eps: number };
  readonly scale?: Value;
  readonly shift?: Value;
  readonly activation?: Activation;
  readonly gate?: Value;
  readonly residual?: Value;
}

/** The view of `v` over `target` axes by name: axes `v` lacks or has with size 1 read stride 0 (broadcast). */
export function viewOver(v: Value, target: readonly AxisPair[], offset = 0): View {
  const own = v.strides;
  if (!own) return { shape: target.map(([, s]) => s), strides: stridesFor(v.axes, target), offset };
  const strides = target.map(([name, size]) => {
    const i = v.axes.findIndex(([n]) => n === name);
    if (i >= 0 && v.axes[i][1] !== size && v.axes[i][1] !== 1) throw new Error(`axis '${name}' is ${v.axes[i][1]}, expected ${size} (or 1)`);
    return i < 0 || v.axes[i][1] !== size ? 0 : own[i];
  });
  return { shape: target.map(([, s]) => s), strides, offset: offset + (v.offset ?? 0) };
}

/** One elementwise kernel computing `expr` over `call.out` from the node's inputs as in0, in1, ... */
export function lowerElementwise(call: LowerCall, expr: Expr): void {
  const target = call.out.axes;
  const ins = call.inputs.map((v, i) => ({ name: `in${i}`, view: viewOver(v, target) }));
  const spec = elementwiseKernel({
    shape: target.map(([, s]) => s), inputs: ins,
    outputs: [{ name: 'out', view: viewOver(call.out, target), expr }],
  });
  call.emit(spec, [...call.inputs.map((v) => v.buffer), call.out.buffer]);
}

/**
 * GEMM operand views for a product along axis `axis` of `x` into `out` (the same other axes): the
 * other axes, coalesced where both tensors walk them as one, become [...batch, M]; A is [..., M, K]
 * and out [..., M, N]. Returns the A and out views.
 */
export function contractionViews(x: Value, out: Value, axis: string, outAxis = axis): { a: View; out: View } {
  const others = x.axes.filter(([n]) => n !== axis);
  const k = x.axes.find(([n]) => n === axis)!;
  const n = out.axes.find(([m]) => m === outAxis)!;
  const xa = viewOver(x, [...others, k]);
  const oa = viewOver(out, [...others, n]);
  const r = others.length;
  const merged = coalesce(others.map(([, s]) => s), [xa.strides.slice(0, r), oa.strides.slice(0, r)]);
  if (merged.shape.length === 0) { merged.shape.push(1); merged.strides[0].push(0); merged.strides[1].push(0); }
  return {
    a: { shape: [...merged.shape, k[1]], strides: [...merged.strides[0], xa.strides[r]], offset: 0 },
    out: { shape: [...merged.shape, n[1]], strides: [...merged.strides[1], oa.strides[r]], offset: 0 },
  };
}

/**
 * A dense layer as one GEMM: `src` along `axis` times `weight` [in, out] (+ `bias` [out]) into `dst`
 * along `outAxis`, with what fusion folded into it. The row axes coalesce where every operand walks
 * them as one; the rows that scale, shift and gate vary over come first (batch axes of the GEMM), so
 * the GEMM's M axis is a run of rows they are constant along (or a unit axis when there is none).
 */
export function emitDense(call: Pick<LowerCall, 'emit' | 'adapter'>, p: {
  src: Value; dst: Value; weight: string; bias?: string; axis: string; outAxis?: string; fusion?: GemmFusion;
}): void {
  const f = p.fusion ?? {};
  const k = p.src.axes.find(([n]) => n === p.axis)!;
  const n = p.dst.axes.find(([m]) => m === (p.outAxis ?? p.axis))!;
  const perRow = [f.scale, f.shift, f.gate].filter((v): v is Value => !!v);
  const varies = (name: string) => perRow.some((v) => v.axes.some(([m]) => m === name));
  const others = p.src.axes.filter(([m]) => m !== p.axis);
  const rows = [...others.filter(([m]) => varies(m)), ...others.filter(([m]) => !varies(m))];
  const over = (v: Value | undefined, last: AxisPair) => (v ? viewOver(v, [...rows, last]) : undefined);
  const views = [over(p.src, k)!, over(p.dst, n)!, over(f.scale, k), over(f.shift, k), over(f.gate, n), over(f.residual, n)];
  const full = views.map((v) => v && [...v.strides]);
  const present = full.filter((s): s is number[] => !!s);
  const r = rows.length;
  const merged = coalesce(rows.map(([, s]) => s), present.map((s) => s.slice(0, r)));
  const m = merged.shape.length - 1;
  // per-row operands must not vary along M: else every merged axis is a batch axis and M is 1
  if (m < 0 || [2, 3, 4].some((i) => full[i] && merged.strides[present.indexOf(full[i]!)][m] !== 0)) {
    merged.shape.push(1);
    merged.strides.forEach((s) => s.push(0));
  }
  const rowStrides = (s: number[] | undefined) => (s ? merged.strides[present.indexOf(s)] : []);
  const view = (i: number, last: number, withM: boolean): View | undefined => full[i] && {
    shape: [...merged.shape.slice(0, withM ? undefined : -1), last],
    strides: [...rowStrides(full[i]).slice(0, withM ? undefined : -1), full[i]![r]], offset: views[i]!.offset,
  };
  const [K, N] = [k[1], n[1]];
  const g: GemmParams = {
    a: view(0, K, true)!, b: contiguous([K, N]), out: view(1, N, true)!,
    normalize: f.normalize, scale: view(2, K, false), shift: view(3, K, false),
    bias: p.bias ? contiguous([N]) : undefined, activation: f.activation ?? 'none',
    gate: view(4, N, false), residual: view(5, N, true), adapter: call.adapter,
  };
  const opt = (v: Value | undefined) => (v ? [v.buffer] : []);
  call.emit(gemmKernel(g), [p.src.buffer, p.weight, ...opt(f.scale), ...opt(f.shift), ...(p.bias ? [p.bias] : []),
    ...opt(f.gate), ...opt(f.residual), p.dst.buffer]);
}

/**
 * What a primitive's `lowerVjp` gets: the forward call's values (kept alive for the backward by the
 * memory plan, which sees their last use here), the gradient of the loss with respect to the node's
 * value, and where to write each gradient. Every gradient buffer is written whole (=), never
 * accumulated: the driver sums the contributions of a value's consumers.
 */
export interface LowerVjpCall extends LowerCall {
  /** d loss / d out, over `out.axes` in that order */
  readonly grad: Value;
  /** per input: the buffer for d loss / d input, over that input's axes in its value's order; null: not needed */
  readonly inputGrads: readonly (Value | null)[];
  /** parameter leaf -> the buffer for its gradient (row-major in the parameter's shape) */
  readonly paramGrads: ReadonlyMap<string, string>;
}

/**
 * Views for a weight gradient dW[i, o] = sum over rows of x[.., i] g[.., o], where x and g share
 * every axis but `axis` (x) and `gAxis` (g). The shared axes coalesce into one contracted axis where
 * both walk them as one; any left over become batch axes, whose partial products the caller sums.
 * Returns A = x^T [...batch, I, rows], B = g [...batch, rows, O] and the batch shape.
 */
export function weightGradViews(x: Value, g: Value, axis: string, gAxis: string): { a: View; b: View; batch: number[] } {
  const others = x.axes.filter(([n]) => n !== axis);
  const i = x.axes.find(([n]) => n === axis)!;
  const o = g.axes.find(([n]) => n === gAxis)!;
  const xa = viewOver(x, [...others, i]);
  const ga = viewOver(g, [...others, o]);
  const r = others.length;
  const merged = coalesce(others.map(([, s]) => s), [xa.strides.slice(0, r), ga.strides.slice(0, r)]);
  if (merged.shape.length === 0) { merged.shape.push(1); merged.strides[0].push(0); merged.strides[1].push(0); }
  const k = merged.shape.length - 1;
  const batch = merged.shape.slice(0, k);
  return {
    a: { shape: [...batch, i[1], merged.shape[k]], strides: [...merged.strides[0].slice(0, k), xa.strides[r], merged.strides[0][k]], offset: 0 },
    b: { shape: [...batch, merged.shape[k], o[1]], strides: [...merged.strides[1].slice(0, k), merged.strides[1][k], ga.strides[r]], offset: 0 },
    batch,
  };
}

/** One elementwise kernel over `target` axes: out = expr(in0, in1, ...) with every operand viewed by name. */
export function emitElementwise(call: Pick<LowerCall, 'emit'>, target: readonly AxisPair[], ins: readonly Value[], out: Value, expr: Expr): void {
  call.emit(elementwiseKernel({
    shape: target.map(([, s]) => s),
    inputs: ins.map((v, i) => ({ name: `in${i}`, view: viewOver(v, target) })),
    outputs: [{ name: 'out', view: viewOver(out, target), expr }],
  }), [...ins.map((v) => v.buffer), out.buffer]);
}

/** Fills a value with zeros: the gradient of an input that does not change the result (sincos reads only shapes). */
export function emitZeros(call: Pick<LowerCall, 'emit'>, v: Value): void {
  emitElementwise(call, v.axes, [], v, { op: 'const', value: 0 });
}

/** The view of contiguous `outer` over `inner`'s axes (same names, each no longer): the part from index 0. */
function innerView(outer: Value, inner: readonly AxisPair[]): View {
  const strides = stridesOf(outer.axes);
  return { shape: inner.map(([, n]) => n), strides: inner.map(([name]) => strides[outer.axes.findIndex(([m]) => m === name)]), offset: 0 };
}

/** `dst` = `src` followed by zeros along every axis `dst` is longer in (`pad: true` of attention and patchify). */
export function emitPad(call: Pick<LowerCall, 'emit'>, src: Value, dst: Value): void {
  emitZeros(call, dst);
  call.emit(elementwiseKernel({
    shape: src.axes.map(([, n]) => n),
    inputs: [{ name: 'x', view: viewOver(src, src.axes) }],
    outputs: [{ name: 'y', view: innerView(dst, src.axes), expr: input('x') }],
  }), [src.buffer, dst.buffer]);
}

/** `dst` = the part of the longer `src` from index 0 (the padding cut off again). */
export function emitCrop(call: Pick<LowerCall, 'emit'>, src: Value, dst: Value): void {
  call.emit(elementwiseKernel({
    shape: dst.axes.map(([, n]) => n),
    inputs: [{ name: 'x', view: innerView(src, dst.axes) }],
    outputs: [{ name: 'y', view: viewOver(dst, dst.axes), expr: input('x') }],
  }), [src.buffer, dst.buffer]);
}

/**
 * A normalisation's backward (kernels/norm-backward.ts) from its forward views: x is input 0, the
 * affine parameters are the leaves `weight` and `bias`. The row kernel writes dx and, when dweight is
 * wanted, each row's statistics; the parameter kernel then sums dweight and dbias over the rows
 * through `paramView` (the per-feature gradient buffers viewed over x's view shape).
 */
export function emitNormVjp(call: LowerVjpCall, p: Omit<NormBackwardParams, 'stats' | 'dweight' | 'dbias' | 'dscale' | 'dshift'>, paramView: View): void {
  const dweight = call.paramGrads.get('weight');
  const dbias = call.paramGrads.get('bias');
  const dx = call.inputGrads[0];
  const rows = numel(p.x.shape.slice(0, p.x.shape.length - p.normalizedAxes));
  const stats = dweight ? call.scratch('stats', rows * 3) : undefined;
  const buffers: Record<string, string | undefined> = {
    x: call.inputs[0].buffer, dy: call.grad.buffer, dx: dx?.buffer, stats,
    weight: call.params.get('weight'), bias: call.params.get('bias'), dweight, dbias,
  };
  const bind = (spec: KernelSpec) => call.emit(spec, spec.bindings.map((b) => buffers[b.name]!));
  const q: NormBackwardParams = { ...p, stats: stats ? contiguous([rows, 3]) : undefined };
  if (q.dx || q.stats) bind(normRowsBackwardKernel({ ...q, subgroupLanes: normLanesFor(call.adapter) }));
  if (dweight || dbias) {
    bind(normParamsBackwardKernel({ ...q, dx: undefined, dweight: dweight ? paramView : undefined, dbias: dbias ? paramView : undefined }));
  }
}
