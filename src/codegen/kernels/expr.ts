// The elementwise expression IR: a tree of plain objects (JSON-serialisable, so the compiler can
// build and cache it), a float64 evaluator that serves as the reference, and the WGSL emitter that
// computes every distinct subexpression once (structural hashing).

export const UNARY_OPS = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'abs', 'relu', 'sigmoid', 'tanh',
  'silu', 'gelu', 'gelu_tanh', 'erf'] as const;
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'min', 'max', 'pow',
  'lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];
export type BinaryOp = (typeof BINARY_OPS)[number];

/**
 * Comparisons yield 1 or 0; `where` picks `a` where `cond` is non-zero, else `b`;
 * `modulate` is x * (1 + scale) + shift (adaptive layer norm). `pow` with a constant integer
 * exponent in [-4, 4] is exact repeated multiplication and accepts negative bases; any other
 * exponent requires a base >= 0 (a negative base gives NaN, as WGSL's pow does).
 */
export type Expr =
  | { op: 'input'; name: string }
  | { op: 'const'; value: number }
  | { op: UnaryOp; a: Expr }
  | { op: BinaryOp; a: Expr; b: Expr }
  | { op: 'where'; cond: Expr; a: Expr; b: Expr }
  | { op: 'modulate'; x: Expr; scale: Expr; shift: Expr };

const isUnary = (op: string): op is UnaryOp => (UNARY_OPS as readonly string[]).includes(op);
const isBinary = (op: string): op is BinaryOp => (BINARY_OPS as readonly string[]).includes(op);

// Builders, so that trees read like formulas.
export const input = (name: string): Expr => ({ op: 'input', name });
export const constant = (value: number): Expr => ({ op: 'const', value });
const lift = (e: Expr | number): Expr => (typeof e === 'number' ? constant(e) : e);
export const unary = (op: UnaryOp, a: Expr | number): Expr => ({ op, a: lift(a) });
export const binary = (op: BinaryOp, a: Expr | number, b: Expr | number): Expr => ({ op, a: lift(a), b: lift(b) });
export const add = (a: Expr | number, b: Expr | number) => binary('add', a, b);
export const sub = (a: Expr | number, b: Expr | number) => binary('sub', a, b);
export const mul = (a: Expr | number, b: Expr | number) => binary('mul', a, b);
export const div = (a: Expr | number, b: Expr | number) => binary('div', a, b);
export const where = (cond: Expr, a: Expr | number, b: Expr | number): Expr => ({ op: 'where', cond, a: lift(a), b: lift(b) });
export const modulate = (x: Expr, scale: Expr, shift: Expr): Expr => ({ op: 'modulate', x, scale, shift });

/** Operands of a node, in a fixed order. */
export function children(e: Expr): Expr[] {
  switch (e.op) {
    case 'input': case 'const': return [];
    case 'where': return [e.cond, e.a, e.b];
    case 'modulate': return [e.x, e.scale, e.shift];
    default: return 'b' in e ? [e.a, e.b] : [e.a];
  }
}

/** Throws a readable error for malformed trees (they may come from user specs via the compiler). */
export function checkExpr(e: unknown, inputs: ReadonlySet<string>, path = 'expr'): asserts e is Expr {
  if (typeof e !== 'object' || e === null) throw new Error(`${path}: expected an expression object`);
  const n = e as Record<string, unknown>;
  const op = n.op;
  const need = (...keys: string[]) => {
    for (const k of keys) checkExpr(n[k], inputs, `${path}.${k}`);
  };
  if (op === 'input') {
    if (typeof n.name !== 'string' || !inputs.has(n.name)) {
      throw new Error(`${path}: unknown input '${String(n.name)}' (inputs: ${[...inputs].join(', ') || 'none'})`);
    }
  } else if (op === 'const') {
    if (typeof n.value !== 'number' || !Number.isFinite(n.value)) throw new Error(`${path}: constant must be a finite number`);
  } else if (typeof op === 'string' && isUnary(op)) need('a');
  else if (typeof op === 'string' && isBinary(op)) need('a', 'b');
  else if (op === 'where') need('cond', 'a', 'b');
  else if (op === 'modulate') need('x', 'scale', 'shift');
  else throw new Error(`${path}: unknown operation '${String(op)}'`);
}

export function inputsOf(exprs: readonly Expr[]): Set<string> {
  const names = new Set<string>();
  const visit = (e: Expr) => { if (e.op === 'input') names.add(e.name); children(e).forEach(visit); };
  exprs.forEach(visit);
  return names;
}

// ---------------------------------------------------------------- float64 reference

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

const smallIntExponent = (e: Expr): number | undefined =>
  e.op === 'const' && Number.isInteger(e.value) && Math.abs(e.value) <= 4 ? e.value : undefined;

const sigmoid64 = (x: number) => 1 / (1 + Math.exp(-x));
const GELU_TANH_K = Math.sqrt(2 / Math.PI);

export function evalExpr(e: Expr, env: (name: string) => number): number {
  const ev = (x: Expr) => evalExpr(x, env);
  switch (e.op) {
    case 'input': return env(e.name);
    case 'const': return e.value;
    case 'where': return ev(e.cond) !== 0 ? ev(e.a) : ev(e.b);
    case 'modulate': return ev(e.x) * (1 + ev(e.scale)) + ev(e.shift);
    case 'neg': return -ev(e.a);
    case 'exp': return Math.exp(ev(e.a));
    case 'log': return Math.log(ev(e.a));
    case 'sqrt': return Math.sqrt(ev(e.a));
    case 'rsqrt': return 1 / Math.sqrt(ev(e.a));
    case 'abs': return Math.abs(ev(e.a));
    case 'relu': return Math.max(ev(e.a), 0);
    case 'sigmoid': return sigmoid64(ev(e.a));
    case 'tanh': return Math.tanh(ev(e.a));
    case 'silu': { const x = ev(e.a); return x * sigmoid64(x); }
    case 'gelu': { const x = ev(e.a); return 0.5 * x * erfc64(-x / Math.SQRT2); }
    case 'gelu_tanh': { const x = ev(e.a); return x * sigmoid64(2 * GELU_TANH_K * (x + 0.044715 * x * x * x)); }
    case 'erf': return erf64(ev(e.a));
    case 'add': return ev(e.a) + ev(e.b);
    case 'sub': return ev(e.a) - ev(e.b);
    case 'mul': return ev(e.a) * ev(e.b);
    case 'div': return ev(e.a) / ev(e.b);
    case 'min': return Math.min(ev(e.a), ev(e.b));
    case 'max': return Math.max(ev(e.a), ev(e.b));
    case 'pow': {
      const base = ev(e.a);
      return smallIntExponent(e.b) === undefined && base < 0 ? NaN : Math.pow(base, ev(e.b));
    }
    case 'lt': return ev(e.a) < ev(e.b) ? 1 : 0;
    case 'le': return ev(e.a) <= ev(e.b) ? 1 : 0;
    case 'gt': return ev(e.a) > ev(e.b) ? 1 : 0;
    case 'ge': return ev(e.a) >= ev(e.b) ? 1 : 0;
    case 'eq': return ev(e.a) === ev(e.b) ? 1 : 0;
    case 'ne': return ev(e.a) !== ev(e.b) ? 1 : 0;
  }
}

// ---------------------------------------------------------------- WGSL

/** A WGSL f32 literal for `v` (always float-typed, parenthesised when negative). */
export function f32Literal(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`constant ${v} is not a finite number`);
  const f = Math.fround(v);
  if (!Number.isFinite(f)) throw new Error(`constant ${v} is out of f32 range`);
  let s = String(f);
  if (!/[.e]/.test(s)) s += '.0';
  return f < 0 || Object.is(f, -0) ? `(${s})` : s;
}

// Helper functions, emitted only when used. The stable forms never produce NaN for large |x|
// and keep relative accuracy in the tails (no 1 + (-1 + tiny) cancellations).
const HELPERS: Record<string, { deps: string[]; wgsl: string }> = {
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
};

export interface EmittedExprs {
  /** `let` statements in dependency order */
  lines: string[];
  /** one WGSL expression (a name or literal) per requested root */
  results: string[];
  /** helper function definitions the lines call */
  helpers: string[];
}

/**
 * Emits `let` statements computing every root. Structurally equal subtrees (also across roots)
 * are computed once. `load(name)` gives the WGSL expression holding an input's value.
 */
export function emitExprs(roots: readonly Expr[], load: (name: string) => string, prefix = 't'): EmittedExprs {
  const lines: string[] = [];
  const used = new Set<string>();
  const byKey = new Map<string, string>(); // structural key -> WGSL value
  const memo = new Map<Expr, { key: string; value: string }>();
  const helper = (name: string): string => {
    if (!used.has(name)) { HELPERS[name].deps.forEach(helper); used.add(name); }
    return name;
  };

  const visit = (e: Expr): { key: string; value: string } => {
    const cached = memo.get(e);
    if (cached) return cached;
    let key: string;
    let value: string;
    if (e.op === 'input') { key = `in:${e.name}`; value = load(e.name); }
    else if (e.op === 'const') { value = f32Literal(e.value); key = `c:${value}`; }
    else {
      const kids = children(e).map(visit);
      key = `${e.op}(${kids.map((k) => k.key).join(',')})`;
      const existing = byKey.get(key);
      if (existing !== undefined) value = existing;
      else {
        value = `${prefix}${byKey.size}`;
        byKey.set(key, value);
        lines.push(`let ${value} = ${wgslOf(e, kids.map((k) => k.value), helper)};`);
      }
    }
    const r = { key, value };
    memo.set(e, r);
    return r;
  };
  const results = roots.map((r) => visit(r).value);
  const helpers = Object.keys(HELPERS).filter((h) => used.has(h)).map((h) => HELPERS[h].wgsl);
  return { lines, results, helpers };
}

function wgslOf(e: Expr, v: string[], helper: (name: string) => string): string {
  const [a, b, c] = v;
  switch (e.op) {
    case 'where': return `select(${c}, ${b}, ${a} != 0.0)`;
    case 'modulate': return `${a} * (1.0 + ${b}) + ${c}`;
    case 'neg': return `-${a}`;
    case 'exp': case 'log': case 'sqrt': case 'abs': return `${e.op}(${a})`;
    case 'rsqrt': return `inverseSqrt(${a})`;
    case 'relu': return `max(${a}, 0.0)`;
    case 'sigmoid': return `${helper('vdm_sigmoid')}(${a})`;
    case 'silu': return `${a} * ${helper('vdm_sigmoid')}(${a})`;
    case 'tanh': return `${helper('vdm_tanh')}(${a})`;
    case 'gelu': return `${helper('vdm_gelu')}(${a})`;
    case 'gelu_tanh': return `${helper('vdm_gelu_tanh')}(${a})`;
    case 'erf': return `${helper('vdm_erf')}(${a})`;
    case 'add': return `${a} + ${b}`;
    case 'sub': return `${a} - ${b}`;
    case 'mul': return `${a} * ${b}`;
    case 'div': return `${a} / ${b}`;
    case 'min': case 'max': return `${e.op}(${a}, ${b})`;
    case 'pow': {
      const n = smallIntExponent((e as { b: Expr }).b);
      if (n === undefined) return `pow(${a}, ${b})`;
      if (n === 0) return '1.0';
      const product = new Array(Math.abs(n)).fill(a).join(' * ');
      return n > 0 ? product : `1.0 / (${product})`;
    }
    case 'lt': return `select(0.0, 1.0, ${a} < ${b})`;
    case 'le': return `select(0.0, 1.0, ${a} <= ${b})`;
    case 'gt': return `select(0.0, 1.0, ${a} > ${b})`;
    case 'ge': return `select(0.0, 1.0, ${a} >= ${b})`;
    case 'eq': return `select(0.0, 1.0, ${a} == ${b})`;
    case 'ne': return `select(0.0, 1.0, ${a} != ${b})`;
    default: throw new Error(`no WGSL for '${e.op}'`);
  }
}
