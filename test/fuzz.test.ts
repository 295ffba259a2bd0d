// Fuzzes the checker with token-level mutants of the real specs and standard library: every
// mutant must end in success or in VDMxxx diagnostics — no exception, no internal error, no
// run over 1 s. Seeded: VDM_FUZZ_SEED replays a run; VDM_FUZZ_MS sets the time budget.
//
// The checker reads files from disk, so mutants are checked inside a scratch copy of specs/ and
// src/std/ (written over the mutated file's own copy): imports resolve exactly as in the originals.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFile, type CheckResult } from '../src/compiler/frontend/check.ts';
import { formatDiagnostic } from '../src/compiler/ir/diagnostics.ts';
import { mutate, prng } from './broken/mutate.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const seed = Number(process.env.VDM_FUZZ_SEED ?? Date.now() % 2 ** 31);
const budgetMs = Number(process.env.VDM_FUZZ_MS ?? 15_000);
const LIMIT_MS = 1000;

interface Target { scratch: string; original: string }

/** Copies specs/ and src/std/ into a scratch folder; returns the .vdm files there. */
function makeScratch(): { dir: string; specs: string; std: string; targets: Target[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-fuzz-'));
  const specs = path.join(dir, 'specs');
  const std = path.join(dir, 'std');
  fs.cpSync(path.join(repo, 'specs'), specs, { recursive: true });
  fs.cpSync(path.join(repo, 'src/std'), std, { recursive: true });
  const targets = [specs, std].flatMap((folder) => fs.readdirSync(folder)
    .filter((f) => f.endsWith('.vdm'))
    .map((f) => ({ scratch: path.join(folder, f), original: fs.readFileSync(path.join(folder, f), 'utf8') })));
  return { dir, specs, std, targets };
}

/** Runs one check; returns a problem description, or null when the run behaved. */
function checkOnce(file: string, std: string): { problem: string | null; wallMs: number; cpuMs: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let result: CheckResult;
  let shown: string;
  try {
    result = checkFile(file, { stdDir: std });
    shown = result.diagnostics.map(formatDiagnostic).join('\n');
  } catch (err) {
    const wallMs = performance.now() - t0;
    return { problem: `exception escaped: ${err instanceof Error ? err.stack : String(err)}`, wallMs, cpuMs: wallMs };
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const bad = result.diagnostics.find((d) => !/^VDM\d{3}$/.test(d.code) || d.message.trim() === '');
  if (bad) return { problem: `bad diagnostic: ${formatDiagnostic(bad)}`, wallMs, cpuMs };
  if (result.diagnostics.length === 0 && result.hasModel && !result.graph) {
    return { problem: 'no diagnostics, yet no graph for a model', wallMs, cpuMs };
  }
  if (result.diagnostics.length > 0 && result.graph) return { problem: `a graph despite errors:\n${shown}`, wallMs, cpuMs };
  return { problem: null, wallMs, cpuMs };
}

/**
 * The machine is shared, so wall time alone can spike: a slow run is retried, and it counts as
 * too slow only when its best wall time and its best CPU time both exceed the limit
 * (a hang or a blow-up burns CPU on every attempt; waiting for a core does not).
 */
function checkTimed(file: string, std: string): string | null {
  let best = { wallMs: Infinity, cpuMs: Infinity };
  for (let attempt = 0; attempt < 3; attempt++) {
    const run = checkOnce(file, std);
    if (run.problem) return run.problem;
    best = { wallMs: Math.min(best.wallMs, run.wallMs), cpuMs: Math.min(best.cpuMs, run.cpuMs) };
    if (best.wallMs <= LIMIT_MS || best.cpuMs <= LIMIT_MS) return null;
  }
  return `too slow: best of 3 runs took ${best.wallMs.toFixed(0)} ms wall, ${best.cpuMs.toFixed(0)} ms CPU`;
}

test(`checker survives mutated specs (seed ${seed}, budget ${budgetMs} ms)`, () => {
  const scratch = makeScratch();
  assert.ok(scratch.targets.length > 0, 'no .vdm files to mutate');
  const rand = prng(seed);
  const failures: string[] = [];
  const start = performance.now();
  let count = 0;
  try {
    while (performance.now() - start < budgetMs && failures.length < 5) {
      const target = scratch.targets[Math.floor(rand() * scratch.targets.length)];
      const mutant = mutate(target.original, rand);
      fs.writeFileSync(target.scratch, mutant.source);
      const problem = checkTimed(target.scratch, scratch.std);
      fs.writeFileSync(target.scratch, target.original);
      count++;
      if (problem) {
        const saved = path.join(scratch.dir, `failure-${count}-${path.basename(target.scratch)}`);
        fs.writeFileSync(saved, mutant.source);
        failures.push(`mutant #${count} of ${path.relative(scratch.dir, target.scratch)} (${mutant.steps.join('; ')}), saved as ${saved}:\n${problem}`);
      }
    }
  } finally {
    // Keep the scratch folder when something failed: the saved mutants are the reproducers.
    if (failures.length === 0) fs.rmSync(scratch.dir, { recursive: true, force: true });
  }
  console.log(`  fuzz: ${count} mutants in ${((performance.now() - start) / 1000).toFixed(1)} s, seed ${seed}`);
  assert.ok(count > 0, 'no mutant was checked');
  assert.equal(failures, [], `VDM_FUZZ_SEED=${seed} reproduces these failures:\n${failures.join('\n\n')}\n`);
});

test.run();
