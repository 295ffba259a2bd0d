// `vdm diff A B`: what changed in the model between two specs, by meaning (see src/compiler/diff.ts).
// A and B are files or git revisions of one (`main:specs/x.vdm`). Exit 0 whether or not they differ
// (1 with --fail-on-change when they do; 2 when a side cannot be checked).
// `vdm diff --git` is a git external diff driver: git passes path old-file old-hex old-mode new-file
// new-hex new-mode; the driver always exits 0 (git stops on anything else) and falls back to a text
// diff for files without a model, such as the standard library.
import type { Argv, CommandModule } from 'yargs';
import { formatDiagnostic } from '../compiler/ir/diagnostics.ts';
import { diffGraphs, totalsOf, type GraphDiff } from '../compiler/review/diff.ts';
import { human, bytes, renderMarkdown, renderText } from '../compiler/review/diff-render.ts';
import { cleanup, driverSide, resolveSide, SourceError, textDiff, type Side } from '../compiler/review/diff-sources.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { checkFile } from '../spec-check.ts';
import { parseDimArgs } from './dim-args.ts';

export type DiffFormat = 'text' | 'markdown' | 'json';
export interface DiffOptions {
  format: DiffFormat;
  failOnChange: boolean;
  git: boolean;
  color: boolean;
  dims: Record<string, number>;
}
export interface DiffIo { out(text: string): void; err(text: string): void }

type Checked = { ok: true; graph: Graph } | { ok: false; noModel: boolean; message: string };

function check(side: Side, dims: Record<string, number>): Checked {
  const result = checkFile(side.file, { dims });
  const shown = (text: string) => (side.temp ? text.split(side.temp.dir + '/').join(side.temp.shownAs) : text);
  if (result.graph) return { ok: true, graph: result.graph };
  if (!result.diagnostics.length) {
    return { ok: false, noModel: !result.hasModel, message: `${side.label}: no model to compare (the file defines no \`model\`)` };
  }
  return { ok: false, noModel: false, message: shown(result.diagnostics.map(formatDiagnostic).join('\n')) };
}

function render(diff: GraphDiff, options: DiffOptions): string {
  if (options.format === 'json') return JSON.stringify(diff, null, 2) + '\n';
  if (options.format === 'markdown') return renderMarkdown(diff);
  return renderText(diff, options.color);
}

/** Compares two specs given on the command line. */
function compare(specs: string[], options: DiffOptions, io: DiffIo): number {
  const sides: Side[] = [];
  try {
    for (const spec of specs) sides.push(resolveSide(spec));
    const [a, b] = sides.map((s) => check(s, options.dims));
    let failed = false;
    for (const r of [a, b]) if (!r.ok) { io.err(r.message); failed = true; }
    if (!a.ok || !b.ok || failed) return 2;
    const diff = diffGraphs(a.graph, b.graph, { a: sides[0].label, b: sides[1].label });
    io.out(render(diff, options));
    return options.failOnChange && !diff.same ? 1 : 0;
  } catch (e) {
    if (e instanceof SourceError) { io.err(`error VDM002: ${e.message}`); return 2; }
    throw e;
  } finally {
    sides.forEach(cleanup);
  }
}

const summary = (g: Graph) => {
  const t = totalsOf(g);
  return `${g.model}: ${human(t.params)} params, ${human(t.macs)} MACs, ${bytes(t.activationBytes)} activations`;
};

/** The git external diff driver: never fails, so `git diff` and `git log -p` keep going. */
function gitDriver(args: string[], options: DiffOptions, io: DiffIo): number {
  const [repoPath, oldFile, , , newFile] = args;
  let a: Side | null = null;
  let b: Side | null = null;
  try {
    a = driverSide(`a/${repoPath}`, repoPath, oldFile);
    b = driverSide(`b/${repoPath}`, repoPath, newFile);
    const ca = a && check(a, options.dims);
    const cb = b && check(b, options.dims);
    if (ca?.ok && cb?.ok) {
      io.out(render(diffGraphs(ca.graph, cb.graph, { a: a!.label, b: b!.label }), options));
    } else if (!a && cb?.ok) {
      io.out(`vdm diff b/${repoPath}: new file, ${summary(cb.graph)}\n`);
    } else if (!b && ca?.ok) {
      io.out(`vdm diff a/${repoPath}: deleted file, ${summary(ca.graph)}\n`);
    } else {
      for (const c of [ca, cb]) if (c && !c.ok && !c.noModel) io.out(`${c.message}\n`);
      // Git's own text diff, with the repository path in place of git's temporary file names.
      const strip = (f: string) => f.replace(/^\//, '');
      io.out(textDiff(oldFile, newFile).split('\n').map((l, i) => (i > 3 || l.startsWith('index') ? l
        : l.split(`a/${strip(oldFile)}`).join(`a/${repoPath}`).split(`b/${strip(newFile)}`).join(`b/${repoPath}`))).join('\n'));
    }
  } catch (e) {
    io.out(`vdm diff: ${(e as Error).message}\n`);
  } finally {
    cleanup(a);
    cleanup(b);
  }
  return 0;
}

export function runDiff(specs: string[], options: DiffOptions, io: DiffIo): number {
  if (options.git) {
    if (specs.length !== 7) {
      io.err(`error: --git expects the 7 arguments git passes to a diff driver (path old-file old-hex old-mode new-file new-hex new-mode), got ${specs.length}`);
      return 2;
    }
    return gitDriver(specs, options, io);
  }
  if (specs.length !== 2) {
    io.err(`error: vdm diff compares two specs (A B), got ${specs.length}`);
    return 2;
  }
  return compare(specs, options, io);
}

interface DiffArgs { specs: string[]; format: DiffFormat; 'fail-on-change': boolean; git: boolean; color?: boolean; dim?: (string | number)[] }

/** The `diff` command for yargs; `done` receives the exit code. */
export const diffCommand = (done: (code: number) => void): CommandModule<object, DiffArgs> => ({
  command: 'diff <specs..>',
  describe: 'compare two specs by meaning: modules, parameters, attention, convs, shapes, totals (A B; either may be REV:PATH)',
  builder: (y: Argv) =>
    y.positional('specs', { type: 'string', array: true, demandOption: true, describe: 'A and B: files or REV:PATH' })
      .option('format', { choices: ['text', 'markdown', 'json'] as const, default: 'text' as const, describe: 'output format' })
      .option('fail-on-change', { type: 'boolean', default: false, describe: 'exit 1 when the specs differ' })
      .option('git', { type: 'boolean', default: false, describe: 'act as a git diff driver (git passes 7 arguments)' })
      .option('color', { type: 'boolean', describe: 'color the text output (default: when writing to a terminal)' })
      .option('dim', { type: 'string', requiresArg: true, describe: 'set a dim on both sides: --dim NAME=SIZE (repeatable)' }) as unknown as Argv<DiffArgs>,
  handler: (argv) => {
    const io: DiffIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`) };
    const raw = argv.dim === undefined ? [] : Array.isArray(argv.dim) ? argv.dim : [argv.dim];
    const { dims, errors } = parseDimArgs(raw);
    if (errors.length) { io.err(errors.map(formatDiagnostic).join('\n')); done(2); return; }
    const color = argv.color ?? (Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
    done(runDiff(argv.specs.map(String), { format: argv.format, failOnChange: argv['fail-on-change'], git: argv.git, color, dims }, io));
  },
});
