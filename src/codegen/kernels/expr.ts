// The elementwise expression IR: a tree of plain objects (JSON-serialisable, so the compiler can
// build and cache it), a float64 evaluator that serves as the reference, and the WGSL emitter that
// computes every distinct subexpression once (structural hashing). The functions of one argument
// come from their records in functions.ts.
import { FUNCTIONS, helperSet, isFunctionName, type FunctionName, type UseHelper } from './functions.ts';

export const UNARY_OPS = Object.keys(FUNCTIONS) as readonly FunctionName[];
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'min', 'max', 'pow',
  'lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const;
export type UnaryOp = FunctionName;
export type BinaryOp = (typeof BINARY_OPS)[number];

/**
 * Comparisons yield 1 or 0; `where` picks `a` where `cond` is non-zero, else `b`;
 * `modulate` is x * (1 + scale) + shift (adaptive layer norm); `derivative` is f'(x) of the function
 * `fn` given x and y = f(x) (backward kernels). `pow` with a constant integer
 * exponent in [-4, 4] is exact repeated multiplication and accepts negative bases; any other
 * exponent requires a base >= 0 (a negative base gives NaN, as WGSL's pow does).
 */
export type Expr =
  | { op: 'input'; name: string }
  | { op: 'const'; value: number }
  | { op: UnaryOp; a: Expr }
  | { op: BinaryOp; a: Expr; b: Expr }
  | { op: 'where'; cond: Expr; a: Expr; b: Expr }
  | { op: 'modulate'; x: Expr; scale: Expr; shift: Expr }
  | { op: 'derivative'; fn: UnaryOp; x: Expr; y: Expr };

const isUnaryNode = (e: Expr): e is { op: UnaryOp; a: Expr } => isFunctionName(e.op);
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
export const derivative = (fn: UnaryOp, x: Expr, y: Expr): Expr => ({ op: 'derivative', fn, x, y });

/** Operands of a node, in a fixed order. */
export function children(e: Expr): Expr[] {
  switch (e.op) {
    case 'input': case 'const': return [];
    case 'where': return [e.cond, e.a, e.b];
    case 'modulate': return [e.x, e.scale, e.shift];
    case 'derivative': return [e.x, e.y];
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
  } else if (typeof op === 'string' && isFunctionName(op)) need('a');
  else if (typeof op === 'string' && isBinary(op)) need('a', 'b');
  else if (op === 'where') need('cond', 'a', 'b');
  else if (op === 'modulate') need('x', 'scale', 'shift');
  else if (op === 'derivative') {
    if (typeof n.fn !== 'string' || !isFunctionName(n.fn)) throw new Error(`${path}: unknown function '${String(n.fn)}'`);
    need('x', 'y');
  }
  else throw new Error(`${path}: unknown operation '${String(op)}'`);
}

export function inputsOf(exprs: readonly Expr[]): Set<string> {
  const names = new Set<string>();
  const visit = (e: Expr) => { if (e.op === 'input') names.add(e.name); children(e).forEach(visit); };
  exprs.forEach(visit);
  return names;
}

// ---------------------------------------------------------------- float64 reference

const smallIntExponent = (e: Expr): number | undefined =>
  e.op === 'const' && Number.isInteger(e.value) && Math.abs(e.value) <= 4 ? e.value : undefined;

export function evalExpr(e: Expr, env: (name: string) => number): number {
  const ev = (x: Expr) => evalExpr(x, env);
  if (isUnaryNode(e)) return FUNCTIONS[e.op].f64(ev(e.a));
  switch (e.op) {
    case 'input': return env(e.name);
    case 'const': return e.value;
    case 'where': return ev(e.cond) !== 0 ? ev(e.a) : ev(e.b);
    case 'modulate': return ev(e.x) * (1 + ev(e.scale)) + ev(e.shift);
    case 'derivative': return FUNCTIONS[e.fn].derivative(ev(e.x), ev(e.y));
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
  const { use, definitions } = helperSet();
  const byKey = new Map<string, string>(); // structural key -> WGSL value
  const memo = new Map<Expr, { key: string; value: string }>();

  const visit = (e: Expr): { key: string; value: string } => {
    const cached = memo.get(e);
    if (cached) return cached;
    let key: string;
    let value: string;
    if (e.op === 'input') { key = `in:${e.name}`; value = load(e.name); }
    else if (e.op === 'const') { value = f32Literal(e.value); key = `c:${value}`; }
    else {
      const kids = children(e).map(visit);
      key = `${e.op === 'derivative' ? `d.${e.fn}` : e.op}(${kids.map((k) => k.key).join(',')})`;
      const existing = byKey.get(key);
      if (existing !== undefined) value = existing;
      else {
        value = `${prefix}${byKey.size}`;
        byKey.set(key, value);
        lines.push(`let ${value} = ${wgslOf(e, kids.map((k) => k.value), use)};`);
      }
    }
    const r = { key, value };
    memo.set(e, r);
    return r;
  };
  const results = roots.map((r) => visit(r).value);
  return { lines, results, helpers: definitions() };
}

function wgslOf(e: Expr, v: string[], use: UseHelper): string {
  const [a, b, c] = v;
  if (isUnaryNode(e)) return FUNCTIONS[e.op].wgsl(a, use);
  switch (e.op) {
    case 'where': return `select(${c}, ${b}, ${a} != 0.0)`;
    case 'modulate': return `${a} * (1.0 + ${b}) + ${c}`;
    case 'derivative': return FUNCTIONS[e.fn].derivativeWgsl(a, b, use);
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
