// The names a file sees: its own top-level blocks and lets, plus those DEFINED in the files it
// imports (not what those import). Duplicates across these are VDM012; primitive and compile-time
// function names are reserved.
import type { BlockDef, ImportItem } from './ast.ts';
import { BUILTINS } from './builtins.ts';
import { diag, type Diagnostic } from '../ir/diagnostics.ts';
import type { LoadedModule } from './imports.ts';
import { PRIMITIVES } from '../primitives/index.ts';
import type { Value } from '../ir/values.ts';

export interface BlockRef {
  readonly def: BlockDef;
  /** The scope of the file that defines the block: its body resolves names there. */
  readonly scope: ModuleScope;
}

export interface LetRef {
  value: Value;
  readonly scope: ModuleScope;
}

export class ModuleScope {
  readonly blocks = new Map<string, BlockRef>();
  readonly lets = new Map<string, LetRef>();
  /** Set when an import failed: unknown names here are then probably not the author's mistake. */
  incomplete = false;
  /**
   * Calls to these names give an error value without a word: their definition was already reported
   * (a block redefining a primitive, a block with a repeated parameter).
   */
  readonly silenced = new Set<string>();

  constructor(readonly module: LoadedModule) {}

  ownBlocks(): BlockRef[] {
    return [...this.blocks.values()].filter((b) => b.scope === this);
  }

  ownLets(): [string, LetRef][] {
    return [...this.lets.entries()].filter(([, l]) => l.scope === this);
  }

  /** Names for did-you-mean hints. */
  *visibleNames(): Iterable<string> {
    yield* this.lets.keys();
    yield* this.blocks.keys();
  }
}

export function isReserved(name: string): boolean {
  return PRIMITIVES.has(name) || BUILTINS.has(name);
}

function where(ref: { scope: ModuleScope }): string {
  return ref.scope.module.source.displayPath;
}

/** Fills a module's scope with imported names and its own blocks (lets come from the interpreter). */
export function declareModule(scope: ModuleScope, scopes: ReadonlyMap<LoadedModule, ModuleScope>, out: Diagnostic[]): void {
  for (const { item, module } of scope.module.imports) {
    const from = module ? scopes.get(module) : undefined;
    if (!from || !module?.ast) {
      scope.incomplete = true;
      continue;
    }
    if (from.incomplete) scope.incomplete = true;
    importNames(scope, from, item, out);
  }
  for (const item of scope.module.ast?.items ?? []) {
    if (item.type !== 'block') continue;
    const name = item.name.name;
    const previous = scope.blocks.get(name);
    if (item.params.some((p, i) => item.params.findIndex((q) => q.name.name === p.name.name) !== i)) scope.silenced.add(name);
    if (isReserved(name)) {
      scope.silenced.add(name);
      out.push(diag('VDM012', item.name.span, `'${name}' is a built-in ${PRIMITIVES.has(name) ? 'primitive' : 'function'} and cannot be redefined`,
        'choose another name for the block'));
    } else if (previous) {
      out.push(diag('VDM012', item.name.span, `block '${name}' is already defined`,
        previous.scope === scope ? `first defined at ${where(previous)}:${scope.module.source.lineCol(previous.def.name.span.start).line}`
          : `it is imported from ${where(previous)}`));
    } else {
      scope.blocks.set(name, { def: item, scope });
    }
  }
}

function importNames(scope: ModuleScope, from: ModuleScope, item: ImportItem, out: Diagnostic[]): void {
  for (const name of from.silenced) if (from.module.ast?.items.some((i) => i.type === 'block' && i.name.name === name)) scope.silenced.add(name);
  for (const ref of from.ownBlocks()) {
    const name = ref.def.name.name;
    const previous = scope.blocks.get(name);
    if (previous && previous.def !== ref.def) {
      out.push(diag('VDM012', item.span, `block '${name}' is defined both in ${where(previous)} and in ${where(ref)}`));
    } else if (!previous) {
      scope.blocks.set(name, ref);
    }
  }
  for (const [name, ref] of from.ownLets()) {
    const previous = scope.lets.get(name);
    if (previous && previous !== ref) {
      out.push(diag('VDM012', item.span, `'${name}' is defined both in ${where(previous)} and in ${where(ref)}`));
    } else if (!previous) {
      scope.lets.set(name, ref);
    }
  }
}
