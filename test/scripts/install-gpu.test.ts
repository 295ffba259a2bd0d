// scripts/install-gpu.sh's pure parts, called by sourcing the script: which apt mirror it reuses
// for bookworm-backports, and the Mesa and Node versions it accepts. Also that the GPU machine
// scripts (scripts/gpu-bundle.sh, scripts/gpu-check.sh) parse and answer --help.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/install-gpu.sh');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-apt-'));

/** Runs `fn args...` with the script sourced; stdout and the exit code. */
function call(fn: string, ...args: string[]): { out: string; code: number | null } {
  const r = spawnSync('bash', ['-c', `source "$1"; shift; ${fn} "$@"`, 'bash', script, ...args], { encoding: 'utf8', cwd: dir });
  return { out: r.stdout.trim(), code: r.status };
}

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

test('one-line sources: options in brackets (signed-by, arch) are skipped, the suite must match', () => {
  const list = write('sources.list', [
    '# a comment',
    'deb http://security.debian.org/debian-security bookworm-security main',
    'deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main',
    'deb-src http://src.example/debian bookworm main',
  ].join('\n'));
  assert.is(call('mirror_for_suite', 'bookworm', list).out, 'http://mirror.example/debian');
  const spaced = write('spaced.list', 'deb [ signed-by=/k.gpg arch=amd64 ] http://spaced.example/debian bookworm main\n');
  assert.is(call('mirror_for_suite', 'bookworm', spaced).out, 'http://spaced.example/debian');
  assert.is(call('mirror_for_suite', 'bookworm-backports', list).out, '', 'no source serves backports yet');
  assert.is(call('mirror_for_suite', 'bookworm').out, '', 'no files: nothing');
});

test('deb822 sources: comments inside a stanza, several suites and URIs, Enabled: no, other repositories', () => {
  const sources = write('debian.sources', [
    'Types: deb', 'URIs: https://deb.nodesource.com/node_20.x', 'Suites: nodistro', 'Components: main', '',
    'Types: deb', '# http://snapshot.debian.org/archive/debian/20250520T000000Z', 'URIs: http://off.example/debian',
    'Suites: bookworm', 'Enabled: no', '',
    'Types: deb deb-src', '# a comment', 'URIs: http://deb.example.org/debian', ' http://second.example.org/debian',
    'Suites: bookworm bookworm-updates', 'Components: main', 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg', '',
    'Types: deb', 'URIs: http://deb.example.org/debian-security', 'Suites: bookworm-security', 'Components: main',
  ].join('\n'));
  assert.is(call('mirror_for_suite', 'bookworm', sources).out, 'http://deb.example.org/debian');
  assert.is(call('mirror_for_suite', 'bookworm-updates', sources).out, 'http://deb.example.org/debian');
  assert.is(call('mirror_for_suite', 'trixie', sources).out, '');
  const list = write('other.list', 'deb http://list.example/debian bookworm main\n');
  assert.is(call('mirror_for_suite', 'bookworm', sources, list).out, 'http://deb.example.org/debian', 'the first file that serves it');
});

test('Mesa >= 25 and Node >= 20 are accepted, older or unreadable versions are not', () => {
  for (const v of ['25.0.7-2~bpo12+1', '1:25.0.1-1ubuntu1', '26.1.0-1']) assert.is(call('mesa_version_ok', v).code, 0, v);
  for (const v of ['22.3.6-1+deb12u1', '1:24.2.8-1ubuntu1~24.04.1', '', 'none']) assert.is.not(call('mesa_version_ok', v).code, 0, v);
  for (const v of ['v20.0.0', 'v22.11.0']) assert.is(call('node_version_ok', v).code, 0, v);
  for (const v of ['v18.19.0', 'v8.0.0', '']) assert.is.not(call('node_version_ok', v).code, 0, v);
});

test('sourcing the script runs nothing', () => {
  const r = spawnSync('/bin/bash', ['-c', 'source "$1"; echo sourced', 'bash', script], { encoding: 'utf8' });
  assert.is(r.stdout.trim(), 'sourced');
  assert.is(r.stderr, '');
});

test('the GPU machine scripts (gpu-bundle.sh, gpu-check.sh, bench/torch_dit.py) parse, and the shell ones print their usage', () => {
  for (const name of ['gpu-bundle.sh', 'gpu-check.sh']) {
    const file = path.join(path.dirname(script), name);
    const syntax = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    assert.is(syntax.status, 0, syntax.stderr);
    const help = spawnSync('bash', [file, '--help'], { encoding: 'utf8' });
    assert.is(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage/);
    const bad = spawnSync('bash', [file, '--no-such-flag'], { encoding: 'utf8' });
    assert.is(bad.status, 2);
    assert.match(bad.stderr, /unknown argument --no-such-flag/);
  }
  const python = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())',
    path.join(path.dirname(script), '../bench/torch_dit.py')], { encoding: 'utf8' });
  if (!python.error) assert.is(python.status, 0, python.stderr); // no python3: nothing to parse it with
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
