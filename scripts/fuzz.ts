// The fuzz campaign (outside the test suite, which keeps its short fuzz test, test/fuzz.test.ts):
//
//   npm run fuzz -- --minutes N [--workers W] [--seed S] [--hang-ms MS] [--out DIR]
//
// runs the grammar-aware, mutation and splice fuzzers (scripts/fuzz-gen.ts) in W parallel worker
// processes (default: one per CPU) for N minutes, every case through the checker
// (scripts/fuzz-worker.ts), and prints one summary: cases per fuzzer, uncaught errors, hangs over
// the limit (2 s), parser disagreements and peak memory. A worker whose case runs past the
// watchdog (10 x the hang limit, at least 30 s) is killed and its case counted as a hang; one
// that dies is an uncaught error. Every failing case is saved as a reproducer under --out (default
// a fresh folder beside the scratch copies) with what went wrong; the exit status is 1 when any was.
// Workers are seeded from --seed (default: the clock), so a seed replays its campaign's cases.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerConfig, WorkerMessage } from './fuzz-worker.ts';
import { FUZZERS, type FuzzerName } from './fuzz-gen.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv: string[]): { minutes: number; workers: number; seed: number; hangMs: number; out: string | null } {
  const o = { minutes: 1, workers: os.availableParallelism(), seed: Date.now() % 2 ** 31, hangMs: 2000, out: null as string | null };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i];
    const num = (name: string, v: string | undefined, min: number) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) usage(`${name} needs a number of at least ${min}, got ${v}`);
      return n;
    };
    if (flag === '--minutes') o.minutes = num(flag, value(), 0.01);
    else if (flag === '--workers') o.workers = Math.floor(num(flag, value(), 1));
    else if (flag === '--seed') o.seed = Math.floor(num(flag, value(), 0));
    else if (flag === '--hang-ms') o.hangMs = num(flag, value(), 1);
    else if (flag === '--out') o.out = value() ?? usage('--out needs a folder');
    else if (flag === '-h' || flag === '--help') usage(null);
    else usage(`unknown argument ${argv[i]}`);
  }
  return o;
}

function usage(problem: string | null): never {
  process.stderr.write(`usage: npm run fuzz -- --minutes N [--workers W] [--seed S] [--hang-ms MS] [--out DIR]\n${problem ? `fuzz: ${problem}\n` : ''}`);
  process.exit(problem ? 2 : 0);
}

/**
 * Where the workers' scratch copies and cache go: every case is written there and read back, so a
 * memory file system (/dev/shm) when there is one, else the temporary folder.
 */
function scratchBase(): string {
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    if (fs.statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch { /* none */ }
  return os.tmpdir();
}

interface Failure { kind: 'uncaught' | 'hang' | 'parsers'; fuzzer: FuzzerName | '?'; file: string; steps: string; problem: string; saved: string }

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

async function campaign(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const deadline = t0 + args.minutes * 60_000;
  const killMs = Math.max(30_000, 10 * args.hangMs);
  const work = fs.mkdtempSync(path.join(scratchBase(), 'vdm-fuzz-campaign-'));
  const out = path.resolve(args.out ?? path.join(work, 'failures'));
  fs.mkdirSync(out, { recursive: true });

  const cases: Record<FuzzerName, number> = { grammar: 0, mutation: 0, splice: 0 };
  let clean = 0, parsersCompared = 0, slowestMs = 0, peakRss = 0, spawned = 0;
  const failures: Failure[] = [];

  const save = (f: Omit<Failure, 'saved'>, source: string | null): void => {
    const base = path.join(out, `${f.kind}-${failures.length + 1}-${f.fuzzer}`);
    if (source !== null) fs.writeFileSync(`${base}.vdm`, source);
    fs.writeFileSync(`${base}.txt`, `${f.kind} (${f.fuzzer} fuzzer) checking ${f.file}: ${f.steps}\n\n${f.problem}\n`);
    failures.push({ ...f, saved: source !== null ? `${base}.vdm` : `${base}.txt` });
    process.stderr.write(`fuzz: ${f.kind} in a ${f.fuzzer} case, saved as ${source !== null ? `${base}.vdm` : `${base}.txt`}: ${f.problem.split('\n')[0]}\n`);
  };

  const startWorker = (): Promise<void> => new Promise((resolve) => {
    const id = spawned++;
    const scratch = path.join(work, `worker-${id}`);
    fs.mkdirSync(scratch);
    const child: ChildProcess = fork(path.join(here, 'fuzz-worker.ts'), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, VDM_CACHE_DIR: path.join(work, 'cache') },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    let current: Extract<WorkerMessage, { type: 'start' }> | null = null;
    let since = Date.now();
    let killedForHang = false;
    const watchdog = setInterval(() => {
      if (current && Date.now() - since > killMs) {
        killedForHang = true;
        child.kill('SIGKILL');
      }
    }, 1000);
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'start') {
        current = m;
        since = Date.now();
      } else if (m.type === 'end') {
        cases[m.fuzzer]++;
        if (m.outcome === 'ok') clean++;
        if (m.parsers) parsersCompared++;
        slowestMs = Math.max(slowestMs, m.ms);
        peakRss = Math.max(peakRss, m.rss);
        current = null;
      } else if (m.type === 'failure') {
        peakRss = Math.max(peakRss, m.rss);
        save({ kind: m.kind, fuzzer: m.fuzzer, file: m.file, steps: m.steps, problem: m.problem }, m.source);
      } else if (m.type === 'done') {
        peakRss = Math.max(peakRss, m.maxRss);
      }
    });
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      if (current) {
        // The case in flight is still in its file in the worker's scratch copy.
        let source: string | null = null;
        try { source = fs.readFileSync(path.join(scratch, current.file), 'utf8'); } catch { /* gone */ }
        const problem = killedForHang
          ? `no answer after ${(killMs / 1000).toFixed(0)} s: the worker was killed`
          : `the worker died (${signal ?? `exit ${code}`}):\n${stderr.trim()}`;
        save({ kind: killedForHang ? 'hang' : 'uncaught', fuzzer: current.fuzzer, file: current.file, steps: current.steps, problem }, source);
        cases[current.fuzzer]++;
      } else if (code !== 0) {
        save({ kind: 'uncaught', fuzzer: '?', file: '-', steps: '-', problem: `the worker failed (${signal ?? `exit ${code}`}):\n${stderr.trim()}` }, null);
      }
      fs.rmSync(scratch, { recursive: true, force: true });
      // A worker lost before the deadline is replaced, with a fresh seed, for the time left.
      if ((current || code !== 0) && Date.now() < deadline - 5000 && failures.length < 50) void startWorker().then(resolve);
      else resolve();
    });
    const config: WorkerConfig = { id, seed: (args.seed + id * 7919) % 2 ** 31, deadline, scratch, hangMs: args.hangMs };
    child.send(config);
  });

  const total = () => FUZZERS.reduce((n, f) => n + cases[f], 0);
  const progress = setInterval(() => {
    const s = (Date.now() - t0) / 1000;
    process.stderr.write(`fuzz: ${total()} cases in ${s.toFixed(0)} s (${(total() / s).toFixed(0)}/s), ${failures.length} failures\n`);
  }, 30_000);
  await Promise.all(Array.from({ length: args.workers }, () => startWorker()));
  clearInterval(progress);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);

  const seconds = (Date.now() - t0) / 1000;
  const count = (k: Failure['kind']) => failures.filter((f) => f.kind === k).length;
  const lines = [
    `fuzz campaign: seed ${args.seed}, ${args.workers} workers, ${args.minutes} min (${seconds.toFixed(0)} s)`,
    `cases:                ${total()} (grammar ${cases.grammar}, mutation ${cases.mutation}, splice ${cases.splice}; ${clean} checked clean, the rest with diagnostics)`,
    `uncaught errors:      ${count('uncaught')}`,
    `hangs over ${(args.hangMs / 1000).toFixed(args.hangMs % 1000 ? 1 : 0)} s:       ${count('hang')} (slowest case ${slowestMs.toFixed(0)} ms, best of its runs)`,
    `parser disagreements: ${count('parsers')} (of ${parsersCompared} cases parsed by both parsers)`,
    `peak memory:          ${mb(peakRss)} (largest resident set of a worker)`,
  ];
  if (failures.length) lines.push(`reproducers:          ${out}`, ...failures.map((f) => `  ${f.kind}: ${f.saved}`));
  process.stdout.write(`${lines.join('\n')}\n`);
  if (!failures.length) fs.rmSync(work, { recursive: true, force: true });
  else fs.rmSync(path.join(work, 'cache'), { recursive: true, force: true });
  return failures.length ? 1 : 0;
}

process.exitCode = await campaign();
