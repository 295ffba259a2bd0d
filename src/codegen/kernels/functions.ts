// The elementwise functions of one argument, one record each: the float64 value (reference and
// compile-time evaluation), the derivative (the backward rule) and the WGSL emission of both. Every place
// that needs one of these reads its record, so the forms cannot drift apart: the expression IR
// (expr.ts), fusion, the GEMM/conv epilogues, the GRU scan and the language's primitives.

/** Marks a helper (and the helpers it calls) as used by the shader being built; returns its name. */
export type UseHelper = (name: HelperName) => string;

export interface ElementwiseFunction {
  /** f(x) in float64 */
  readonly f64: (x: number) => number;
  /** f'(x), given x and y = f(x) (whichever is cheaper: d exp = y) */
  readonly derivative: (x: number, y: number) => number;
  /** WGSL expression of f at the f32 expression `a` (a name or literal, safe to repeat) */
  readonly wgsl: (a: string, use: UseHelper) => string;
  /** WGSL expression of f'(x) given the f32 expressions `x` and `y` = f(x): the backward kernels' rule */
  readonly derivativeWgsl: (x: string, y: string, use: UseHelper) => string;
}

// ---------------------------------------------------------------- float64 helpers

/** erf in float64: Taylor series below |x| = 2.5 (error < 1e-13), continued fraction for erfc above. */
export function erf64(x: number): number {
  if (Math.abs(x) >= 2.5) return x > 0 ? 1 - erfc64(x) : erfc64(-x) - 1;
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= -x2 / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** erfc in float64 with full relative accuracy in the right tail. */
export function erfc64(x: number): number {
  if (x < 2.5) return x < -2.5 ? 2 - erfc64(-x) : 1 - erf64(x);
  let f = x; // Laplace's continued fraction, evaluated from the tail
  for (let k = 80; k >= 1; k--) f = x + (k / 2) / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

const sigmoid64 = (x: number) => 1 / (1 + Math.exp(-x));
const GELU_TANH_K = Math.sqrt(2 / Math.PI);
const geluTanhU = (x: number) => GELU_TANH_K * (x + 0.044715 * x * x * x);

// ---------------------------------------------------------------- WGSL helpers

// Emitted only when used, in this order. The stable forms never produce NaN for large |x| and keep
// relative accuracy in the tails (no 1 + (-1 + tiny) cancellations).
const HELPERS = {
  vdm_sigmoid: { deps: [], wgsl: `fn vdm_sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }` },
  vdm_tanh: {
    deps: [],
    // |x| < 0.125: Taylor series (relative error < 2e-9); else via exp(-2|x|), which cannot overflow.
    wgsl: `fn vdm_tanh(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.125) { let x2 = x * x; return x * (1.0 + x2 * (-0.33333333 + x2 * (0.13333333 - x2 * 0.053968254))); }
  let e = exp(-2.0 * a);
  return sign(x) * (1.0 - e) / (1.0 + e);
}`,
  },
  // erfc by the Chebyshev-fitted form of Numerical Recipes (erfcc): relative error < 1.2e-7 for all x.
  vdm_erfc: {
    deps: [],
    wgsl: `fn vdm_erfc(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
    + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(p - z * z);
  return select(2.0 - r, r, x >= 0.0);
}`,
  },
  // Near 0, 1 - erfc(x) would lose relative accuracy: the odd Taylor series is used there instead.
  vdm_erf: {
    deps: ['vdm_erfc'],
    wgsl: `fn vdm_erf(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    let x2 = x * x;
    return 1.1283791671 * x * (1.0 + x2 * (-0.33333333 + x2 * (0.1 + x2 * (-0.023809524 + x2 * (0.0046296296
      + x2 * (-0.00075757576 + x2 * 0.00010683761))))));
  }
  return 1.0 - vdm_erfc(x);
}`,
  },
  vdm_gelu: {
    deps: ['vdm_erfc'],
    wgsl: `fn vdm_gelu(x: f32) -> f32 { return 0.5 * x * vdm_erfc(-0.70710678118 * x); }`,
  },
  // x * sigmoid(2u) == 0.5 x (1 + tanh(u)) without the cancellation for negative u.
  vdm_gelu_tanh: {
    deps: [],
    wgsl: `fn vdm_gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608 * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * u));
}`,
  },
  // Derivatives for the backward kernels, after every forward helper so forward shaders keep their text.
  vdm_silu_grad: {
    deps: ['vdm_sigmoid'],
    wgsl: `fn vdm_silu_grad(x: f32) -> f32 { let s = vdm_sigmoid(x); return s * (1.0 + x * (1.0 - s)); }`,
  },
  vdm_gelu_grad: {
    deps: ['vdm_erfc'],
    wgsl: `fn vdm_gelu_grad(x: f32) -> f32 { return 0.5 * vdm_erfc(-0.70710678 * x) + 0.39894228 * x * exp(-0.5 * x * x); }`,
  },
  vdm_gelu_tanh_grad: {
    deps: ['vdm_tanh'],
    wgsl: `fn vdm_gelu_tanh_grad(x: f32) -> f32 {
  let t = vdm_tanh(0.7978845608 * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608 * (1.0 + 0.134145 * x * x);
}`,
  },
} satisfies Record<string, { deps: string[]; wgsl: string }>;
export type HelperName = keyof typeof HELPERS;

/** The helpers of one shader: `use` marks them, `definitions()` gives their WGSL in a fixed order. */
export function helperSet(): { use: UseHelper; definitions: () => string[] } {
  const used = new Set<string>();
  const use = (name: HelperName): string => {
    if (!used.has(name)) { (HELPERS[name].deps as HelperName[]).forEach(use); used.add(name); }
    return name;
  };
  const definitions = () => (Object.keys(HELPERS) as HelperName[]).filter((h) => used.has(h)).map((h) => HELPERS[h].wgsl);
  return { use, definitions };
}

// ---------------------------------------------------------------- the functions

const builtin = (name: string) => (a: string) => `${name}(${a})`;
const helper = (name: HelperName) => (a: string, use: UseHelper) => `${use(name)}(${a})`;

const DEFINITIONS = {
  neg: { f64: (x) => -x, derivative: () => -1, wgsl: (a) => `-${a}`, derivativeWgsl: () => '-1.0' },
  exp: { f64: Math.exp, derivative: (_x, y) => y, wgsl: builtin('exp'), derivativeWgsl: (_x, y) => y },
  log: { f64: Math.log, derivative: (x) => 1 / x, wgsl: builtin('log'), derivativeWgsl: (x) => `1.0 / ${x}` },
  sqrt: { f64: Math.sqrt, derivative: (_x, y) => 0.5 / y, wgsl: builtin('sqrt'), derivativeWgsl: (_x, y) => `0.5 / ${y}` },
  rsqrt: {
    f64: (x) => 1 / Math.sqrt(x), derivative: (_x, y) => -0.5 * y * y * y, wgsl: builtin('inverseSqrt'),
    derivativeWgsl: (_x, y) => `-0.5 * ${y} * ${y} * ${y}`,
  },
  abs: { f64: Math.abs, derivative: Math.sign, wgsl: builtin('abs'), derivativeWgsl: (x) => `sign(${x})` },
  relu: {
    f64: (x) => Math.max(x, 0), derivative: (x) => (x > 0 ? 1 : 0), wgsl: (a) => `max(${a}, 0.0)`,
    derivativeWgsl: (x) => `select(0.0, 1.0, ${x} > 0.0)`,
  },
  sigmoid: { f64: sigmoid64, derivative: (_x, y) => y * (1 - y), wgsl: helper('vdm_sigmoid'), derivativeWgsl: (_x, y) => `${y} * (1.0 - ${y})` },
  tanh: { f64: Math.tanh, derivative: (_x, y) => 1 - y * y, wgsl: helper('vdm_tanh'), derivativeWgsl: (_x, y) => `1.0 - ${y} * ${y}` },
  silu: {
    f64: (x) => x * sigmoid64(x),
    derivative: (x) => { const s = sigmoid64(x); return s * (1 + x * (1 - s)); },
    wgsl: (a, use) => `${a} * ${use('vdm_sigmoid')}(${a})`,
    derivativeWgsl: (x, _y, use) => `${use('vdm_silu_grad')}(${x})`,
  },
  // x Φ(x) with the exact normal CDF, Φ(x) = erfc(-x / √2) / 2 (no cancellation for negative x)
  gelu: {
    f64: (x) => 0.5 * x * erfc64(-x / Math.SQRT2),
    // Φ(x) + x φ(x)
    derivative: (x) => 0.5 * erfc64(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
    wgsl: helper('vdm_gelu'),
    derivativeWgsl: (x, _y, use) => `${use('vdm_gelu_grad')}(${x})`,
  },
  // the tanh approximation of gelu (DiT's MLP): 0.5 x (1 + tanh u) = x sigmoid(2u)
  gelu_tanh: {
    f64: (x) => x * sigmoid64(2 * geluTanhU(x)),
    derivative: (x) => {
      const th = Math.tanh(geluTanhU(x));
      return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_TANH_K * (1 + 3 * 0.044715 * x * x);
    },
    wgsl: helper('vdm_gelu_tanh'),
    derivativeWgsl: (x, _y, use) => `${use('vdm_gelu_tanh_grad')}(${x})`,
  },
  erf: {
    f64: erf64, derivative: (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x), wgsl: helper('vdm_erf'),
    derivativeWgsl: (x) => `1.1283791671 * exp(-${x} * ${x})`,
  },
} satisfies Record<string, ElementwiseFunction>;

export type FunctionName = keyof typeof DEFINITIONS;
export const FUNCTIONS: Readonly<Record<FunctionName, ElementwiseFunction>> = DEFINITIONS;

export const isFunctionName = (op: string): op is FunctionName => Object.hasOwn(FUNCTIONS, op);
