// The AST as JSON, for the on-disk cache and the large-stack parse thread: spans travel as
// [start, end] and are tied back to their source file on reading.
import type { Item } from './ast.ts';
import { span, type SourceFile, type Span } from '../ir/source.ts';

const SPAN_KEYS = new Set(['span', 'pathSpan', 'opSpan']);

/** JSON has no Infinity (a literal like 1e400): such numbers travel as `{ [NON_FINITE]: "Infinity" }`, a key no AST node has. */
const NON_FINITE = '$nonFinite';

/** Spans become [start, end]; the source file is given back on reading. */
export function serializeItems(items: readonly Item[]): string {
  return JSON.stringify(items, (key, value) => {
    if (typeof value === 'number' && !Number.isFinite(value)) return { [NON_FINITE]: String(value) };
    return SPAN_KEYS.has(key) && value && typeof value === 'object' && 'start' in value
      ? [(value as Span).start, (value as Span).end] : value;
  });
}

export function reviveItems(json: string, source: SourceFile): Item[] {
  return JSON.parse(json, (key, value) => {
    if (SPAN_KEYS.has(key) && Array.isArray(value)) return span(source, value[0], value[1]);
    if (value !== null && typeof value === 'object' && typeof value[NON_FINITE] === 'string') return Number(value[NON_FINITE]);
    return value !== null && typeof value === 'object' ? Object.freeze(value) : value;
  }) as Item[];
}
