// Benchmark results as JSON (for tools) and a markdown table (for people).
import type { Ceiling } from './ceilings.ts';

export interface SideResult {
  status: 'ok' | 'not available' | 'failed';
  note?: string;
  ms?: number;
  medianMs?: number;
  iterations?: number;
  trials?: number;
  gflops?: number;
}

export interface CaseResult {
  name: string;
  shape: string;
  gflop: number;
  vdm: SideResult;
  tfjs: SideResult;
  /** vdm GFLOP/s over tfjs GFLOP/s */
  ratio?: number;
  /** max |vdm - tfjs| / max |tfjs| */
  relError?: number;
}

export interface BenchResults {
  date: string;
  adapter: string;
  software: boolean;
  node: string;
  /** CPU count and 1-minute load average at start and end: software adapters share the CPU */
  cpus: number;
  load: [number, number];
  ceilings: Ceiling[];
  cases: CaseResult[];
  totalSeconds: number;
}

const num = (x: number | undefined, digits = 2) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));

function side(s: SideResult): [string, string] {
  if (s.status !== 'ok') return [s.status, s.note ? s.note.slice(0, 60) : '-'];
  return [`${num(s.ms, 1)} ms (x${s.iterations})`, num(s.gflops)];
}

export function markdown(r: BenchResults): string {
  const lines = [
    `# vdm benchmark`, '',
    `${r.date} · adapter: ${r.adapter}${r.software ? ' (software)' : ''} · Node ${r.node} · ${r.totalSeconds.toFixed(0)} s · ` +
      `${r.cpus} CPUs, load average ${r.load[0].toFixed(1)} at start, ${r.load[1].toFixed(1)} at end`, '',
    '| adapter ceiling | value | detail |', '|---|---:|---|',
    ...r.ceilings.map((c) => `| ${c.name} | ${num(c.value)} ${c.unit} | ${c.detail}, ${num(c.timing.ms, 1)} ms per iteration |`), '',
    '| case | shape | GFLOP | vdm time | vdm GFLOP/s | tfjs time | tfjs GFLOP/s | vdm/tfjs | max rel. diff |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of r.cases) {
    const [vt, vg] = side(c.vdm);
    const [tt, tg] = side(c.tfjs);
    const err = c.relError === undefined ? '-' : c.relError.toExponential(1);
    lines.push(`| ${c.name} | ${c.shape} | ${num(c.gflop, 3)} | ${vt} | ${vg} | ${tt} | ${tg} | ${num(c.ratio)} | ${err} |`);
  }
  const trials = r.cases.find((c) => c.vdm.trials)?.vdm.trials ?? 1;
  lines.push('', `Times are wall-clock per iteration, many iterations per submit after a warm-up batch, the best of ${trials} ` +
    'timed batches (medians are in results.json); both libraries run in the same process on the same adapter and wait ' +
    'for it the same way (src/runtime/wait.ts). "max rel. diff" compares the two outputs.');
  return lines.join('\n') + '\n';
}
