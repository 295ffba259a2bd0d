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
import { SourceFile, type Span } from '../ir/source.ts';
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

/** Whether `p` is `root` or lies below it (`..x` is a name inside it; only a `..` segment leaves). */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** The path with every symbolic link resolved; the path itself when it does not exist (yet). */
function realPath(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return p;
  }
}

const MIB = 1024 * 1024;
const sizeText = (bytes: number) => (bytes % MIB === 0 ? `${bytes / MIB} MiB` : `${bytes} bytes`);

/**
 * Reads a spec file: only a regular file (a folder, a FIFO or a device such as /dev/zero is
 * refused, never waited on), of at most LIMITS.fileBytes (refused before anything is parsed).
 * `realFile` has its links resolved already: it is opened without following one, so a link swapped
 * in after the root check is refused rather than followed.
 */
function readSource(absPath: string, realFile: string, displayPath?: string): SourceFile | string {
  let fd: number;
  try {
    fd = fs.openSync(realFile, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied'
      : code === 'ELOOP' ? 'it is a symbolic link' : code === 'EISDIR' ? 'it is a folder, not a file'
        : `cannot read it (${code ?? 'unknown error'})`;
  }
  try {
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory()) return 'it is a folder, not a file';
    if (!stat.isFile()) return 'it is not a regular file (a device, a pipe or a socket)';
    const limit = LIMITS.fileBytes;
    if (stat.size > limit) return `it has ${stat.size} bytes, over the limit of ${sizeText(limit)} for a spec file`;
    // The file may grow while it is read: never take more than the limit.
    const buffer = Buffer.alloc(Math.min(stat.size, limit) + 1);
    let length = 0;
    for (let n; length < buffer.length && (n = fs.readSync(fd, buffer, length, buffer.length - length, null)) > 0;) length += n;
    if (length > limit) return `it has more than ${sizeText(limit)}, the limit for a spec file`;
    // Editors on some systems start UTF-8 files with a byte order mark; it is not part of the text.
    const text = buffer.toString('utf8', 0, length).replace(/^\uFEFF/, '');
    return new SourceFile(absPath, text, displayPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EAGAIN' ? 'it is not a regular file' : `cannot read it (${code ?? 'unknown error'})`;
  } finally {
    fs.closeSync(fd);
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
  // Confinement compares real paths: a link inside the root that points out of it leaves it.
  const realStd = realPath(stdDir);
  const realRoot = realPath(root);
  const diagnostics: Diagnostic[] = [];
  /** Loaded modules by real path: one file reached through two names is loaded once. */
  const loaded = new Map<string, LoadedModule>();
  const order: LoadedModule[] = [];
  const stack: string[] = [];
  const realOf = new Map<LoadedModule, string>();

  const isLibrary = (real: string) => isInside(realStd, real);

  function outside(spec: string, at: Span, confine: string, linked: boolean): null {
    const where = confine === realStd ? 'the standard library folder' : `the spec root ${path.relative(process.cwd(), root) || '.'}`;
    diagnostics.push(diag('VDM003', at, `import "${spec}" ${linked ? 'resolves through a symbolic link to a file outside' : 'points outside'} ${where}`,
      'imports are relative to the importing file and must stay inside the root folder (see --root), or start with std/'));
    return null;
  }

  /** The import's path as written (for display) and with its links resolved, or null (reported). */
  function resolveImport(importer: LoadedModule, item: ImportItem): { target: string; real: string } | null {
    const spec = item.path;
    const at: Span = item.pathSpan;
    if (spec.startsWith('std/')) {
      const target = path.resolve(stdDir, spec.slice(4));
      if (!isInside(stdDir, target)) {
        diagnostics.push(diag('VDM003', at, `import "${spec}" leaves the standard library folder`));
        return null;
      }
      const real = realPath(target);
      if (!isInside(realStd, real)) return outside(spec, at, realStd, true);
      return { target, real };
    }
    const importerReal = realOf.get(importer)!;
    const library = isLibrary(importerReal);
    const target = path.resolve(path.dirname(importer.absPath), spec);
    if (path.isAbsolute(spec) || !isInside(library ? stdDir : root, target)) return outside(spec, at, library ? realStd : realRoot, false);
    const real = realPath(target);
    if (!isInside(library ? realStd : realRoot, real)) return outside(spec, at, library ? realStd : realRoot, true);
    return { target, real };
  }

  function load(absPath: string, real: string, source: SourceFile): LoadedModule {
    const parsed = parseCached(source);
    if (!parsed.ok) diagnostics.push(parsed.diagnostic);
    const module: LoadedModule = { absPath, source, ast: parsed.ok ? parsed.ast : null, imports: [], library: isLibrary(real) };
    realOf.set(module, real);
    loaded.set(real, module);
    stack.push(real);
    for (const item of module.ast?.items ?? []) {
      if (item.type !== 'import') continue;
      module.imports.push({ item, module: importOne(module, item) });
    }
    stack.pop();
    order.push(module);
    return module;
  }

  function importOne(importer: LoadedModule, item: ImportItem): LoadedModule | null {
    const resolved = resolveImport(importer, item);
    if (resolved === null) return null;
    const { target, real } = resolved;
    if (stack.includes(real)) {
      const cycle = [...stack.slice(stack.indexOf(real)), real].map((p) => path.basename(p)).join(' -> ');
      diagnostics.push(diag('VDM004', item.pathSpan, `import cycle: ${cycle}`));
      return null;
    }
    const done = loaded.get(real);
    if (done) return done;
    if (stack.length > LIMITS.importDepth) {
      diagnostics.push(diag('VDM004', item.pathSpan, `imports are nested deeper than ${LIMITS.importDepth} files`));
      return null;
    }
    // A library file is shown as it is imported, the same wherever vdm is installed or run from.
    const libraryName = isInside(stdDir, target) ? `std/${path.relative(stdDir, target).split(path.sep).join('/')}` : undefined;
    const source = readSource(target, real, libraryName);
    if (typeof source === 'string') {
      diagnostics.push(diag('VDM002', item.pathSpan, `cannot import "${item.path}": ${source}`, missingImportHint(item.path, target, stdDir)));
      return null;
    }
    return load(target, real, source);
  }

  const entryReal = realPath(entryAbs);
  const entrySource = readSource(entryAbs, entryReal);
  if (typeof entrySource === 'string') {
    const d: Diagnostic = { ...diag('VDM002', null, `cannot read ${entryPath}: ${entrySource}`), file: entryPath };
    return { entry: null, modules: [], diagnostics: [Object.freeze(d)] };
  }
  const entry = load(entryAbs, entryReal, entrySource);
  return { entry, modules: order, diagnostics };
}
