// Runs one parse on a thread with a large stack (see parse-deep.ts) and sends back the tree as
// JSON, or the syntax error, then wakes the waiting thread.
import { workerData, type MessagePort } from 'node:worker_threads';
import { serializeItems } from './ast-json.ts';
import { parseSource } from './parse.ts';
import { SourceFile } from '../ir/source.ts';

const { text, absPath, displayPath, signal, port } = workerData as {
  text: string; absPath: string; displayPath: string; signal: Int32Array; port: MessagePort;
};

try {
  const result = parseSource(new SourceFile(absPath, text, displayPath));
  if (result.ok) port.postMessage({ ok: true, json: serializeItems(result.ast.items) });
  else {
    const d = result.diagnostic;
    port.postMessage({ ok: false, message: d.message, start: d.span!.start, end: d.span!.end });
  }
} catch (err) {
  port.postMessage({ error: err instanceof Error ? err.message : String(err) });
} finally {
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}
