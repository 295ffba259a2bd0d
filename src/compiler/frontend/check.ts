// The checker's entry point: load a spec and its imports, declare names, run the static checks,
// elaborate the model into the graph IR and check the diffusion section. Every problem comes back
// as a diagnostic; a failure of the compiler itself becomes one "internal error" diagnostic.
import type { DiffusionDef, ModelDef } from './ast.ts';
import { diag, internalError, sortAndDedupe, type Diagnostic } from '../ir/diagnostics.ts';
import { Elaboration, elaborateModel, evaluateLets } from './elaborate.ts';
import type { Graph } from '../ir/graph.ts';
import { loadProgram, type LoadedModule } from './imports.ts';
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
