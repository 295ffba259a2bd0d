// `vdm fmt` formats a deeply nested file again on a worker thread with a large stack (see large-stack.ts).
import { callOnLargeStack } from '../frontend/large-stack.ts';

export type DeepReply = { ok: true; text: string } | { ok: false; syntax: { message: string; line: number; col: number } | null; error: string };

export function formatOnLargeStack(source: string): DeepReply {
  const reply = callOnLargeStack<DeepReply>(new URL('./fmt-worker.mjs', import.meta.url), { source });
  return reply ?? { ok: false, syntax: null, error: 'the large-stack formatter did not answer' };
}
