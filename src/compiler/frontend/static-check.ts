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
        checkStmts(item.body, 'model', scope, report, new Set(assignedNames(item.body)));
        break;
      case 'diffusion':
        if (++diffusions > 1) report(diag('VDM019', item.span, 'a file can have only one diffusion section'));
        break;
      case 'let': checkStmts([item], 'top', scope, report, new Set()); break;
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
  const locals = new Set([...seen, ...assignedNames(b.body)]);
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
function checkStmts(stmts: readonly Stmt[], place: Place, scope: ModuleScope, report: (d: Diagnostic) => void, locals: ReadonlySet<string>): void {
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

function checkCall(call: CallExpr, scope: ModuleScope, report: (d: Diagnostic) => void, locals: ReadonlySet<string>): void {
  const name = call.callee.name;
  if (scope.silenced.has(name)) return;
  const block = scope.blocks.get(name);
  const primitive = PRIMITIVES.get(name);
  const builtin = BUILTINS.get(name);
  const params = block ? blockParams(block) : primitive ? primitiveParams(primitive) : builtin ? builtinParams(builtin) : null;
  if (!params) {
    report(unknownCallee(scope, call, locals.has(name)));
    return;
  }
  for (const d of bindArguments(name, call.span, params, call.args).errors) report(d);
}

function checkExpr(top: Expr, scope: ModuleScope, report: (d: Diagnostic) => void, locals: ReadonlySet<string>): void {
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
    default: break;
  }
}
