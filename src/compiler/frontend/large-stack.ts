// ohm's parser recurses through a dozen rules per nesting level, so deeply nested source exhausts
// the main thread's stack. Parsing and formatting then run again on a worker thread with a large
// stack, synchronously: the caller blocks until the worker posts its reply and raises `signal`.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';

const STACK_MB = 256;
const TIMEOUT_MS = 60_000;

/**
 * Runs the worker at `entry` with `data` plus `{ signal, port }` and returns the message it posted,
 * or undefined if it did not answer in time.
 */
export function callOnLargeStack<Reply>(entry: URL, data: Record<string, unknown>): Reply | undefined {
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(entry, {
    workerData: { ...data, signal, port: port2 },
    transferList: [port2],
    execArgv: [],
    resourceLimits: { stackSizeMb: STACK_MB },
    stdout: true,
    stderr: true,
  });
  try {
    Atomics.wait(signal, 0, 0, TIMEOUT_MS);
    return receiveMessageOnPort(port1)?.message as Reply | undefined;
  } finally {
    port1.close();
    void worker.terminate();
  }
}
