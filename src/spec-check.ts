// The first step of the pipeline (pipeline.ts re-exports it): a spec checked and its model
// elaborated, with the front end alone, so that `vdm check`, `vdm diff` and `vdm fmt` start without
// loading the kernel library and the runtime.
import { checkFile } from './compiler/frontend/check.ts';
import { diag, type Diagnostic } from './compiler/ir/diagnostics.ts';
import type { Graph } from './compiler/ir/graph.ts';

export { checkFile, type CheckResult } from './compiler/frontend/check.ts';

export interface SpecOptions {
  /** dim overrides (`--dim`) */
  readonly dims?: Readonly<Record<string, number>>;
  /** the folder imports must stay in (default: the file's) */
  readonly root?: string;
  /** what needs the model, named in the hint when the file defines none (e.g. 'vdm run') */
  readonly purpose?: string;
}

/** A spec that checked without errors and defines a model. */
export interface CheckedModel {
  readonly file: string;
  readonly graph: Graph;
}

export type SpecCheck =
  | { readonly ok: true; readonly model: CheckedModel }
  | { readonly ok: false; readonly diagnostics: readonly Diagnostic[] };

/** Checks `file` and elaborates its model; a file without a model is a VDM050 diagnostic. */
export function checkSpec(file: string, options: SpecOptions = {}): SpecCheck {
  const result = checkFile(file, { dims: options.dims, root: options.root });
  if (result.diagnostics.length) return { ok: false, diagnostics: result.diagnostics };
  if (!result.graph) {
    const hint = `${options.purpose ?? 'this'} needs a file with a model`;
    return { ok: false, diagnostics: [{ ...diag('VDM050', null, `${file} defines no model`, hint), file }] };
  }
  return { ok: true, model: { file, graph: result.graph } };
}
