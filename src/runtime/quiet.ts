// Dawn's adapter discovery prints "Warning: maxDynamic...BuffersPerPipelineLayout artificially
// reduced ..." straight to file descriptor 2 from native code, once per process, on drivers that
// report huge dynamic-buffer limits (lavapipe does). They say nothing a user can act on.
// Node cannot dup2, so fd 2 is pointed at a temporary file for the duration of the call (closing fd 2
// and opening a file reuses the lowest free descriptor, 2), then restored; every other line captured
// meanwhile is written back to stderr. Where /proc is missing (not Linux), nothing is filtered.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const NOISE = /^Warning: maxDynamic\w+ artificially reduced from \d+ to \d+/;

export async function quietDiscovery<T>(fn: () => Promise<T>): Promise<T> {
  if (process.platform !== 'linux' || process.env.VDM_DAWN_VERBOSE === '1') return fn();
  let saved = -1;
  let capture = -1;
  try {
    // fds 0 and 1 must be open, or the "lowest free descriptor" would not be 2.
    fs.fstatSync(0);
    fs.fstatSync(1);
    saved = fs.openSync('/proc/self/fd/2', 'a');
    const capturePath = path.join(os.tmpdir(), `vdm-dawn-${process.pid}-${Date.now()}.log`);
    capture = fs.openSync(capturePath, 'w+');
    fs.unlinkSync(capturePath);
  } catch {
    // stderr is a socket or /proc is unavailable: leave stderr alone.
    if (saved >= 0) fs.closeSync(saved);
    if (capture >= 0) fs.closeSync(capture);
    return fn();
  }
  fs.closeSync(2);
  fs.openSync(`/proc/self/fd/${capture}`, 'a');
  try {
    return await fn();
  } finally {
    fs.closeSync(2);
    fs.openSync(`/proc/self/fd/${saved}`, 'a'); // lowest free descriptor: 2 again
    fs.closeSync(saved);
    const text = fs.readFileSync(capture, 'utf8');
    fs.closeSync(capture);
    const kept = text.split('\n').filter((line) => line.length > 0 && !NOISE.test(line));
    if (kept.length > 0) process.stderr.write(kept.join('\n') + '\n');
  }
}
