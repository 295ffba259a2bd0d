// Runs the uvu suites under tsx and ends with one plain summary line
// ("N passed, N failed") that CI and people can read at a glance.
// Usage: node scripts/run-tests.mjs [pattern]   (pattern: a regexp on test file paths)
// The files are split over one uvu process per CPU (VDM_TEST_JOBS overrides; 1: one process):
// the adapter's shader compiler keeps a core busy, so the suite's wall time is shared out. Each
// process's report is printed whole when it ends, so the reports do not interleave. Then the time
// of each file's tests, slowest first, and the summary.
// The WebGPU adapter is opened once first: without one, the tests declared with `gpuTest`
// (test/gpu.ts) are skipped and one message says why and how to get one; VDM_REQUIRE_GPU=1 (set
// by CI) makes a missing adapter a failure instead, so CI still proves the GPU path.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const testDir = path.join(root, 'test');
const pattern = new RegExp(process.argv[2] ?? '\\.test\\.ts$', 'i');

/** Test files by their path under test/, as uvu names them. */
function collect(dir, prefix = '') {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const name = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) return collect(path.join(dir, e.name), name);
    return /\.test\.ts$/.test(e.name) && pattern.test(name) ? [{ name, bytes: fs.statSync(path.join(dir, e.name)).size }] : [];
  });
}

const files = collect(testDir);
const jobs = Math.max(1, Math.min(Number(process.env.VDM_TEST_JOBS) || os.availableParallelism(), files.length));
// Longest first onto the lightest shard (file size stands in for run time).
const shards = Array.from({ length: jobs }, () => ({ files: [], bytes: 0 }));
for (const f of [...files].sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name))) {
  const s = shards.reduce((best, x) => (x.bytes < best.bytes ? x : best));
  s.files.push(f.name);
  s.bytes += f.bytes;
}
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Opens the adapter the way the tests do (VDM_ADAPTER honoured): { ok, text } (its name, or why not). */
function probeGpu() {
  const script = `import { openGpu } from ${JSON.stringify(path.join(root, 'src/runtime/gpu.ts'))};
try { const g = await openGpu(); console.log('ok ' + (g.info.description || g.info.vendor || 'an adapter')); g.device.destroy(); }
catch (e) { console.log('no ' + (e instanceof Error ? e.message : String(e))); }
process.exit(0);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: root, encoding: 'utf8', timeout: 120_000 });
  const line = (r.stdout ?? '').split('\n').find((l) => /^(ok|no) /.test(l));
  if (!line) return { ok: false, text: `the adapter probe failed (${r.error?.message ?? `exit ${r.status}`}) ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}` };
  return { ok: line.startsWith('ok '), text: line.slice(3) };
}

const requireGpu = process.env.VDM_REQUIRE_GPU === '1';
// Tests run the default tilings (VDM_TUNE=off) unless told otherwise: on a GPU, timing every
// variant of every test's GEMMs would cost more than the tests; the tuning tests turn it on themselves.
const gpu = process.env.VDM_TEST_GPU === '0' ? { ok: false, text: 'VDM_TEST_GPU=0 is set' } : probeGpu();
const gpuNote = gpu.ok ? '' : /adapter/i.test(gpu.text) ? gpu.text : `no WebGPU adapter: ${gpu.text}`;

/** When each test file's report began (uvu prints the file's name as it starts it), by file. */
const started = new Map();
/**
 * Seconds each test file's tests took: from its name in its process's report to the next file's
 * name, or the end (uvu imports every file of a process first, so top-level setup is not included).
 */
const seconds = new Map();

function runShard(names) {
  return new Promise((resolve) => {
    const known = new Set(names);
    let current = null;
    let partial = '';
    const finish = (now) => {
      if (current) seconds.set(current, (now - started.get(current)) / 1000);
      current = null;
    };
    const only = `^(?:${names.map(escape).join('|')})$`;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), 'test', only, '--color', 'false'],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORCE_COLOR: '0', VDM_TEST_GPU: gpu.ok ? '1' : '0', VDM_TUNE: process.env.VDM_TUNE ?? 'off' } });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const now = performance.now();
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        const name = line.trim();
        if (!known.has(name) || started.has(name)) continue;
        finish(now);
        started.set(name, now);
        current = name;
      }
      if (jobs === 1) process.stdout.write(chunk);
    });
    child.on('close', (code) => {
      finish(performance.now());
      if (jobs > 1) process.stdout.write(out);
      // uvu's own totals are the last ones it prints (a test may print a nested run's report)
      const count = (label) => Number([...out.matchAll(new RegExp(`^  ${label}:\\s+(\\d+)`, 'gm'))].at(-1)?.[1] ?? 0);
      resolve({ code, total: count('Total'), passed: count('Passed'), skipped: count('Skipped') });
    });
  });
}

if (files.length === 0) {
  console.log(`\ntests: no test file matches ${pattern}`);
  process.exit(1);
}
const results = await Promise.all(shards.filter((s) => s.files.length).map((s) => runShard(s.files)));
// Per-file times, slowest first: where the suite's wall time goes.
if (seconds.size) {
  const rows = [...seconds].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  console.log(`\nper-file times, slowest first (each file's tests; ${jobs} process${jobs === 1 ? '' : 'es'} in parallel):`);
  for (const [name, s] of rows) console.log(`${s.toFixed(1).padStart(8)} s  ${name}`);
}
const sum = (k) => results.reduce((n, r) => n + r[k], 0);
const [total, passed, skipped] = [sum('total'), sum('passed'), sum('skipped')];
// uvu's Total leaves skipped tests out. A process that failed without a failing test (a crash, a
// suite that threw) counts as a failure.
const crashed = results.filter((r) => r.code !== 0 && r.total === r.passed).length;
const failed = Math.max(0, total - passed) + crashed + (!gpu.ok && requireGpu ? 1 : 0);
// Said once, at the end where it is seen, just above the summary.
if (!gpu.ok) {
  console.log(requireGpu
    ? `\nGPU tests skipped: ${gpuNote}\nVDM_REQUIRE_GPU=1 is set, so this counts as a failure.`
    : `\nGPU tests skipped: ${gpuNote}\n(set VDM_REQUIRE_GPU=1 to make a missing adapter fail the run, as CI does)`);
}
console.log(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || total + skipped === 0 ? 1 : 0);
