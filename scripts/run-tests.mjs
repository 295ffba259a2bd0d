// Runs the uvu suites under tsx and ends with one plain summary line
// ("N passed, N failed") that CI and people can read at a glance.
// Usage: node scripts/run-tests.mjs [pattern]   (pattern: a regexp on test file paths)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pattern = process.argv[2] ?? '\\.test\\.ts$';
const child = spawn(process.execPath,
  ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), 'test', pattern, '--color', 'false'],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORCE_COLOR: '0' } });

let out = '';
child.stdout.on('data', (chunk) => { out += chunk; process.stdout.write(chunk); });
child.on('close', (code) => {
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const failed = Math.max(0, total - passed - skipped) + (code !== 0 && total === passed ? 1 : 0);
  console.log(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code !== 0 || failed > 0 || total === 0 ? 1 : 0);
});
