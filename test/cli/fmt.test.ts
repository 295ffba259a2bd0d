// `vdm fmt`: the spec library is in canonical layout; --check lists and writes nothing, write mode
// rewrites, stdin goes to stdout; bad input gives diagnostics. Runs on files in a temporary folder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runFmt, type FmtIo } from '../../src/cli/fmt.ts';

const root = path.resolve(import.meta.dirname, '../..');

test('the spec library and the standard library are in canonical layout (vdm fmt --check)', () => {
  const io = fakeIo();
  const code = runFmt([path.join(root, 'specs'), path.join(root, 'src/std')], true, io);
  assert.is(io.stdout, '', `not formatted (run \`vdm fmt\` on them):\n${io.stdout}`);
  assert.is(code, 0, io.stderr);
});

function fakeIo(stdin = ''): FmtIo & { stdout: string; stderr: string } {
  const io = { stdout: '', stderr: '', out: (t: string) => { io.stdout += t; }, err: (t: string) => { io.stderr += t + '\n'; }, readStdin: () => stdin };
  return io;
}

test('CLI: --check lists files that would change and writes nothing; write mode rewrites them', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-fmt-'));
  try {
    const messy = path.join(dir, 'messy.vdm');
    const tidy = path.join(dir, 'tidy.vdm');
    fs.writeFileSync(messy, 'let a=1\n');
    fs.writeFileSync(tidy, 'let a = 1\n');
    let io = fakeIo();
    assert.is(runFmt([messy, tidy], true, io), 1);
    assert.match(io.stdout, /messy\.vdm/);
    assert.not.match(io.stdout, /tidy\.vdm/);
    assert.is(fs.readFileSync(messy, 'utf8'), 'let a=1\n');
    io = fakeIo();
    assert.is(runFmt([dir], false, io), 0);
    assert.is(fs.readFileSync(messy, 'utf8'), 'let a = 1\n');
    io = fakeIo();
    assert.is(runFmt([dir], true, io), 0);
    assert.is(io.stdout, '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: syntax errors and missing files are diagnostics, not stack traces; stdin to stdout', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-fmt-'));
  try {
    const bad = path.join(dir, 'bad.vdm');
    fs.writeFileSync(bad, 'let a = \n');
    let io = fakeIo();
    assert.is(runFmt([bad, path.join(dir, 'missing.vdm')], false, io), 1);
    assert.match(io.stderr, /bad\.vdm:2:1: error VDM001/);
    assert.match(io.stderr, /error VDM002: cannot read .*missing\.vdm/);
    assert.not.match(io.stderr, /\n\s+at /);
    assert.is(fs.readFileSync(bad, 'utf8'), 'let a = \n');
    io = fakeIo('let  a=1');
    assert.is(runFmt(['-'], false, io), 0);
    assert.is(io.stdout, 'let a = 1\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
