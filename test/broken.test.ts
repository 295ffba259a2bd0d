// The broken-spec corpus: every test/broken/*.vdm declares the diagnostics it must produce
// (`// expect: CODE LINE:COL ...`). The checker runs in-process on each and must report exactly
// that set — nothing missing, nothing extra — with a message and a caret under the span.
// Files in subfolders are only imported by the corpus, never checked on their own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkFile, type CheckResult } from '../src/compiler/frontend/check.ts';
import { formatDiagnostic, type Diagnostic } from '../src/compiler/ir/diagnostics.ts';
import { diagnosticKey, readExpectations, type ExpectedDiagnostic } from './broken/expectations.ts';
import { probeCorpus } from './broken/probe.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const corpus = path.join(repo, 'test/broken');
const specs = fs.readdirSync(corpus).filter((f) => f.endsWith('.vdm')).sort();
const probe = await probeCorpus(repo, specs.map((f) => path.join('test/broken', f)));

/** In-process results without --dim overrides, for comparing with the CLI's output. */
const plainResults = new Map<string, CheckResult>();

function actualOf(d: Diagnostic): ExpectedDiagnostic {
  if (!d.span) return { code: d.code, file: null, line: 0, col: 0 };
  const { line, col } = d.span.source.lineCol(d.span.start);
  return { code: d.code, file: d.span.source.absPath, line, col };
}

test('the corpus is large enough and every spec declares what it expects', () => {
  assert.ok(specs.length >= 40, `only ${specs.length} broken specs`);
  for (const name of specs) {
    const file = path.join(corpus, name);
    const expected = readExpectations(file, fs.readFileSync(file, 'utf8'));
    assert.ok(expected.diagnostics.length > 0, `${name} declares no expected diagnostic`);
  }
});

for (const name of specs) {
  test(`broken/${name}`, () => {
    const crash = probe.crashed.get(name);
    if (crash) assert.unreachable(`${name}: the checker's process does not survive this spec: ${crash}`);
    const file = path.join(corpus, name);
    const expected = readExpectations(file, fs.readFileSync(file, 'utf8'));
    const dims = Object.fromEntries(Object.entries(expected.dims).map(([k, v]) => [k, Number(v)]));
    const result = checkFile(file, { dims });
    if (Object.keys(dims).length === 0) plainResults.set(name, result);
    const internal = result.diagnostics.filter((d) => d.code === 'internal');
    assert.equal(internal.map(formatDiagnostic), [], `${name}: the checker failed internally`);

    const want = expected.diagnostics.map((d) => diagnosticKey(d, file)).sort();
    const got = result.diagnostics.map((d) => diagnosticKey(actualOf(d), file)).sort();
    const shown = result.diagnostics.map(formatDiagnostic).join('\n\n');
    assert.equal(got, want, `${name}: diagnostics differ; the checker printed:\n${shown}\n`);
    assert.is(result.graph, undefined, `${name}: a graph came back despite errors`);

    for (const d of result.diagnostics) {
      assert.ok(d.message.trim().length > 0, `${name}: ${d.code} has an empty message`);
      const text = formatDiagnostic(d);
      assert.match(text, new RegExp(`: error ${d.code}: \\S`), `${name}: header line missing in\n${text}`);
      if (d.span) assert.match(text, /^ +\| *\^+$/m, `${name}: no caret line in\n${text}`);
    }
    for (const needle of expected.texts) {
      assert.ok(shown.includes(needle), `${name}: the output does not mention "${needle}":\n${shown}`);
    }
  });
}

// The probe's CLI run over the whole corpus: it must print what the checker reports in the
// documented format, exit 1, and never leak a stack trace or die.
test('vdm check on the whole corpus prints every diagnostic located, exits 1, no stack trace', () => {
  const output = probe.output;
  assert.not.ok(output.includes('    at '), `a stack trace leaked:\n${output.slice(output.indexOf('    at ') - 500, output.indexOf('    at ') + 500)}`);
  for (const line of output.split('\n').filter((l) => l.includes(': error '))) {
    assert.match(line, /^\S+\.vdm(:\d+:\d+)?: error VDM\d{3}: \S/, `malformed header line: ${line}`);
  }
  // Whether the diagnostics are right is the in-process tests' job; here the CLI must agree with them.
  assert.ok(plainResults.size > 0, 'the in-process tests ran first and left results to compare');
  for (const [name, result] of plainResults) {
    const f = path.join('test/broken', name);
    if (result.diagnostics.length === 0) assert.ok(output.includes(`ok  ${f}  (`), `no "ok" line for ${f}`);
    for (const d of result.diagnostics.filter((x) => x.code !== 'internal')) {
      const header = formatDiagnostic(d).split('\n')[0];
      assert.ok(output.includes(`${header}\n`), `the CLI output lacks "${header}"`);
    }
  }
  assert.equal([...probe.crashed.keys()], [], 'vdm check died on these specs');
  assert.equal(probe.statuses, [1], `exit status\n${output.slice(0, 2000)}`);
});

test('vdm check on a valid spec exits 0', () => {
  const run = spawnSync(process.execPath, ['bin/vdm.mjs', 'check', 'test/broken/valid/tiny.vdm'], { cwd: repo, encoding: 'utf8', timeout: 30_000 });
  assert.is(run.status, 0, `${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /^ok {2}test\/broken\/valid\/tiny\.vdm/m);
  assert.not.ok(`${run.stdout}${run.stderr}`.includes('    at '));
});

test('vdm check with a malformed --dim exits 1 with VDM070 and no stack trace', () => {
  const run = spawnSync(process.execPath, ['bin/vdm.mjs', 'check', '--dim', 'h=-2', 'test/broken/valid/tiny.vdm'], { cwd: repo, encoding: 'utf8', timeout: 30_000 });
  const output = `${run.stdout}${run.stderr}`;
  assert.is(run.status, 1, output);
  assert.match(output, /error VDM070: /);
  assert.not.ok(output.includes('    at '));
});

test.run();
