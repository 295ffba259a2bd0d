// The fused epilogue shared by GEMM and convolution: out = act(acc + bias) * gate + residual.
// Activations are elementwise functions (functions.ts), so the WGSL forms and the float64 reference
// are the same ones every elementwise kernel uses. Each primitive decides where the operands come
// from (per column in GEMM, per output channel in convolution); this module only fixes the formula.
import { emitExprs, input, unary } from './expr.ts';
import { FUNCTIONS, type FunctionName } from './functions.ts';

export const ACTIVATIONS = ['none', 'silu', 'gelu', 'gelu_tanh', 'relu', 'sigmoid', 'tanh'] as const satisfies readonly ('none' | FunctionName)[];
export type Activation = (typeof ACTIVATIONS)[number];

export function checkActivation(a: unknown, what: string): asserts a is Activation {
  if (!(ACTIVATIONS as readonly unknown[]).includes(a)) {
    throw new Error(`${what}: unknown activation '${String(a)}' (one of ${ACTIVATIONS.join(', ')})`);
  }
}

/** float64 activation (the reference). */
export function activate64(act: Activation, x: number): number {
  return act === 'none' ? x : FUNCTIONS[act].f64(x);
}

/**
 * WGSL definitions of `fn vdm_act(x: f32) -> f32`, its vec4 form `vdm_act4` and the helpers they call;
 * empty for 'none' (then `applyWgsl` never calls them).
 */
export function activationWgsl(act: Activation, vec4 = false): string {
  if (act === 'none') return '';
  const { lines, results, helpers } = emitExprs([unary(act, input('x'))], () => 'x', 'act');
  const fns = [...helpers, `fn vdm_act(x: f32) -> f32 {\n  ${[...lines, `return ${results[0]};`].join('\n  ')}\n}`];
  if (vec4) fns.push('fn vdm_act4(v: vec4f) -> vec4f { return vec4f(vdm_act(v.x), vdm_act(v.y), vdm_act(v.z), vdm_act(v.w)); }');
  return fns.join('\n');
}

/** Which epilogue operands a kernel reads; the formula is act(acc + bias) * gate + residual. */
export interface EpilogueTerms { bias?: string; gate?: string; residual?: string }

/**
 * A WGSL expression applying the epilogue to `acc` with the given operand expressions; with `vec4`
 * every operand is a vec4f and the result too.
 */
export function applyWgsl(act: Activation, acc: string, t: EpilogueTerms, vec4 = false): string {
  let v = t.bias ? `${acc} + ${t.bias}` : acc;
  if (act !== 'none') v = `${vec4 ? 'vdm_act4' : 'vdm_act'}(${v})`;
  if (t.gate) v = `(${v}) * ${t.gate}`;
  if (t.residual) v = `${v} + ${t.residual}`;
  return v;
}

/** float64 epilogue; absent operands are skipped. */
export function apply64(act: Activation, acc: number, bias?: number, gate?: number, residual?: number): number {
  let v = activate64(act, bias === undefined ? acc : acc + bias);
  if (gate !== undefined) v *= gate;
  if (residual !== undefined) v += residual;
  return v;
}
