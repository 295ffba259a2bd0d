// One worker of the fuzz campaign (scripts/fuzz.ts): checks generated, mutated and spliced specs
// in-process until its deadline and reports every case to the campaign over IPC. A case must end
// in success or in VDMxxx diagnostics with messages: an exception, an "internal" diagnostic, an
// empty message or a graph despite errors is a failure; a case whose best of three runs takes
// over the hang limit in both wall and CPU time is a hang (a core shared with other work slows
// the wall clock, not the CPU). One case in sixteen is also parsed by both parsers (the hand-written
// one and ohm on the grammar), which must agree.
//
// The checker reads files from disk, so cases are written into a scratch copy of specs/ and
// src/std/ (over the mutated file's own copy): imports resolve exactly as in the originals.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFile } from '../src/compiler/frontend/check.ts';
import { formatDiagnostic } from '../src/compiler/ir/diagnostics.ts';
import { parseFast } from '../src/compiler/frontend/fast-parse.ts';
import { parseWithOhm } from '../src/compiler/frontend/parse.ts';
import { serializeItems } from '../src/compiler/frontend/ast-json.ts';
import { SourceFile } from '../src/compiler/ir/source.ts';
import { prng } from '../src/compiler/reference/evaluate.ts';
import { FUZZERS, grammarCase, mutationCase, spliceCase, type FuzzerName } from './fuzz-gen.ts';

export interface WorkerConfig {
  readonly id: number;
  readonly seed: number;
  readonly deadline: number;
  readonly scratch: string;
  readonly hangMs: number;
}

/** Messages to the campaign. */
export type WorkerMessage =
  | { type: 'start'; n: number; fuzzer: FuzzerName; file: string; steps: string }
  | { type: 'end'; n: number; fuzzer: FuzzerName; outcome: 'ok' | 'diagnostics'; ms: number; rss: number; parsers: boolean }
  | { type: 'failure'; n: number; fuzzer: FuzzerName; kind: 'uncaught' | 'hang' | 'parsers'; file: string; steps: string; problem: string; source: string; rss: number }
  | { type: 'done'; maxRss: number };

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const send = (m: WorkerMessage) => process.send!(m);

interface Target { scratch: string; rel: string; original: string }

function setUp(scratch: string): { std: string; targets: Target[]; generated: string } {
  const specs = path.join(scratch, 'specs');
  const std = path.join(scratch, 'std');
  fs.cpSync(path.join(repo, 'specs'), specs, { recursive: true });
  fs.cpSync(path.join(repo, 'src/std'), std, { recursive: true });
  const targets = [specs, std].flatMap((folder) => fs.readdirSync(folder)
    .filter((f) => f.endsWith('.vdm'))
    .map((f) => ({ scratch: path.join(folder, f), rel: path.relative(scratch, path.join(folder, f)), original: fs.readFileSync(path.join(folder, f), 'utf8') })));
  return { std, targets, generated: path.join(specs, 'generated.vdm') };
}

/** One check: the problem (an uncaught error), or null; and its wall and CPU milliseconds. */
function checkOnce(file: string, std: string): { problem: string | null; ok: boolean; wallMs: number; cpuMs: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let problem: string | null = null;
  let ok = false;
  try {
    const result = checkFile(file, { stdDir: std });
    const bad = result.diagnostics.find((d) => !/^VDM\d{3}$/.test(d.code) || d.message.trim() === '');
    if (bad) problem = `bad diagnostic: ${formatDiagnostic(bad)}`;
    else if (result.diagnostics.length === 0 && result.hasModel && !result.graph) problem = 'no diagnostics, yet no graph for a model';
    else if (result.diagnostics.length > 0 && result.graph) problem = `a graph despite errors:\n${result.diagnostics.map(formatDiagnostic).join('\n')}`;
    else for (const d of result.diagnostics) formatDiagnostic(d); // printing must not throw either
    ok = result.diagnostics.length === 0;
  } catch (err) {
    problem = `exception escaped: ${err instanceof Error ? err.stack : String(err)}`;
  }
  const cpu = process.cpuUsage(cpu0);
  return { problem, ok, wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Both parsers on one text: null when they agree (verdict and tree), else how they differ. */
function parsersDisagree(file: string, text: string): string | null {
  const source = new SourceFile(file, text);
  let ohm;
  try {
    ohm = parseWithOhm(source);
  } catch (err) {
    if (err instanceof RangeError) return null; // too deep for ohm on this stack; the checker reparses on a large one
    return `ohm threw: ${err instanceof Error ? err.message : String(err)}`;
  }
  let fast;
  try {
    fast = parseFast(source);
  } catch (err) {
    return `the fast parser threw: ${err instanceof Error ? err.stack : String(err)}`;
  }
  if (ohm.ok !== fast.ok) return ohm.ok ? 'ohm accepts, the fast parser rejects' : `ohm rejects (${ohm.diagnostic.message}), the fast parser accepts`;
  if (ohm.ok && fast.ok && serializeItems(fast.items) !== serializeItems(ohm.ast.items)) return 'both accept, with different trees';
  return null;
}

async function main(config: WorkerConfig): Promise<void> {
  const { std, targets, generated } = setUp(config.scratch);
  const rand = prng(config.seed);
  let maxRss = 0;
  // At least one case of each fuzzer, however short the campaign.
  for (let n = 0; n < FUZZERS.length || Date.now() < config.deadline; n++) {
    const fuzzer = FUZZERS[n % FUZZERS.length];
    let file: string, text: string, steps: string;
    let restore: (() => void) | null = null;
    if (fuzzer === 'grammar') {
      file = generated;
      text = grammarCase(rand);
      steps = 'generated';
    } else {
      const target = targets[Math.floor(rand() * targets.length)];
      file = target.scratch;
      if (fuzzer === 'mutation') {
        const m = mutationCase(target.original, rand);
        text = m.source;
        steps = m.steps.join('; ');
      } else {
        const other = targets[Math.floor(rand() * targets.length)];
        const s = spliceCase(target.original, other.original, rand);
        text = s.source;
        steps = `${s.step} (${other.rel})`;
      }
      restore = () => fs.writeFileSync(target.scratch, target.original);
    }
    const rel = path.relative(config.scratch, file);
    send({ type: 'start', n, fuzzer, file: rel, steps });
    fs.writeFileSync(file, text);
    let best = { wallMs: Infinity, cpuMs: Infinity };
    let problem: string | null = null;
    let ok = false;
    for (let attempt = 0; attempt < 3; attempt++) {
      const run = checkOnce(file, std);
      problem = run.problem;
      ok = run.ok;
      best = { wallMs: Math.min(best.wallMs, run.wallMs), cpuMs: Math.min(best.cpuMs, run.cpuMs) };
      if (problem || best.wallMs <= config.hangMs || best.cpuMs <= config.hangMs) break;
    }
    const parsers = n % 16 === 15;
    const disagreement = !problem && parsers ? parsersDisagree(file, text) : null;
    restore?.();
    const rss = process.memoryUsage().rss;
    maxRss = Math.max(maxRss, rss);
    if (problem || disagreement) {
      send({ type: 'failure', n, fuzzer, kind: problem ? 'uncaught' : 'parsers', file: rel, steps, problem: problem ?? disagreement!, source: text, rss });
    } else if (best.wallMs > config.hangMs && best.cpuMs > config.hangMs) {
      send({ type: 'failure', n, fuzzer, kind: 'hang', file: rel, steps, problem: `best of 3 runs: ${best.wallMs.toFixed(0)} ms wall, ${best.cpuMs.toFixed(0)} ms CPU`, source: text, rss });
    }
    send({ type: 'end', n, fuzzer, outcome: ok ? 'ok' : 'diagnostics', ms: Math.min(best.wallMs, best.cpuMs), rss, parsers });
    // Let the IPC channel drain (and the campaign see this worker alive) between cases.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const done: WorkerMessage = { type: 'done', maxRss: Math.max(maxRss, process.resourceUsage().maxRSS * 1024) };
  await new Promise((resolve) => process.send!(done, undefined, {}, resolve));
}

process.once('message', (config: WorkerConfig) => {
  void main(config).then(() => process.disconnect());
});
