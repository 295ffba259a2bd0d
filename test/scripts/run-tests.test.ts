// scripts/run-tests.mjs without a WebGPU adapter (simulated with VDM_ADAPTER=none): the GPU tests
// are skipped with one message that says how to get an adapter, and VDM_REQUIRE_GPU=1 (CI) turns
// that into a failure.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function runTests(pattern: string, env: Record<string, string>) {
  const { VDM_TEST_GPU: _a, VDM_REQUIRE_GPU: _b, ...rest } = process.env;
  const r = spawnSync(process.execPath, [path.join(repo, 'scripts/run-tests.mjs'), pattern],
    { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...rest, VDM_TEST_JOBS: '1', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re, 'g'))?.length ?? 0;

test('no adapter: the GPU tests are skipped, said once with how to get one, and the run passes', () => {
  const r = runTests('runtime/pool\\.test', { VDM_ADAPTER: 'none' });
  assert.is(r.code, 0, r.out + r.err);
  assert.is(count(r.out, /GPU tests skipped: no WebGPU adapter/), 1, r.out);
  assert.match(r.out, /install-gpu\.sh/);
  assert.match(r.out, /VDM_REQUIRE_GPU=1/);
  assert.not.match(r.out, /FAIL|\bat \S+ \(/, 'no failures, no stack traces');
  assert.match(r.out, /tests: 1 passed, 0 failed, 1 skipped\n/);
  assert.match(r.out, /\nper-file times, slowest first .*:\n +\d+\.\d s  runtime\/pool\.test\.ts\n/, 'each file\'s time');
});

test('no adapter with VDM_REQUIRE_GPU=1: one failure that says why', () => {
  const r = runTests('runtime/pool\\.test', { VDM_ADAPTER: 'none', VDM_REQUIRE_GPU: '1' });
  assert.is(r.code, 1, r.out + r.err);
  assert.match(r.out, /VDM_REQUIRE_GPU=1 is set, so this counts as a failure/);
  assert.match(r.out, /tests: 1 passed, 1 failed, 1 skipped\n/);
});

test.run();
