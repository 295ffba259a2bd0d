// About 80 nested parentheses exhaust the main thread's stack: such files are parsed again on a
// worker thread with a large stack (see large-stack.ts).
import { reviveItems } from './ast-json.ts';
import { diag } from '../ir/diagnostics.ts';
import { callOnLargeStack } from './large-stack.ts';
import type { ParseResult } from './ast.ts';
import { span, type SourceFile } from '../ir/source.ts';

type Reply = { ok: true; json: string } | { ok: false; message: string; start: number; end: number } | { error: string };

export function parseOnLargeStack(source: SourceFile): ParseResult {
  const reply = callOnLargeStack<Reply>(new URL('./parse-worker.mjs', import.meta.url),
    { text: source.text, absPath: source.absPath, displayPath: source.displayPath });
  if (!reply) throw new Error('the large-stack parser did not answer');
  if ('error' in reply) throw new Error(reply.error);
  if (!reply.ok) return { ok: false, diagnostic: diag('VDM001', span(source, reply.start, reply.end), reply.message) };
  return { ok: true, ast: Object.freeze({ source, items: Object.freeze(reviveItems(reply.json, source)) }) };
}
