// The parse cache (issue #14): it lives in a per-user folder (mode 0700), its entries are keyed by
// the source and the tool, verified on reading (an edited entry is ignored and rewritten), and
// written through exclusive temporary files that never follow a planted link.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers.ts';

// The cache folder is named only while this file's own code runs: the test files of one process
// share the environment, and a CLI another file spawns must not write into this folder.
const cacheDir = tempDir();
function inCache<T>(fn: () => T): T {
  const before = process.env.VDM_CACHE_DIR;
  process.env.VDM_CACHE_DIR = cacheDir;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.VDM_CACHE_DIR;
    else process.env.VDM_CACHE_DIR = before;
  }
}
const { checkFile } = await import('../../src/compiler/frontend/check.ts');
const { forgetParsedTrees, keyOf } = await import('../../src/compiler/frontend/ast-cache.ts');
const { cacheFolder } = await import('../../src/compiler/frontend/user-cache.ts');
const ditText = fs.readFileSync(new URL('../../src/std/dit.vdm', import.meta.url), 'utf8');

const specDir = tempDir();
const spec = path.join(specDir, 'main.vdm');
fs.writeFileSync(spec, `import "std/dit.vdm"
model M {
  dims b = 2, c = 16, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  cond = timestep_embedder(s, c)
  output o = dit_block(x, cond, 2)
}
`);

function params(): number {
  forgetParsedTrees();
  const r = inCache(() => checkFile(spec));
  assert.equal(r.diagnostics.map((d) => d.message), []);
  let n = 0;
  for (const node of r.graph!.nodes) for (const p of node.params) n += p.shape.reduce((a: number, b: number) => a * b, 1);
  return n;
}

const astDir = () => path.join(cacheDir, 'ast');
/** The cached entry of std/dit.vdm. */
function ditEntry(): string {
  const file = path.join(astDir(), `${keyOf(ditText)}.json`);
  assert.ok(fs.existsSync(file), 'no cache entry for std/dit.vdm');
  return file;
}

/** mlp_ratio = 4 becomes 40 in the entry's tree; with `digest`, the envelope's digest is made to match. */
function poison(file: string, digest: boolean): void {
  const entry = JSON.parse(fs.readFileSync(file, 'utf8'));
  const before = entry.payload as string;
  entry.payload = before.replace(/("name":"mlp_ratio"[^}]*\},"default":\{"type":"number","value":)4,/, '$140,');
  assert.not.equal(entry.payload, before, 'the mlp_ratio default was not found in the entry');
  if (digest) entry.digest = crypto.createHash('sha256').update(`vdm-cache-1\0${entry.key}\0`).update(entry.payload).digest('hex');
  fs.writeFileSync(file, JSON.stringify(entry));
}

const clean = params();

test('the cache is a folder of the user, closed to others', () => {
  const st = fs.statSync(astDir());
  assert.is(st.mode & 0o077, 0, `mode ${(st.mode & 0o777).toString(8)}`);
  assert.ok(fs.readdirSync(astDir()).some((n) => n.endsWith('.json')), 'nothing was cached');
});

test('an edited cache entry (mlp ratio 4 -> 40) is ignored and rewritten', () => {
  const file = ditEntry();
  poison(file, false);
  assert.is(params(), clean);
  assert.not.match(fs.readFileSync(ditEntry(), 'utf8'), /"value":40,/);
});

test('an edited entry whose digest was made to match is caught by the check against the source', () => {
  poison(ditEntry(), true);
  assert.is(params(), clean);
  assert.is(params(), clean);
});

test('a link planted at an entry is neither read nor written through', () => {
  const file = ditEntry();
  const victim = path.join(tempDir(), 'victim.txt');
  fs.writeFileSync(victim, 'untouched');
  fs.rmSync(file);
  fs.symlinkSync(victim, file);
  assert.is(params(), clean);
  assert.is(fs.readFileSync(victim, 'utf8'), 'untouched');
  assert.not.ok(fs.lstatSync(file).isSymbolicLink(), 'the link is still there');
});

test('a cache folder open to others is closed; one that is a link is not used', () => {
  const open = path.join(tempDir(), 'open');
  fs.mkdirSync(open, { mode: 0o777 });
  fs.chmodSync(open, 0o777);
  const before = process.env.VDM_CACHE_DIR;
  process.env.VDM_CACHE_DIR = open;
  try {
    assert.ok(cacheFolder('ast'));
    assert.is(fs.statSync(path.join(open, 'ast')).mode & 0o077, 0);
    const target = tempDir();
    fs.symlinkSync(target, path.join(open, 'via-link'));
    assert.is(cacheFolder('via-link'), null);
  } finally {
    if (before === undefined) delete process.env.VDM_CACHE_DIR;
    else process.env.VDM_CACHE_DIR = before;
  }
});

test('entries are keyed by the source: an edited spec misses the cache and parses afresh', () => {
  const before = fs.readdirSync(astDir()).length;
  fs.appendFileSync(spec, '// a change\n');
  params();
  assert.ok(fs.readdirSync(astDir()).length > before);
});

test.run();
