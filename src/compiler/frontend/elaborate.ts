// Runs a program: each file's top-level lets (in import order), then the model body, which unrolls
// blocks, loops and ifs into the graph under the --dim overrides, then the diffusion section.
import type { DiffusionDef, LetStmt, ModelDef } from './ast.ts';
import { Elaboration, type Frame } from './context.ts';
import { DiagError, diag, type Diagnostic } from '../ir/diagnostics.ts';
import { checkDiffusion } from './diffusion.ts';
import { evalExpr } from './eval-expr.ts';
import { bindTarget, execBody } from './exec.ts';
import type { Graph } from '../ir/graph.ts';
import { GraphBuilder } from './graph-builder.ts';
import { Abort } from './limits.ts';
import type { ModelState } from './model-state.ts';
import { Poisoned } from '../ir/convert.ts';
import type { ModuleScope } from './scope.ts';
import type { SourceFile } from '../ir/source.ts';

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

function runModel(ctx: Elaboration, scope: ModuleScope, model: ModelDef, state: ModelState): void {
  const frame: Frame = { vars: new Map(), scope, model: state, block: null };
  execBody(ctx, frame, model.body);
  if (state.outputNames.size === 0) ctx.report(diag('VDM050', model.name.span, `model '${model.name.name}' has no output`, 'add e.g. `output eps = x`'));
}

function modelFrame(scope: ModuleScope): Frame {
  return { vars: new Map(), scope, model: null, block: null };
}

/**
 * Elaborates `model` (with its diffusion section) into the graph IR; problems go to `diagnostics`,
 * and any problem means no graph.
 */
export function elaborateModel(
  scope: ModuleScope, model: ModelDef, diffusion: DiffusionDef | null, dims: Readonly<Record<string, number>>,
  incomplete: Set<SourceFile>, diagnostics: Diagnostic[],
): Graph | undefined {
  const builder = new GraphBuilder();
  const ctx = new Elaboration(builder, builder.root, incomplete);
  const file = scope.module.source.displayPath;
  const overrides = new Map<string, number>();
  for (const [name, size] of Object.entries(dims)) {
    if (!Number.isInteger(size) || size <= 0 || size > 2 ** 31) {
      diagnostics.push({ ...diag('VDM070', null, `--dim ${name}=${size}: a dim must be a positive integer up to 2^31`), file });
      overrides.set(name, NaN); // reported: the dim becomes an error value
    } else {
      overrides.set(name, size);
    }
  }
  const state: ModelState = { dims: new Map(), overrides, usedOverrides: new Set(), inputs: [], outputs: [], outputNames: new Set() };
  ctx.modelDims = state.dims;
  let aborted = false;
  try {
    runModel(ctx, scope, model, state);
  } catch (err) {
    if (!(err instanceof Abort)) throw err;
    ctx.report(err.diagnostic);
    aborted = true;
  }
  for (const name of overrides.keys()) {
    if (!state.usedOverrides.has(name)) {
      const declared = [...state.dims.keys()];
      diagnostics.push({
        ...diag('VDM070', null, `--dim ${name}: model '${model.name.name}' has no dim '${name}'`,
          declared.length ? `its dims: ${declared.join(', ')}` : 'it declares no dims'),
        file,
      });
    }
  }
  let spec = null;
  if (diffusion && !aborted) {
    const first = state.outputs[0];
    const outputNode = first === undefined ? null : builder.nodeAxes(first.node);
    spec = checkDiffusion(ctx, modelFrame(scope), diffusion, { inputs: state.inputs, output: outputNode, used: builder.inputsReaching(state.outputs.map((o) => o.node)) });
  }
  diagnostics.push(...ctx.diagnostics);
  if (ctx.diagnostics.length > 0 || aborted) return undefined;
  return builder.finish({
    model: model.name.name, file,
    dims: Object.fromEntries(state.dims), inputs: state.inputs, outputs: state.outputs, diffusion: spec,
  });
}

export { Elaboration };
