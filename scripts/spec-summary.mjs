// Prints a table of every spec's totals from `vdm info --json`.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const human = (n) => {
  for (const [s, d] of [['T', 1e12], ['G', 1e9], ['M', 1e6], ['K', 1e3]]) if (n >= d) return `${(n / d).toFixed(2)}${s}`;
  return String(n);
};
const bytes = (n) => {
  for (const [s, d] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]]) if (n >= d) return `${(n / d).toFixed(1)}${s}`;
  return `${n}B`;
};
const rows = [['spec', 'params', 'MACs', 'FLOPs', 'activations']];
for (const file of process.argv.slice(2)) {
  const out = execFileSync(process.execPath, ['bin/vdm.mjs', 'info', file, '--json'], { encoding: 'utf8' });
  const r = JSON.parse(out);
  rows.push([path.basename(file), human(r.params), human(r.macs), human(r.flops), bytes(r.activationBytes)]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const [k, r] of rows.entries()) {
  console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  if (k === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
console.log('\nMACs = multiply-accumulates (the DiT paper reports these as "Gflops"); FLOPs = 2 x MACs.');
