// Where the two sides of `vdm diff` come from: a file on disk, a git revision (`main:specs/x.vdm`),
// or the temporary files git hands an external diff driver. A revision or a driver's old file is
// written into a temporary folder together with the other .vdm files of its folder (from the same
// revision, or from the working tree for the driver), so relative imports resolve as they would
// have; `std/...` always comes from this compiler's standard library.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSpecText } from '../ir/source.ts';

export interface Side {
  /** What people see: the path as given, `REV:path`, or `a/path` for the git driver. */
  readonly label: string;
  /** The file to check. */
  readonly file: string;
  /** Temporary folder to delete afterwards, and the prefix to show instead of it in messages. */
  readonly temp?: { dir: string; shownAs: string };
}

export class SourceError extends Error {}

function git(args: string[], cwd = process.cwd()): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 2 ** 20 });
}

function gitTop(): string {
  try {
    return git(['rev-parse', '--show-toplevel']).trim();
  } catch {
    throw new SourceError('not inside a git repository, so REV:PATH cannot be read');
  }
}

/** Writes `files` (relative path -> text) into a new temporary folder. */
function writeTree(files: Map<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-diff-'));
  for (const [rel, text] of files) {
    const target = path.join(dir, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, text);
  }
  return dir;
}

/** `REV:path` (path from the repository top, or from here when it starts with ./ or ../). */
function fromRevision(spec: string, rev: string, file: string): Side {
  const top = gitTop();
  const rel = (file.startsWith('./') || file.startsWith('../') ? path.relative(top, path.resolve(file)) : file).split(path.sep).join('/');
  try {
    git(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], top);
  } catch {
    throw new SourceError(`'${rev}' is not a git revision (in ${spec})`);
  }
  let entry: string;
  try {
    entry = git(['show', `${rev}:${rel}`], top);
  } catch {
    throw new SourceError(`${rel} does not exist at ${rev}`);
  }
  const folder = path.posix.dirname(rel);
  const files = new Map<string, string>();
  const listed = git(['ls-tree', '-r', '--name-only', rev, '--', folder === '.' ? '.' : `${folder}/`], top).split('\n');
  for (const f of listed) if (f.endsWith('.vdm') && f !== rel) files.set(f, git(['show', `${rev}:${f}`], top));
  files.set(rel, entry);
  const dir = writeTree(files);
  return { label: spec, file: path.join(dir, rel), temp: { dir, shownAs: `${rev}:` } };
}

/** A command-line argument: an existing file, else REV:PATH. */
export function resolveSide(spec: string): Side {
  if (fs.existsSync(spec)) {
    if (fs.statSync(spec).isDirectory()) throw new SourceError(`${spec} is a folder; give a .vdm file`);
    return { label: spec, file: path.resolve(spec) };
  }
  const m = /^([^:]+):(.+)$/.exec(spec);
  if (!m) throw new SourceError(`cannot read '${spec}': no such file (a git revision reads REV:PATH, e.g. main:specs/dit-s-2.vdm)`);
  return fromRevision(spec, m[1], m[2]);
}

/**
 * One side of a git external diff call: `repoPath` is the file's path in the repository, `given`
 * the file git wrote (or the working-tree file itself), null for /dev/null (added or deleted file).
 */
export function driverSide(label: string, repoPath: string, given: string): Side | null {
  if (given === '/dev/null') return null;
  const abs = path.resolve(repoPath);
  if (fs.existsSync(abs) && fs.realpathSync(abs) === fs.realpathSync(given)) return { label, file: abs };
  // Siblings from the working tree, the file itself from what git gave us.
  const folder = path.dirname(abs);
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(p);
      else if (e.isFile() && e.name.endsWith('.vdm')) files.set(path.relative(folder, p), readSpecText(p));
    }
  };
  walk(folder);
  files.set(path.basename(abs), readSpecText(given));
  const dir = writeTree(files);
  return { label, file: path.join(dir, path.basename(abs)), temp: { dir, shownAs: `${label.slice(0, 2)}${path.dirname(repoPath) === '.' ? '' : `${path.dirname(repoPath)}/`}` } };
}

export function cleanup(side: Side | null): void {
  if (side?.temp) fs.rmSync(side.temp.dir, { recursive: true, force: true });
}

/** A plain text diff for files vdm cannot compare by meaning (no model, or errors). */
export function textDiff(a: string, b: string): string {
  try {
    git(['diff', '--no-index', '--no-ext-diff', '--', a, b]);
    return '';
  } catch (e) {
    const out = (e as { stdout?: string }).stdout;
    return typeof out === 'string' ? out : '';
  }
}
