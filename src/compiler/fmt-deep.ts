// ohm's parser recurses through a dozen rules per nesting level, so deeply nested source
// exhausts the main thread's stack. `vdm fmt` then formats the file again on a worker thread with
// a large stack, synchronously (the caller blocks until the worker answers), as the parser does.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';

const STACK_MB = 256;
const TIMEOUT_MS = 60_000;

export type DeepReply = { ok: true; text: string } | { ok: false; syntax: { message: string; line: number; col: number } | null; error: string };

export function formatOnLargeStack(source: string): DeepReply {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./fmt-worker.mjs', import.meta.url), {
    workerData: { source, signal, port: port2 },
    transferList: [port2],
    execArgv: [],
    resourceLimits: { stackSizeMb: STACK_MB },
    stdout: true,
    stderr: true,
  });
  try {
    Atomics.wait(signal, 0, 0, TIMEOUT_MS);
    const reply = receiveMessageOnPort(port1)?.message as DeepReply | undefined;
    return reply ?? { ok: false, syntax: null, error: 'the large-stack formatter did not answer' };
  } finally {
    port1.close();
    void worker.terminate();
  }
}
