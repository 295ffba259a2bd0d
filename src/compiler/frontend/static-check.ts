// Checks that need no run: statement placement (VDM019), one model and one diffusion section per
// file, calls to unknown functions (VDM011) and argument lists (VDM013-016), duplicate parameters.
// This is all a library file without a model gets; in a model, elaboration finds the rest.
import type { BlockDef, CallExpr, Expr, Stmt } from './ast.ts';
import { assignedNames } from './assigned-names.ts';
import { bindArguments } from './binding.ts';
import { BUILTINS } from './builtins.ts';
import { blockParams, builtinParams, primitiveParams, unknownCallee } from './calls.ts';
import { diag, type Diagnostic } from '../ir/diagnostics.ts';
import { PRIMITIVES } from '../primitives/index.ts';
import type { ModuleScope } from './scope.ts';

type Place = 'block' | 'model' | 'top';

/** The names a body binds, and those of them that may hold a shared module (callable like a block). */
interface Locals {
  readonly all: ReadonlySet<string>;
  readonly callable: ReadonlySet<string>;
}

/** Names bound to a shared module (`cell = conv_cell as fwd`) anywhere in `stmts`. */
function moduleNames(stmts: readonly Stmt[], out: Set<string>): Set<string> {
  for (const s of stmts) {
    const bindings = s.type === 'assign' ? [s] : s.type === 'let' ? s.bindings : [];
    for (const b of bindings) {
      const module = b.value.type === 'module' || (b.value.type === 'ident' && out.has(b.value.name)); // or an alias of one
      if (module && b.target.type === 'name') out.add(b.target.name);
    }
    if (s.type === 'for' || s.type === 'repeat') moduleNames(s.body, out);
    if (s.type === 'ifStmt') {
      moduleNames(s.then, out);
      if (s.else) moduleNames(s.else, out);
    }
  }
  return out;
}

const NO_LOCALS: Locals = { all: new Set(), callable: new Set() };

export function staticCheck(scope: ModuleScope, out: Diagnostic[]): void {
  const ast = scope.module.ast;
  if (!ast) return;
  const report = (d: Diagnostic) => {
    if ((d.code === 'VDM011') && scope.incomplete) return;
    out.push(d);
  };
  let models = 0;
  let diffusions = 0;
  for (const item of ast.items) {
    switch (item.type) {
      case 'block': checkBlock(item, scope, report); break;
      case 'model':
        if (++models > 1) report(diag('VDM019', item.name.span, 'a file can define only one model'));
        checkStmts(item.body, 'model', scope, report, { all: new Set(assignedNames(item.body)), callable: moduleNames(item.body, new Set()) });
        break;
      case 'diffusion':
        if (++diffusions > 1) report(diag('VDM019', item.span, 'a file can have only one diffusion section'));
        break;
      case 'let': checkStmts([item], 'top', scope, report, NO_LOCALS); break;
      default: break;
    }
  }
}

function checkBlock(b: BlockDef, scope: ModuleScope, report: (d: Diagnostic) => void): void {
  const seen = new Set<string>();
  for (const p of b.params) {
    if (seen.has(p.name.name)) report(diag('VDM012', p.name.span, `parameter '${p.name.name}' is declared twice`));
    seen.add(p.name.name);
  }
  // A block's parameters may be passed shared modules: calling one is checked when the block runs.
  const locals: Locals = { all: new Set([...seen, ...assignedNames(b.body)]), callable: moduleNames(b.body, new Set(seen)) };
  for (const p of b.params) if (p.default) checkExpr(p.default, scope, report, locals);
  if (!hasReturn(b.body)) report(diag('VDM019', b.name.span, `block '${b.name.name}' has no return statement`));
  checkStmts(b.body, 'block', scope, report, locals);
}

function hasReturn(stmts: readonly Stmt[]): boolean {
  return stmts.some((s) => s.type === 'return'
    || ((s.type === 'for' || s.type === 'repeat') && hasReturn(s.body))
    || (s.type === 'ifStmt' && (hasReturn(s.then) || (s.else !== null && hasReturn(s.else)))));
}

/** `locals`: the names the enclosing block or model binds, for a hint when one is called like a block. */
function checkStmts(stmts: readonly Stmt[], place: Place, scope: ModuleScope, report: (d: Diagnostic) => void, locals: Locals): void {
  for (const s of stmts) {
    switch (s.type) {
      case 'dims':
      case 'input':
      case 'output':
        if (place !== 'model') report(diag('VDM019', s.span, `'${s.type}' is only allowed in a model`));
        if (s.type === 'dims') for (const d of s.dims) if (d.default) checkExpr(d.default, scope, report, locals);
        if (s.type === 'output') checkExpr(s.value, scope, report, locals);
        if (s.type === 'input') for (const a of s.tensorType.options) checkExpr(a.value, scope, report, locals);
        break;
      case 'return':
        if (place !== 'block') report(diag('VDM019', s.span, "'return' is only allowed in a block"));
        checkExpr(s.value, scope, report, locals);
        break;
      case 'assign': checkExpr(s.value, scope, report, locals); break;
      case 'let': for (const b of s.bindings) checkExpr(b.value, scope, report, locals); break;
      case 'for': checkExpr(s.iterable, scope, report, locals); checkStmts(s.body, place, scope, report, locals); break;
      case 'repeat': checkExpr(s.count, scope, report, locals); checkStmts(s.body, place, scope, report, locals); break;
      case 'ifStmt':
        checkExpr(s.cond, scope, report, locals);
        checkStmts(s.then, place, scope, report, locals);
        if (s.else) checkStmts(s.else, place, scope, report, locals);
        break;
      case 'assert': checkExpr(s.cond, scope, report, locals); break;
    }
  }
}

function checkCall(call: CallExpr, scope: ModuleScope, report: (d: Diagnostic) => void, locals: Locals): void {
  const name = call.callee.name;
  if (scope.silenced.has(name)) return;
  const block = scope.blocks.get(name);
  const primitive = PRIMITIVES.get(name);
  const builtin = BUILTINS.get(name);
  const params = block ? blockParams(block) : primitive ? primitiveParams(primitive) : builtin ? builtinParams(builtin) : null;
  if (!params) {
    if (!locals.callable.has(name)) report(unknownCallee(scope, call, locals.all.has(name)));
    return;
  }
  for (const d of bindArguments(name, call.span, params, call.args).errors) report(d);
}

function checkExpr(top: Expr, scope: ModuleScope, report: (d: Diagnostic) => void, locals: Locals): void {
  let e = top;
  // Long operator chains nest deeply on the left: follow that side in a loop.
  while (e.type === 'binary') {
    checkExpr(e.right, scope, report, locals);
    e = e.left;
  }
  switch (e.type) {
    case 'call':
      checkCall(e, scope, report, locals);
      for (const a of e.args) checkExpr(a.value, scope, report, locals);
      break;
    case 'tuple': for (const i of e.items) checkExpr(i.value, scope, report, locals); break;
    case 'index': checkExpr(e.index, scope, report, locals); break;
    case 'unary': checkExpr(e.operand, scope, report, locals); break;
    case 'range': checkExpr(e.start, scope, report, locals); checkExpr(e.end, scope, report, locals); break;
    case 'if': checkExpr(e.cond, scope, report, locals); checkExpr(e.then, scope, report, locals); checkExpr(e.else, scope, report, locals); break;
    case 'module': {
      const name = e.callee.name;
      const known = scope.silenced.has(name) || scope.blocks.has(name) || PRIMITIVES.has(name) || BUILTINS.has(name) || locals.callable.has(name);
      if (!known) report(unknownCallee(scope, { type: 'call', callee: e.callee, args: [], naming: e.naming, span: e.span }, locals.all.has(name)));
      break;
    }
    default: break;
  }
}
