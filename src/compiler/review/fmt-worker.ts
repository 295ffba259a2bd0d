// Formats one source text on a thread with a large stack (see fmt-deep.ts), sends back the text
// or the error, then wakes the waiting thread.
import { workerData, type MessagePort } from 'node:worker_threads';
import { formatSource, FmtSyntaxError } from './fmt.ts';
import type { DeepReply } from './fmt-deep.ts';

const { source, signal, port } = workerData as { source: string; signal: Int32Array; port: MessagePort };

let reply: DeepReply;
try {
  reply = { ok: true, text: formatSource(source) };
} catch (err) {
  const syntax = err instanceof FmtSyntaxError ? { message: err.message, line: err.line, col: err.col } : null;
  reply = { ok: false, syntax, error: err instanceof Error ? err.message : String(err) };
}
port.postMessage(reply);
Atomics.store(signal, 0, 1);
Atomics.notify(signal, 0);
