// Runs a program: each file's top-level lets (in import order), then the model body, which unrolls
// blocks, loops and ifs into the graph.
import type { LetStmt, ModelDef } from './ast.ts';
import { Elaboration, type Frame } from './context.ts';
import { DiagError, diag } from '../ir/diagnostics.ts';
import { evalExpr } from './eval-expr.ts';
import { bindTarget, execBody } from './exec.ts';
import type { ModelState } from './model-state.ts';
import { Poisoned } from '../ir/convert.ts';
import type { ModuleScope } from './scope.ts';

/** Evaluates a file's top-level lets into its scope (VDM012 when a name is defined again). */
export function evaluateLets(ctx: Elaboration, scope: ModuleScope): void {
  const frame: Frame = { vars: new Map(), scope, model: null, block: null };
  for (const item of scope.module.ast?.items ?? []) {
    if (item.type !== 'let') continue;
    for (const b of (item as LetStmt).bindings) {
      const value = evalExpr(ctx, frame, b.value);
      try {
        bindTarget(b.target, value, (name, v, span) => {
          const previous = scope.lets.get(name);
          if (previous) {
            ctx.report(diag('VDM012', span, `'${name}' is already defined`,
              previous.scope === scope ? undefined : `it is imported from ${previous.scope.module.source.displayPath}`));
            return;
          }
          scope.lets.set(name, { value: v, scope });
        });
      } catch (err) {
        if (err instanceof DiagError) ctx.report(err.diagnostic);
        else if (!(err instanceof Poisoned)) throw err;
      }
    }
  }
}

export function runModel(ctx: Elaboration, scope: ModuleScope, model: ModelDef, state: ModelState): void {
  const frame: Frame = { vars: new Map(), scope, model: state, block: null };
  execBody(ctx, frame, model.body);
  if (state.outputNames.size === 0) ctx.report(diag('VDM050', model.name.span, `model '${model.name.name}' has no output`, 'add e.g. `output eps = x`'));
}

export function modelFrame(scope: ModuleScope): Frame {
  return { vars: new Map(), scope, model: null, block: null };
}

export { Elaboration };
