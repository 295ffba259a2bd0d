// The README's example spec must check, and the diagnostic it shows must be the checker's real output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkFile } from '../src/compiler/frontend/check.ts';
import { formatDiagnostic } from '../src/compiler/ir/diagnostics.ts';
import { formatSource } from '../src/compiler/review/fmt.ts';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
/** Bodies of the fenced blocks whose info string is `lang`, read line by line so open and close pair up. */
function fences(lang: string): string[] {
  const out: string[] = [];
  let open: { lang: string; lines: string[] } | undefined;
  for (const line of readme.split('\n')) {
    if (!line.startsWith('```')) { open?.lines.push(line); continue; }
    if (open) { if (open.lang === lang) out.push(open.lines.join('\n') + '\n'); open = undefined; }
    else open = { lang: line.slice(3).trim(), lines: [] };
  }
  return out;
}

test('the README example checks, and its error example is what vdm prints', () => {
  const [spec] = fences('vdm');
  assert.ok(spec, 'README has a vdm example');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-readme-'));
  const cwd = process.cwd();
  try {
    fs.mkdirSync(path.join(dir, 'specs'));
    fs.writeFileSync(path.join(dir, 'specs/latte.vdm'), spec);
    process.chdir(dir); // diagnostics print paths relative to the working folder
    const ok = checkFile('specs/latte.vdm');
    assert.equal(ok.diagnostics.map(formatDiagnostic), []);
    assert.ok(ok.graph, 'the example has a model');

    const shown = fences('').find((f) => f.includes('error VDM'));
    assert.ok(shown, 'README shows a diagnostic');
    const bad = checkFile('specs/latte.vdm', { dims: { h: 31 } });
    assert.is(bad.diagnostics.map(formatDiagnostic).join('\n').trimEnd(), shown!.trimEnd());
  } finally {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the README example is in canonical layout, so saving it under specs/ keeps `vdm fmt --check specs` passing', () => {
  const [spec] = fences('vdm');
  assert.fixture(spec, formatSource(spec), 'run `vdm fmt --stdin` on the README example');
});

test.run();
