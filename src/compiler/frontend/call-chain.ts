// The block calls being run, so that an error raised inside a block (often a library block) also
// says which call in the user's spec led there, and with which arguments.
import { diag, spanLocation, type CallSite, type Diagnostic } from '../ir/diagnostics.ts';
import type { Span } from '../ir/source.ts';
import { show, type Value } from '../ir/values.ts';

export interface CallFrame {
  readonly site: CallSite;
  /** The called block's definition: a diagnostic located elsewhere did not arise in this call. */
  readonly definition: Span;
  /** Whether the called block, and the call itself, are in the standard library. */
  readonly library: boolean;
  readonly callerLibrary: boolean;
  /** The arguments written at the call, by parameter name. */
  readonly args: readonly (readonly [name: string, value: Value])[];
}

function contains(outer: Span, inner: Span): boolean {
  return outer.source === inner.source && inner.start >= outer.start && inner.start <= outer.end;
}

/** Longest argument text shown; a longer one ends in "...". */
const SHOWN = 40;

/**
 * An argument as written in spirit: a dim in a tuple is an axis name, alone it is also a size. Only
 * the first `room` characters are built, however large the value.
 */
function showArg(v: Value, top: boolean, room: number = SHOWN + 1): string {
  if (v.kind === 'dim') return top ? `${v.size} (dim ${v.name})` : v.name;
  if (v.kind === 'tuple') {
    let text = '(';
    for (let i = 0; i < v.items.length && text.length <= room; i++) {
      text += `${i > 0 ? ', ' : ''}${v.names?.[i] ? `${v.names[i]}: ` : ''}${showArg(v.items[i], false, room - text.length)}`;
    }
    return `${text}${v.items.length === 1 && !v.names ? ',' : ''})`;
  }
  if (v.kind === 'string') return JSON.stringify(v.value.slice(0, room));
  return show(v);
}

/** `heads=5, over=(h, w)`: the arguments worth showing (tensors are summarized by the message itself). */
export function shownArgs(args: CallFrame['args']): string {
  const parts: string[] = [];
  for (const [name, v] of args) {
    if (v.kind === 'tensor' || v.kind === 'error') continue;
    const text = showArg(v, true);
    parts.push(`${name}=${text.length > SHOWN ? `${text.slice(0, SHOWN - 3)}...` : text}`);
  }
  return parts.join(', ');
}

/**
 * Adds the chain of calls (innermost first) to a diagnostic raised while `stack` ran. Frames whose
 * block does not contain the location are left out: an unknown name written in one block may
 * surface only where a caller uses the value. In a library block, the hint also names the
 * arguments the user's own call passed.
 */
export function withCallChain(d: Diagnostic, stack: readonly CallFrame[]): Diagnostic {
  if (d.code === 'internal' || d.calls || !d.span || stack.length === 0) return d;
  let inner = stack.length - 1;
  while (inner >= 0 && !contains(stack[inner].definition, d.span)) inner--;
  if (inner < 0) return d;
  const frames = stack.slice(0, inner + 1);
  let hint = d.hint;
  if (frames[inner].library) {
    const userCall = frames.findLast((f) => !f.callerLibrary);
    const args = userCall ? shownArgs(userCall.args) : '';
    if (userCall && args) {
      const note = `this line is in the standard library; your call of '${userCall.site.block}' (${spanLocation(userCall.site.span)}) passed ${args}`;
      hint = hint ? `${hint}; ${note}` : note;
    }
  }
  const calls = frames.map((f) => f.site).reverse();
  const out = diag(d.code, d.span, d.message, hint, calls);
  return d.file === undefined ? out : Object.freeze({ ...out, file: d.file });
}
