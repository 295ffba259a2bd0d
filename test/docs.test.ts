// Every ```vdm example of docs/language.md is checked with `vdm check`, as a user would run it:
// plain examples must check cleanly, examples marked `// expect: VDMxxx` must report exactly
// those codes, and together the examples must show every diagnostic code of the compiler.
// The fence conventions are described in the HTML comment at the top of docs/language.md.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CODES } from '../src/compiler/ir/diagnostics.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const docPath = path.join(root, 'docs/language.md');

interface Example {
  readonly line: number;          // 1-based line of the fence's first code line
  readonly fileName: string;      // the name it is checked under
  readonly source: string;        // the text handed to the checker (fragments wrapped)
  readonly expect: readonly string[];
  readonly dims: readonly string[];
  readonly saved: boolean;        // `// file:` examples can be imported by later ones
}

const FRAGMENT_HEAD = [
  'model Fragment {',
  '  dims b = 2, c = 4, t = 8, h = 16, w = 16',
  '  input x : video[b, c, t, h, w]',
  '  input s : timestep[b]',
];
const FRAGMENT_TAIL = ['  output out = x', '}', ''];

/** Places a list of statements inside the fragment model; imports stay at the top level. */
function wrapFragment(code: string): string {
  const isImport = (l: string) => /^\s*import\s/.test(l);
  const lines = code.split('\n');
  const body = lines.filter((l) => !isImport(l)).map((l) => (l.trim() ? `  ${l}` : l));
  return [...lines.filter(isImport), ...FRAGMENT_HEAD, ...body, ...FRAGMENT_TAIL].join('\n');
}

function directives(code: string) {
  const d = { expect: [] as string[], dims: [] as string[], file: null as string | null, fragment: false };
  for (const line of code.split('\n')) {
    const m = /^\/\/\s*(expect|dims|file|fragment)\b:?\s*(.*)$/.exec(line.trim());
    if (!m) break;
    const words = m[2].trim().split(/\s+/).filter(Boolean);
    if (m[1] === 'expect') d.expect.push(...words);
    else if (m[1] === 'dims') d.dims.push(...words);
    else if (m[1] === 'file') d.file = words[0] ?? null;
    else d.fragment = true;
  }
  return d;
}

function extractExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```vdm') continue;
    let end = i + 1;
    while (end < lines.length && lines[end].trim() !== '```') end++;
    const code = lines.slice(i + 1, end).join('\n');
    const d = directives(code);
    examples.push({
      line: i + 2,
      fileName: d.file ?? `example-line-${i + 2}.vdm`,
      source: d.fragment ? wrapFragment(code) : `${code}\n`,
      expect: d.expect,
      dims: d.dims,
      saved: d.file !== null,
    });
    i = end;
  }
  return examples;
}

/** Runs `vdm check` once per set of --dim overrides; returns the codes reported per file name. */
function checkAll(dir: string, examples: readonly Example[]): Map<string, { codes: string[]; output: string }> {
  const groups = new Map<string, Example[]>();
  for (const e of examples) {
    const key = e.dims.join(' ');
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const results = new Map<string, { codes: string[]; output: string }>();
  for (const [key, group] of groups) {
    const dimArgs = key ? key.split(' ').flatMap((d) => ['--dim', d]) : [];
    const run = spawnSync(process.execPath, [path.join(root, 'bin/vdm.mjs'), 'check', ...group.map((e) => e.fileName), ...dimArgs],
      { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
    for (const e of group) results.set(e.fileName, { codes: [], output: '' });
    const groupWide = { codes: [] as string[], output: '' };
    let current = groupWide;
    for (const line of output.split('\n')) {
      const m = /^(.*?)(?::\d+:\d+)?: error (VDM\d{3}|internal)\b/.exec(line);
      const report = /^ok\s+(\S+\.vdm)\b/.exec(line) ?? /^(\S+\.vdm): \d+ errors?$/.exec(line);
      if (m) {
        // diagnostics without a file (a bad --dim) concern every file of the run
        current = (m[1].endsWith('.vdm') && results.get(path.basename(m[1]))) || groupWide;
        current.codes.push(m[2]);
      } else if (report) {
        current = results.get(path.basename(report[1])) ?? groupWide;
      }
      current.output += `${line}\n`;
    }
    if (run.error) groupWide.codes.push(`spawn failed: ${run.error.message}`);
    if (run.status !== 0 && ![...results.values()].some((r) => r.codes.length) && !groupWide.codes.length) {
      groupWide.codes.push(`exit ${run.status} without a diagnostic`);   // a crash must not pass
    }
    for (const e of group) {
      const r = results.get(e.fileName)!;
      r.codes.push(...groupWide.codes);
      r.output += groupWide.output;
    }
  }
  return results;
}

const examples = extractExamples(fs.readFileSync(docPath, 'utf8'));
let results: Map<string, { codes: string[]; output: string }> | null = null;

function outcome(e: Example) {
  if (!results) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-docs-'));
    try {
      for (const x of examples) fs.writeFileSync(path.join(dir, x.fileName), x.source);
      results = checkAll(dir, examples);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return results.get(e.fileName)!;
}

test('the reference has examples, each under its own file name', () => {
  assert.ok(examples.length >= 40, `only ${examples.length} examples`);
  const names = examples.map((e) => e.fileName);
  assert.equal(new Set(names).size, names.length, 'two examples share a file name');
  assert.ok(examples.some((e) => e.saved), 'no `// file:` example to import');
});

test('every diagnostic code is demonstrated by an example', () => {
  const shown = new Set(examples.flatMap((e) => e.expect));
  const missing = Object.keys(CODES).filter((code) => !shown.has(code));
  assert.equal(missing, [], `codes without an example: ${missing.join(', ')}`);
  const unknown = [...shown].filter((code) => !(code in CODES));
  assert.equal(unknown, [], `examples expect codes that do not exist: ${unknown.join(', ')}`);
});

for (const e of examples) {
  const label = e.expect.length ? `reports ${e.expect.join(' ')}` : 'checks cleanly';
  test(`docs/language.md:${e.line} ${label}`, () => {
    const { codes, output } = outcome(e);
    const found = [...new Set(codes)].sort();
    const wanted = [...new Set(e.expect)].sort();
    assert.equal(found, wanted, `docs/language.md:${e.line} (${e.fileName}): expected [${wanted}] got [${found}]\n${output}`);
  });
}

test.run();
