// ohm's parser recurses through a dozen rules per nesting level, so about 80 nested parentheses
// exhaust the main thread's stack. Such files are parsed again on a worker thread with a large
// stack, synchronously (the caller blocks until the worker answers).
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { reviveItems } from './ast-cache.ts';
import { diag } from './diagnostics.ts';
import type { ParseResult } from './parse.ts';
import { span, type SourceFile } from './source.ts';

const STACK_MB = 256;
const TIMEOUT_MS = 60_000;

export function parseOnLargeStack(source: SourceFile): ParseResult {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./parse-worker.mjs', import.meta.url), {
    workerData: { text: source.text, absPath: source.absPath, displayPath: source.displayPath, signal, port: port2 },
    transferList: [port2],
    execArgv: [],
    resourceLimits: { stackSizeMb: STACK_MB },
    stdout: true,
    stderr: true,
  });
  try {
    Atomics.wait(signal, 0, 0, TIMEOUT_MS);
    const reply = receiveMessageOnPort(port1)?.message as
      | { ok: true; json: string } | { ok: false; message: string; start: number; end: number } | { error: string } | undefined;
    if (!reply) throw new Error('the large-stack parser did not answer');
    if ('error' in reply) throw new Error(reply.error);
    if (!reply.ok) return { ok: false, diagnostic: diag('VDM001', span(source, reply.start, reply.end), reply.message) };
    return { ok: true, ast: Object.freeze({ source, items: Object.freeze(reviveItems(reply.json, source)) }) };
  } finally {
    port1.close();
    void worker.terminate();
  }
}
