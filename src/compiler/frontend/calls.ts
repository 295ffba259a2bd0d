// Calls: blocks (run their body in a fresh frame of their own file), primitives (shape rule ->
// graph nodes), compile-time functions and shared modules. Unknown names are VDM011 with a
// did-you-mean hint.
import type { CallExpr, ModuleExpr } from './ast.ts';
import { bindArguments, type ParamInfo } from './binding.ts';
import { BUILTINS, type Builtin } from './builtins.ts';
import { withCallChain } from './call-chain.ts';
import type { Elaboration, Frame, ModuleCall, SharedModule } from './context.ts';
import { finite, Poisoned, unknownName } from '../ir/convert.ts';
import { DiagError, diag, fail, spanLocation } from '../ir/diagnostics.ts';
import { evalExpr } from './eval-expr.ts';
import { execBody } from './exec.ts';
import { Abort, LIMITS } from './limits.ts';
import { addNodes } from './nodes.ts';
import { PRIMITIVES } from '../primitives/index.ts';
import { BoundArgs, type BoundArg, type Primitive } from '../primitives/types.ts';
import type { BlockRef, ModuleScope } from './scope.ts';
import { didYouMean } from '../ir/suggest.ts';
import { ERROR, num, type ModuleValue, type Value } from '../ir/values.ts';
import type { NameScope } from './naming.ts';

interface EvaluatedArg extends BoundArg {
  readonly name: CallExpr['args'][number]['name'];
}

export function primitiveParams(p: Primitive): ParamInfo[] {
  return p.args.map((a) => ({ name: a.name, required: a.default === undefined, variadic: a.variadic }));
}

export function blockParams(ref: BlockRef): ParamInfo[] {
  return ref.def.params.map((p) => ({ name: p.name.name, required: p.default === null }));
}

export function builtinParams(b: Builtin): ParamInfo[] {
  return b.params.map((name, i) => ({ name, required: b.optionalFrom === undefined || i < b.optionalFrom, variadic: b.variadic }));
}

/** VDM011; `isLocal`: the name is a variable of the enclosing block or model, which cannot be called. */
export function unknownCallee(scope: ModuleScope, call: CallExpr, isLocal: boolean) {
  const name = call.callee.name;
  const candidates = [...scope.blocks.keys(), ...PRIMITIVES.keys(), ...BUILTINS.keys()];
  const value = isLocal || scope.lets.has(name);
  const hint = value ? `'${name}' is a value here, not a block or function` : didYouMean(name, candidates);
  return diag('VDM011', call.callee.span, `unknown function or block '${name}'`, hint);
}

export function evalCall(ctx: Elaboration, frame: Frame, call: CallExpr): Value {
  const args: EvaluatedArg[] = call.args.map((a) => ({ name: a.name, span: a.span, value: evalExpr(ctx, frame, a.value) }));
  const name = call.callee.name;
  const local = frame.vars.get(name);
  if (local?.kind === 'module') return callModule(ctx, frame, local, args, call);
  if (frame.scope.silenced.has(name)) return ERROR;
  const block = frame.scope.blocks.get(name);
  const primitive = block ? undefined : PRIMITIVES.get(name);
  const builtin = block || primitive ? undefined : BUILTINS.get(name);
  const params = block ? blockParams(block) : primitive ? primitiveParams(primitive) : builtin ? builtinParams(builtin) : null;
  if (!params) {
    if (local?.kind === 'error') return ERROR; // a module whose binding failed
    ctx.report(unknownCallee(frame.scope, call, local !== undefined));
    return ERROR;
  }
  const binding = bindArguments(name, call.span, params, args);
  if (binding.errors.length) {
    binding.errors.forEach((d) => ctx.report(d));
    return ERROR;
  }
  if (args.some((a) => a.value.kind === 'error')) {
    if (primitive) reportUnknownNames(ctx, primitive, args, binding.slots);
    throw new Poisoned();
  }
  if (block) return callBlock(ctx, frame, block, args, binding.slots, call);
  if (builtin) {
    // reversed, min and max walk the items of a tuple
    for (const a of args) if (a.value.kind === 'tuple') ctx.work(a.value.items.length, a.span);
    if (builtin.variadic) return builtin.run(args, call.span);
    return builtin.run(params.filter((p) => binding.slots.has(p.name)).map((p) => args[binding.slots.get(p.name)!]), call.span);
  }
  return callPrimitive(ctx, primitive!, args, binding, call);
}

const AXIS_KINDS = new Set(['axis', 'axes', 'axes-or-none']);

/** With another argument already in error, still name unknown identifiers written where no axis fits. */
function reportUnknownNames(ctx: Elaboration, p: Primitive, args: EvaluatedArg[], slots: Map<string, number>): void {
  for (const spec of p.args) {
    const i = slots.get(spec.name);
    const v = i === undefined ? undefined : args[i].value;
    if (v?.kind !== 'axis' || AXIS_KINDS.has(spec.kind)) continue;
    try {
      unknownName(v);
    } catch (err) {
      if (err instanceof DiagError) ctx.report(err.diagnostic);
    }
  }
}

function callPrimitive(ctx: Elaboration, p: Primitive, args: EvaluatedArg[], binding: ReturnType<typeof bindArguments>, call: CallExpr): Value {
  const given = new Map<string, BoundArg>();
  for (const [param, i] of binding.slots) given.set(param, args[i]);
  if (p.scalar && args.length === 1 && (args[0].value.kind === 'number' || args[0].value.kind === 'dim')) {
    const v = args[0].value;
    const x = v.kind === 'number' ? v.value : v.size;
    return num(finite(p.scalar(x), call.span, `${p.name}(${x})`));
  }
  const bound = new BoundArgs(p.name, call.span, p.args, given, binding.rest.map((i) => args[i]), ctx.modelDims);
  const result = p.apply(bound);
  return addNodes(ctx, p.name, result, call.span, call.naming);
}

/** Runs a block's body; its parameters are named under a new segment, or in `naming` (a shared module's). */
function callBlock(ctx: Elaboration, caller: Frame, ref: BlockRef, args: EvaluatedArg[], slots: Map<string, number>, call: CallExpr,
  naming?: NameScope): Value {
  ctx.step(call.span);
  if (ctx.depth >= LIMITS.recursion) {
    fail('VDM042', call.span, `block calls nest deeper than ${LIMITS.recursion} (a recursion without an end?)`);
  }
  const def = ref.def;
  const frame: Frame = { vars: new Map(), scope: ref.scope, model: null, block: def.name.name };
  const outer = ctx.naming;
  ctx.naming = naming ?? ctx.naming.add('block', call.naming?.name ?? def.name.name, call.naming !== null).children!;
  ctx.depth++;
  ctx.calls.push({
    site: { block: def.name.name, span: call.span }, definition: def.span,
    library: ref.scope.module.library, callerLibrary: caller.scope.module.library,
    args: [...slots].sort((a, b) => a[1] - b[1]).map(([name, i]) => [name, args[i].value] as const),
  });
  try {
    // Defaults run in the block's own frame, so a default may use earlier parameters.
    for (const p of def.params) {
      const i = slots.get(p.name.name);
      frame.vars.set(p.name.name, i !== undefined ? args[i].value : evalExpr(ctx, frame, p.default!));
    }
    const returned = execBody(ctx, frame, def.body);
    if (returned === null) {
      ctx.report(diag('VDM019', def.name.span, `block '${def.name.name}' ends without a return`));
      return ERROR;
    }
    return returned;
  } catch (err) {
    // An error leaving the block unreported gets the chain while this call is still on it.
    if (err instanceof DiagError) throw new DiagError(withCallChain(err.diagnostic, ctx.calls));
    if (err instanceof Abort) throw new Abort(withCallChain(err.diagnostic, ctx.calls));
    throw err;
  } finally {
    ctx.calls.pop();
    ctx.depth--;
    ctx.naming = outer;
  }
}

/**
 * `name = callee as naming`: binds a shared module. Its weights are made under `naming` here, at
 * its first call, and read by every later one. Only where tensors exist (a model or its blocks).
 */
export function bindModule(ctx: Elaboration, frame: Frame, e: ModuleExpr): Value {
  const name = e.callee.name;
  if (!ctx.graph) fail('VDM019', e.span, 'a shared module can be bound only in a model or a block, where its weights can live');
  const local = frame.vars.get(name);
  if (local?.kind === 'module') {
    fail('VDM017', e.callee.span, `'${name}' is already a shared module`, `to call it under another name, assign it: \`${e.naming.name} = ${name}\``);
  }
  if (frame.scope.silenced.has(name)) return ERROR;
  const block = frame.scope.blocks.get(name) ?? null;
  const primitive = block ? null : PRIMITIVES.get(name) ?? null;
  if (!block && !primitive) {
    if (BUILTINS.has(name)) fail('VDM017', e.callee.span, `'${name}' is a compile-time function: it has no weights to share`);
    const call: CallExpr = { type: 'call', callee: e.callee, args: [], naming: e.naming, span: e.span };
    throw new DiagError(unknownCallee(frame.scope, call, local !== undefined));
  }
  const entry = ctx.naming.add('block', e.naming.name, true);
  entry.omitSingle = primitive !== null;
  const module: SharedModule = { callee: name, naming: e.naming.name, block, primitive, entry, weights: null, firstCall: null, broken: false };
  ctx.modules.push(module);
  const value: ModuleValue = { kind: 'module', callee: name, naming: e.naming.name, id: ctx.modules.length - 1 };
  return value;
}

/**
 * A call of a shared module: the first one runs the block (or primitive) under the module's name
 * and records the weights it makes; a later one runs it under a name of its own for its nodes,
 * whose layers read the first call's weights (nodes.ts matches them, VDM025 when they differ).
 */
function callModule(ctx: Elaboration, frame: Frame, v: ModuleValue, args: EvaluatedArg[], call: CallExpr): Value {
  const m = ctx.modules[v.id];
  if (call.naming) {
    ctx.report(diag('VDM019', call.naming.span, `a call of a shared module takes no \`as\`: its weights are named where it is bound ('${m.naming}')`));
  }
  const params = m.block ? blockParams(m.block) : primitiveParams(m.primitive!);
  const binding = bindArguments(call.callee.name, call.span, params, args);
  if (binding.errors.length) {
    binding.errors.forEach((d) => ctx.report(d));
    return ERROR;
  }
  if (m.broken || args.some((a) => a.value.kind === 'error')) throw new Poisoned();
  if (ctx.moduleCalls.some((c) => c.module === m)) {
    fail('VDM025', call.span, `shared module '${m.naming}' is called inside its own call`, 'a module cannot read weights it is still making');
  }
  const replay = m.weights !== null;
  if (!replay) {
    m.weights = [];
    m.firstCall = call.span;
  }
  const outer = ctx.naming;
  let naming = m.entry.children!;
  if (replay) {
    const entry = ctx.naming.add('block', call.callee.name, false);
    entry.distinct = true;
    naming = entry.children!;
  }
  // inside a later call of an enclosing module, that call matches every weight (nodes.ts)
  const matched = replay && !ctx.moduleCalls.some((c) => c.replay);
  const use: ModuleCall = { module: m, replay, cursor: 0, span: call.span, failed: false };
  const reported = ctx.diagnostics.length;
  ctx.moduleCalls.push(use);
  let result: Value;
  try {
    if (m.block) result = callBlock(ctx, frame, m.block, args, binding.slots, call, naming);
    else {
      ctx.naming = naming;
      result = callPrimitive(ctx, m.primitive!, args, binding, { ...call, naming: null });
    }
  } catch (err) {
    if (!replay) m.broken = true;
    throw err;
  } finally {
    ctx.moduleCalls.pop();
    ctx.naming = outer;
  }
  if (!replay && ctx.diagnostics.length > reported) m.broken = true;
  if (use.failed) return ERROR;
  if (matched && use.cursor < m.weights!.length) {
    fail('VDM025', call.span, `this call of shared module '${m.naming}' makes ${use.cursor} of the ${m.weights!.length} weights its first call (${spanLocation(m.firstCall!)}) made`,
      "a shared module's later calls must make the same layers as its first: check the arguments that choose them");
  }
  return result;
}
