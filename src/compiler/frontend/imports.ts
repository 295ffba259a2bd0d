// Loads a spec and everything it imports. `std/...` is the standard library folder; other paths are
// relative to the importing file and must stay inside its root (VDM003): the spec root for user
// files, the library folder for library files. Missing files VDM002, cycles and deep nesting VDM004.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileAst, ImportItem } from './ast.ts';
import { diag, type Diagnostic } from '../ir/diagnostics.ts';
import { LIMITS } from './limits.ts';
import { parseCached } from './ast-cache.ts';
import { SourceFile, readSpecText, type Span } from '../ir/source.ts';
import { closest } from '../ir/suggest.ts';

export const STD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../std');

export interface LoadedImport {
  readonly item: ImportItem;
  /** null when the import failed (reported); names from it are then unknown. */
  readonly module: LoadedModule | null;
}

export interface LoadedModule {
  readonly absPath: string;
  readonly source: SourceFile;
  /** null when the file has a syntax error (reported). */
  readonly ast: FileAst | null;
  readonly imports: LoadedImport[];
  /** A file of the standard library (not the user's own spec). */
  readonly library: boolean;
}

export interface Program {
  readonly entry: LoadedModule | null;
  /** Every loaded module, each after the modules it imports. */
  readonly modules: readonly LoadedModule[];
  readonly diagnostics: readonly Diagnostic[];
}

export interface LoadOptions {
  /** Folder user imports must stay in; default: the entry file's folder. */
  readonly root?: string;
  readonly stdDir?: string;
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function readSource(absPath: string, displayPath?: string): SourceFile | string {
  try {
    const stat = fs.statSync(absPath);
    if (stat.isDirectory()) return 'it is a folder, not a file';
    // Editors on some systems start UTF-8 files with a byte order mark; it is not part of the text.
    return new SourceFile(absPath, readSpecText(absPath), displayPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : `cannot read it (${code ?? 'unknown error'})`;
  }
}

/** A near file name in the folder the import points into; for the library, else its list of files. */
function missingImportHint(spec: string, target: string, stdDir: string): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(target)).filter((n) => n.endsWith('.vdm'));
  } catch {
    return undefined;
  }
  const near = closest(path.basename(target), names);
  const written = (n: string) => `${spec.slice(0, spec.length - path.basename(spec).length)}${n}`;
  if (near) return `did you mean "${written(near)}"?`;
  if (path.dirname(target) === stdDir && names.length) return `the standard library has ${names.sort().map((n) => `"std/${n}"`).join(', ')}`;
  return undefined;
}

export function loadProgram(entryPath: string, options: LoadOptions = {}): Program {
  const stdDir = path.resolve(options.stdDir ?? STD_DIR);
  const entryAbs = path.resolve(entryPath);
  const root = path.resolve(options.root ?? path.dirname(entryAbs));
  const diagnostics: Diagnostic[] = [];
  const loaded = new Map<string, LoadedModule>();
  const order: LoadedModule[] = [];
  const stack: string[] = [];

  const rootOf = (file: string) => (isInside(stdDir, file) ? stdDir : root);

  function resolveImport(importer: LoadedModule, item: ImportItem): string | null {
    const spec = item.path;
    const at: Span = item.pathSpan;
    if (spec.startsWith('std/')) {
      const target = path.resolve(stdDir, spec.slice(4));
      if (!isInside(stdDir, target)) {
        diagnostics.push(diag('VDM003', at, `import "${spec}" leaves the standard library folder`));
        return null;
      }
      return target;
    }
    const confine = rootOf(importer.absPath);
    const target = path.resolve(path.dirname(importer.absPath), spec);
    if (path.isAbsolute(spec) || !isInside(confine, target)) {
      diagnostics.push(diag('VDM003', at, `import "${spec}" points outside the spec root ${path.relative(process.cwd(), confine) || '.'}`,
        'imports are relative to the importing file and must stay inside the root folder (see --root), or start with std/'));
      return null;
    }
    return target;
  }

  function load(absPath: string, source: SourceFile): LoadedModule {
    const parsed = parseCached(source);
    if (!parsed.ok) diagnostics.push(parsed.diagnostic);
    const module: LoadedModule = { absPath, source, ast: parsed.ok ? parsed.ast : null, imports: [], library: isInside(stdDir, absPath) };
    loaded.set(absPath, module);
    stack.push(absPath);
    for (const item of module.ast?.items ?? []) {
      if (item.type !== 'import') continue;
      module.imports.push({ item, module: importOne(module, item) });
    }
    stack.pop();
    order.push(module);
    return module;
  }

  function importOne(importer: LoadedModule, item: ImportItem): LoadedModule | null {
    const target = resolveImport(importer, item);
    if (target === null) return null;
    if (stack.includes(target)) {
      const cycle = [...stack.slice(stack.indexOf(target)), target].map((p) => path.basename(p)).join(' -> ');
      diagnostics.push(diag('VDM004', item.pathSpan, `import cycle: ${cycle}`));
      return null;
    }
    const done = loaded.get(target);
    if (done) return done;
    if (stack.length > LIMITS.importDepth) {
      diagnostics.push(diag('VDM004', item.pathSpan, `imports are nested deeper than ${LIMITS.importDepth} files`));
      return null;
    }
    // A library file is shown as it is imported, the same wherever vdm is installed or run from.
    const libraryName = isInside(stdDir, target) ? `std/${path.relative(stdDir, target).split(path.sep).join('/')}` : undefined;
    const source = readSource(target, libraryName);
    if (typeof source === 'string') {
      diagnostics.push(diag('VDM002', item.pathSpan, `cannot import "${item.path}": ${source}`, missingImportHint(item.path, target, stdDir)));
      return null;
    }
    return load(target, source);
  }

  const entrySource = readSource(entryAbs);
  if (typeof entrySource === 'string') {
    const d: Diagnostic = { ...diag('VDM002', null, `cannot read ${entryPath}: ${entrySource}`), file: entryPath };
    return { entry: null, modules: [], diagnostics: [Object.freeze(d)] };
  }
  const entry = load(entryAbs, entrySource);
  return { entry, modules: order, diagnostics };
}
