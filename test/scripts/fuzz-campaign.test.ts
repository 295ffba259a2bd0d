// The fuzz campaign (scripts/fuzz.ts, `npm run fuzz -- --minutes N`) stays runnable: its grammar
// fuzzer writes files the parser accepts (so its cases reach the checks after parsing), every
// fuzzer replays from its seed, and a few seconds of the campaign end in its summary.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grammarCase, mutationCase, spliceCase } from '../../scripts/fuzz-gen.ts';
import { parseSource } from '../../src/compiler/frontend/parse.ts';
import { prng } from '../../src/compiler/reference/evaluate.ts';
import { SourceFile } from '../../src/compiler/ir/source.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SPEC = 'model M {\n  dims b = 2, c = 4, t = 2, h = 4, w = 4\n  input x : video[b, c, t, h, w]\n  output o = silu(x)\n}\n';

test('the grammar fuzzer writes files the parser accepts', () => {
  const r = prng(7);
  for (let i = 0; i < 100; i++) {
    const text = grammarCase(r);
    const parsed = parseSource(new SourceFile(path.join(repo, 'generated.vdm'), text));
    assert.ok(parsed.ok, `case ${i}: ${parsed.ok ? '' : parsed.diagnostic.message}\n${text}`);
  }
});

test('every fuzzer replays from its seed', () => {
  const run = () => {
    const r = prng(11);
    return [grammarCase(r), mutationCase(SPEC, r).source, spliceCase(SPEC, SPEC.toUpperCase(), r).source];
  };
  assert.equal(run(), run());
});

test('a few seconds of the campaign end in its summary: cases per fuzzer, uncaught errors, hangs, peak memory', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'scripts/fuzz.ts'), '--minutes', '0.05', '--workers', '1', '--seed', '3'],
    { cwd: repo, encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^cases: +\d+ \(grammar [1-9]\d*, mutation [1-9]\d*, splice [1-9]\d*;/m);
  assert.match(r.stdout, /^uncaught errors: +0$/m);
  assert.match(r.stdout, /^hangs over 2 s: +0 \(slowest case \d+ ms/m);
  assert.match(r.stdout, /^parser disagreements: +0/m);
  assert.match(r.stdout, /^peak memory: +\d+ MB/m);
});

test.run();
