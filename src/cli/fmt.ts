// `vdm fmt FILE...`: rewrites specs in the canonical layout (see src/compiler/fmt.ts for the rules).
// `--check` writes nothing, lists the files that would change and exits 1 if there are any.
// A folder stands for every .vdm file below it; `--stdin` (or `-`) formats standard input to
// standard output.
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { formatSource } from '../compiler/review/fmt.ts';
import { sameMeaning } from '../compiler/review/fmt-verify.ts';
import { parseSource } from '../compiler/frontend/parse.ts';
import { SourceFile, displayPathOf, readSpecText } from '../compiler/ir/source.ts';
import { diag, formatDiagnostic, internalError } from '../compiler/ir/diagnostics.ts';
import { fileProblem } from '../runtime/files.ts';

export interface FmtIo { out(text: string): void; err(text: string): void; readStdin(): string }

type Outcome = { ok: true; formatted: string } | { ok: false; message: string };

/** Formats one source text, proving the result parses to the same AST before handing it back. */
export function formatChecked(absPath: string, text: string): Outcome {
  try {
    const before = parseSource(new SourceFile(absPath, text));
    if (!before.ok) return { ok: false, message: formatDiagnostic(before.diagnostic) };
    const formatted = formatSource(text);
    const after = parseSource(new SourceFile(absPath, formatted));
    if (!after.ok || !sameMeaning(before.ast, after.ast)) throw new Error('the formatted text does not mean the same as the input');
    return { ok: true, formatted };
  } catch (error) {
    return { ok: false, message: formatDiagnostic(internalError(displayPathOf(absPath), error)) };
  }
}

function collect(arg: string, into: string[], io: FmtIo): boolean {
  const abs = path.resolve(arg);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    io.err(formatDiagnostic({ ...diag('VDM002', null, `cannot read '${arg}': no such file or directory`), file: arg }));
    return false;
  }
  if (!stat.isDirectory()) { into.push(abs); return true; }
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules') walk(p);
      else if (entry.isFile() && entry.name.endsWith('.vdm')) into.push(p);
    }
  };
  walk(abs);
  return true;
}

/** Runs the command; returns the exit code. */
export function runFmt(args: readonly string[], check: boolean, io: FmtIo): number {
  let failed = false;
  if (args.includes('-')) {
    const result = formatChecked(path.resolve('<stdin>.vdm'), io.readStdin());
    if (!result.ok) { io.err(result.message); return 1; }
    if (!check) io.out(result.formatted);
    else if (result.formatted !== io.readStdin()) { io.out('<stdin>\n'); return 1; }
    return 0;
  }
  const files: string[] = [];
  for (const arg of args) if (!collect(arg, files, io)) failed = true;
  const changed: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readSpecText(file);
    } catch (error) {
      io.err(formatDiagnostic({ ...diag('VDM002', null, `cannot read '${displayPathOf(file)}': ${(error as Error).message}`), file: displayPathOf(file) }));
      failed = true;
      continue;
    }
    const result = formatChecked(file, text);
    if (!result.ok) { io.err(result.message); failed = true; continue; }
    if (result.formatted === text) continue;
    if (!check) {
      try {
        fs.writeFileSync(file, result.formatted);
      } catch (error) {
        // a read-only file or folder is the user's to fix: one line, and the other files go on
        const code = (error as NodeJS.ErrnoException).code;
        io.err(code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? `vdm fmt: ${displayPathOf(file)} is not formatted but cannot be written (${code}): make it writable, or print the formatted text with \`vdm fmt --stdin < ${displayPathOf(file)}\``
          : `vdm fmt: ${displayPathOf(file)} is not formatted and ${fileProblem(error) ?? (error as Error).message}`);
        failed = true;
        continue;
      }
    }
    changed.push(displayPathOf(file));
  }
  for (const file of changed) io.out(`${file}\n`);
  if (check && changed.length) {
    io.err(`${changed.length} file${changed.length === 1 ? '' : 's'} not formatted; run \`vdm fmt\` on ${changed.length === 1 ? 'it' : 'them'}\n`);
    return 1;
  }
  return failed ? 1 : 0;
}

const processIo: FmtIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  readStdin: (() => { let cached: string | undefined; return () => (cached ??= readSpecText(0)); })(),
};

interface FmtArgs { files?: string[]; check: boolean; stdin: boolean }

/** The `fmt` command for yargs; `done` receives the exit code. */
export const fmtCommand = (done: (code: number) => void): CommandModule<object, FmtArgs> => ({
  command: 'fmt [files..]',
  describe: 'rewrite .vdm files in the canonical layout (a folder means every .vdm file in it)',
  builder: (y: Argv) =>
    y.positional('files', { type: 'string', array: true, describe: 'files or folders' })
      .option('check', { type: 'boolean', default: false, describe: 'write nothing; list files that would change and exit 1 if any' })
      .option('stdin', { type: 'boolean', default: false, describe: 'format standard input to standard output (for editors)' }) as unknown as Argv<FmtArgs>,
  handler: (argv) => {
    const files = (argv.files ?? []).map(String);
    if (argv.stdin) files.push('-');
    if (!files.length) {
      processIo.err('vdm fmt: name the files or folders to format, or use --stdin');
      done(2);
      return;
    }
    done(runFmt(files, argv.check, processIo));
  },
});
