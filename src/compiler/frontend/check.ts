// The checker's entry point: load a spec and its imports, declare names, run the static checks,
// elaborate the model into the graph IR and check the diffusion section. Every problem comes back
// as a diagnostic; a failure of the compiler itself becomes one "internal error" diagnostic.
import type { DiffusionDef, ModelDef } from './ast.ts';
import { checkDiffusion } from './diffusion.ts';
import { diag, internalError, sortAndDedupe, type Diagnostic } from '../ir/diagnostics.ts';
import { Elaboration, evaluateLets, modelFrame, runModel } from './elaborate.ts';
import type { Graph } from '../ir/graph.ts';
import { GraphBuilder } from './graph-builder.ts';
import { loadProgram, type LoadedModule } from './imports.ts';
import { Abort } from './limits.ts';
import type { ModelState } from './model-state.ts';
import { NameScope } from './naming.ts';
import { declareModule, ModuleScope } from './scope.ts';
import type { SourceFile } from '../ir/source.ts';
import { staticCheck } from './static-check.ts';

export interface CheckOptions {
  /** --dim overrides. */
  readonly dims?: Readonly<Record<string, number>>;
  readonly root?: string;
  readonly stdDir?: string;
}

export interface CheckResult {
  /** Present when the file has a model and no errors. */
  readonly graph?: Graph;
  readonly diagnostics: readonly Diagnostic[];
  /** Whether the file defines a model (vdm info needs one). */
  readonly hasModel: boolean;
}

export function checkFile(file: string, options: CheckOptions = {}): CheckResult {
  try {
    return checkUnguarded(file, options);
  } catch (err) {
    return { diagnostics: [internalError(file, err)], hasModel: false };
  }
}

function checkUnguarded(file: string, options: CheckOptions): CheckResult {
  const program = loadProgram(file, { root: options.root, stdDir: options.stdDir });
  const diagnostics: Diagnostic[] = [...program.diagnostics];
  const entry = program.entry;
  if (!entry) return { diagnostics: sortAndDedupe(diagnostics), hasModel: false };

  // Modules come after their imports: each one's lets exist before an importer takes them in.
  const scopes = new Map<LoadedModule, ModuleScope>();
  const incomplete = new Set<SourceFile>();
  const letCtx = new Elaboration(null, new NameScope(), incomplete);
  for (const m of program.modules) {
    const scope = new ModuleScope(m);
    scopes.set(m, scope);
    declareModule(scope, scopes, diagnostics);
    if (scope.incomplete || !m.ast) incomplete.add(m.source);
    evaluateLets(letCtx, scope);
    staticCheck(scope, diagnostics);
  }
  diagnostics.push(...letCtx.diagnostics);

  const items = entry.ast?.items ?? [];
  const model = items.find((i): i is ModelDef => i.type === 'model');
  const diffusion = items.find((i): i is DiffusionDef => i.type === 'diffusion');
  const dims = options.dims ?? {};
  const scope = scopes.get(entry)!;
  let graph: Graph | undefined;
  if (model) {
    graph = elaborateModel(scope, model, diffusion ?? null, dims, incomplete, diagnostics);
  } else {
    if (diffusion) diagnostics.push(diag('VDM050', diffusion.span, 'a diffusion section needs a model in the same file'));
    for (const name of Object.keys(dims)) {
      diagnostics.push({ ...diag('VDM070', null, `--dim ${name}: ${entry.source.displayPath} has no model to take dims`), file: entry.source.displayPath });
    }
  }
  const sorted = sortAndDedupe(diagnostics);
  return { graph: sorted.length === 0 ? graph : undefined, diagnostics: sorted, hasModel: model !== undefined };
}

function elaborateModel(
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
    spec = checkDiffusion(ctx, modelFrame(scope), diffusion, { inputs: state.inputs, output: outputNode });
  }
  diagnostics.push(...ctx.diagnostics);
  if (ctx.diagnostics.length > 0 || aborted) return undefined;
  return builder.finish({
    model: model.name.name, file,
    dims: Object.fromEntries(state.dims), inputs: state.inputs, outputs: state.outputs, diffusion: spec,
  });
}
