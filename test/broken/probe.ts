// Runs `vdm check` over corpus files in child processes with a memory cap, to find the files on
// which the checker kills its process (out of memory, fatal V8 errors) or hangs. Those cannot be
// checked in-process — they would take the whole test run down — so their tests fail up front.
// The same runs give the CLI test its output, so the corpus goes through the CLI only once.
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface ProbeResult {
  /** Concatenated stdout+stderr of every run. */
  output: string;
  /** Exit status of each run (null when killed). */
  statuses: (number | null)[];
  /** File name -> why its process died. */
  crashed: Map<string, string>;
}

const MEMORY_MB = 256;
/** The CLI prints each file's result as soon as it is checked; this long a silence is a hang. */
const SILENCE_MS = 25_000;

interface Run { stdout: string; stderr: string; status: number | null; signal: string | null; silent: boolean }

function runCli(repo: string, files: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/vdm.mjs', 'check', ...files], {
      cwd: repo, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: `--max-old-space-size=${MEMORY_MB}`, FORCE_COLOR: '0' },
    });
    const run: Run = { stdout: '', stderr: '', status: null, signal: null, silent: false };
    let timer = setTimeout(() => {}, 0);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { run.silent = true; child.kill('SIGKILL'); }, SILENCE_MS);
    };
    arm();
    child.stdout.on('data', (chunk) => { run.stdout += chunk; arm(); });
    child.stderr.on('data', (chunk) => { run.stderr += chunk; arm(); });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ ...run, status, signal });
    });
  });
}

const finished = (run: Run, f: string) =>
  run.stdout.includes(`ok  ${f}  (`) || run.stderr.includes(`\n${f}: `) || run.stderr.startsWith(`${f}: `);

/** `files` are paths relative to `repo`, checked in order; a dead run resumes after its culprit. */
export async function probeCorpus(repo: string, files: string[]): Promise<ProbeResult> {
  const result: ProbeResult = { output: '', statuses: [], crashed: new Map() };
  let rest = files;
  while (rest.length > 0) {
    const run = await runCli(repo, rest);
    result.output += run.stdout + run.stderr;
    result.statuses.push(run.status);
    const culprit = rest.findIndex((f) => !finished(run, f));
    if (culprit < 0) break;
    const why = run.silent ? `no result after ${SILENCE_MS / 1000} s of silence`
      : `process died (status ${run.status}, signal ${run.signal}): ${lastLines(run.stderr)}`;
    result.crashed.set(path.basename(rest[culprit]), why);
    rest = rest.slice(culprit + 1);
  }
  return result;
}

function lastLines(text: string): string {
  return text.split('\n').filter((l) => /fatal|out of memory|RangeError/i.test(l)).slice(0, 2).join(' / ') || text.slice(-300);
}
