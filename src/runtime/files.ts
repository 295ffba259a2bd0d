// File-system problems are the user's situation, not bugs: a path through a file, a folder one
// cannot write to, a full disk. They are told in one line with what to do (`fileProblem`), and
// output is checked before long work (`checkWritable`) and written whole or not at all
// (`replaceFolder`: a folder of files swapped in at once, never mixed with a user's own files).
import fs from 'node:fs';
import path from 'node:path';

/** A problem with a path the user named, told in one line with what to do. */
export class FileError extends Error {
  override name = 'FileError';
}

const WHAT_TO_DO: Readonly<Record<string, string>> = {
  EACCES: 'permission denied: choose a place you can write to, or change its permissions',
  EPERM: 'not permitted: choose a place you can write to, or change its permissions',
  EROFS: 'the file system is read-only: choose a place you can write to',
  ENOTDIR: 'a part of the path is a file, not a folder: correct the path',
  EISDIR: 'it is a folder: name a file',
  ENOENT: 'no such file or folder: check the path',
  ENOSPC: 'no space left on the device: free some space or write elsewhere',
  EDQUOT: 'the disk quota is used up: free some space or write elsewhere',
  EEXIST: 'it exists already: remove it or choose another name',
  ENOTEMPTY: 'the folder is not empty: remove it or choose another',
  ENAMETOOLONG: 'the name is too long: choose a shorter path',
  ELOOP: 'too many symbolic links: correct the path',
  EMFILE: 'too many open files: close some programs or raise the limit (ulimit -n)',
  ENFILE: 'too many open files: close some programs or raise the limit (ulimit -n)',
  EBUSY: 'it is in use: close what uses it and try again',
  EXDEV: 'it cannot be moved across file systems: choose a place on the same one',
  EIO: 'an input/output error: check the disk',
};

const VERB: Readonly<Record<string, string>> = {
  open: 'open', write: 'write', read: 'read', mkdir: 'create the folder', rename: 'rename', unlink: 'remove',
  rmdir: 'remove', rm: 'remove', scandir: 'read the folder', stat: 'read', lstat: 'read', copyfile: 'copy', access: 'use',
};

/** What to do about a file-system error code (EACCES, ...), or undefined for one that is not the user's. */
export function whatToDo(code: string | undefined): string | undefined {
  return code === undefined ? undefined : WHAT_TO_DO[code];
}

/** The one-line message of a file-system error (Node's `code`/`syscall`/`path`), else undefined. */
export function fileProblem(err: unknown): string | undefined {
  if (err instanceof FileError) return err.message;
  const e = err as NodeJS.ErrnoException | undefined;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string' || !(e.code in WHAT_TO_DO)) return undefined;
  const verb = (e.syscall && VERB[e.syscall]) ?? e.syscall ?? 'use';
  const where = e.path ? ` '${e.path}'` : '';
  return `cannot ${verb}${where}: ${WHAT_TO_DO[e.code]}`;
}

/** Runs `fn`; a file-system error becomes a FileError with its one-line message. */
export function asFileError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const message = fileProblem(err);
    if (message !== undefined && !(err instanceof FileError)) throw new FileError(message);
    throw err;
  }
}

/**
 * Throws a FileError unless `file` can be written the way `writeFileAtomic` does (a temporary
 * file beside it, renamed over it): its folder exists and takes a new file, and it is not a folder.
 * Called before long work, so a bad `--out` is told at once rather than after it.
 */
export function checkWritable(file: string, flag = '--out'): void {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileError(`${flag} ${file}: the folder '${path.dirname(file)}' does not exist: create it or choose another`);
    throw new FileError(`${flag} ${file}: ${fileProblem(err) ?? String(err)}`);
  }
  if (!dirStat.isDirectory()) throw new FileError(`${flag} ${file}: '${path.dirname(file)}' is not a folder: correct the path`);
  let stat: fs.Stats | undefined;
  try { stat = fs.statSync(abs); } catch { /* a new file */ }
  if (stat?.isDirectory()) throw new FileError(`${flag} ${file}: it is a folder: name a file in it`);
  if (stat && !stat.isFile()) throw new FileError(`${flag} ${file}: it is not a regular file: name a file`);
  const probe = path.join(dir, `.${path.basename(abs)}.${process.pid}.probe`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx'));
    fs.rmSync(probe, { force: true });
  } catch (err) {
    throw new FileError(`${flag} ${file}: ${fileProblem(err) ?? String(err)}`);
  }
}

/**
 * Throws a FileError unless `dir` can be an output folder: a folder that takes new files, or a
 * path not there yet whose nearest existing parent is such a folder (it is created when written).
 * Called before long work (`vdm train`, `vdm sample`), so a bad `--out` is told at once rather
 * than after the GPU work.
 */
export function checkWritableFolder(dir: string, flag = '--out'): void {
  const fail = (why: string): never => {
    throw new FileError(`${flag} ${dir}: ${why}`);
  };
  let existing = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(existing);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a part further up is a file, said when the walk up reaches it.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') fail(fileProblem(err) ?? String(err));
    }
    if (stat) {
      if (!stat.isDirectory()) {
        if (existing === path.resolve(dir)) fail(`it is ${stat.isFile() ? 'a file' : 'not a folder'}: name a folder`);
        fail(`'${existing}' is ${stat.isFile() ? 'a file' : 'not a folder'}, not a folder: correct the path`);
      }
      break;
    }
    const parent = path.dirname(existing);
    if (parent === existing) fail('no part of the path exists: check the path');
    existing = parent;
  }
  const probe = path.join(existing, `.vdm-probe-${process.pid}-${Date.now()}`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx'));
    fs.rmSync(probe, { force: true });
  } catch (err) {
    fail(`cannot write in the folder '${existing}': ${whatToDo((err as NodeJS.ErrnoException).code) ?? String(err)}`);
  }
}

/** The file a folder written by `replaceFolder` holds, so that it may be replaced again. */
export const OUTPUT_MARKER = '.vdm-output';

export interface ReplaceFolderOptions {
  /** replace a non-empty folder vdm did not write (its contents are deleted) */
  readonly force?: boolean;
  /** the command, named in the marker and in messages */
  readonly by: string;
  /** the flag that named the folder, for messages (default: -o) */
  readonly flag?: string;
}

/**
 * Makes `dir` a folder holding exactly `files` (relative path -> text), in one step: the files are
 * written into a temporary folder beside it, which then takes its place, so a failure leaves the
 * old folder as it was. A non-empty folder that vdm did not write (no OUTPUT_MARKER) is refused
 * unless `force`; so is a path that is not a folder. Problems are FileErrors.
 */
export function replaceFolder(dir: string, files: ReadonlyMap<string, string>, options: ReplaceFolderOptions): void {
  const flag = options.flag ?? '-o';
  let abs = path.resolve(dir);
  let exists = false;
  try {
    const stat = fs.statSync(abs);
    if (!stat.isDirectory()) throw new FileError(`${flag} ${dir}: it is ${stat.isFile() ? 'a file' : 'not a folder'}: name a folder (a new one, an empty one, or one ${options.by} wrote)`);
    abs = fs.realpathSync(abs);
    exists = true;
  } catch (err) {
    if (err instanceof FileError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FileError(`${flag} ${dir}: ${fileProblem(err) ?? String(err)}`);
  }
  if (exists && !options.force) {
    const entries = asFileError(() => fs.readdirSync(abs));
    if (entries.length && !entries.includes(OUTPUT_MARKER)) {
      throw new FileError(`${flag} ${dir}: the folder is not empty and ${options.by} did not write it: `
        + `name a new or empty folder, or add --force to replace it (deleting its ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'})`);
    }
  }
  const parent = path.dirname(abs);
  const stamp = `${process.pid}-${Date.now()}`;
  const tmp = path.join(parent, `.${path.basename(abs)}.tmp-${stamp}`);
  try {
    fs.mkdirSync(parent, { recursive: true });
    fs.mkdirSync(tmp);
    for (const [rel, text] of files) {
      const file = path.join(tmp, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    }
    fs.writeFileSync(path.join(tmp, OUTPUT_MARKER), `Written by ${options.by}, which replaces this folder whole each time.\n`);
    if (!exists) {
      fs.renameSync(tmp, abs);
      return;
    }
    const old = path.join(parent, `.${path.basename(abs)}.old-${stamp}`);
    fs.renameSync(abs, old);
    try {
      fs.renameSync(tmp, abs);
    } catch (err) {
      fs.renameSync(old, abs);
      throw err;
    }
    fs.rmSync(old, { recursive: true, force: true });
  } catch (err) {
    try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* never created */ }
    if (err instanceof FileError) throw err;
    const e = err as NodeJS.ErrnoException;
    // the temporary folder is ours, not the user's: name the folder it was to be made in
    const message = e.path?.startsWith(tmp) && whatToDo(e.code)
      ? `cannot write in the folder '${path.dirname(dir)}': ${whatToDo(e.code)}` : fileProblem(err);
    throw message === undefined ? err : new FileError(`${flag} ${dir}: ${message}`);
  }
}
