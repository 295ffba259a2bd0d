// The `vdm` command as the tests start it: bin/vdm.mjs in a child Node process, its exit code and
// its whole stdout and stderr; and the check that an error printed no stack trace.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(repo, 'bin/vdm.mjs');

export interface VdmRun { code: number | null; out: string; err: string }

/** Runs vdm to the end (default: in the repository, 60 s at most). */
export function vdmSync(args: readonly string[], options: SpawnSyncOptions = {}): VdmRun {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repo, timeout: 60_000, ...options, encoding: 'utf8' });
  return { code: r.status, out: String(r.stdout), err: String(r.stderr) };
}

/** Runs vdm without blocking the test process (GPU work in the child while this one waits). */
export function vdmAsync(args: readonly string[], cwd = repo): Promise<VdmRun> {
  const child = spawn(process.execPath, [bin, ...args], { cwd });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

/** A line of a JavaScript stack trace. */
export const STACK = /^\s+at .+:\d+:\d+\)?$/m;
export const noTrace = (text: string) => assert.not.match(text, STACK, `stack trace in:\n${text}`);
