// Diagnostics: stable VDMxxx codes, one factory, one formatter. Bad input must end in these,
// never in a stack trace; internal failures become one clear "internal error" line.
import type { Span } from './source.ts';

export const CODES = {
  VDM001: 'syntax error',
  VDM002: 'file not found or unreadable',
  VDM003: 'import outside the spec root',
  VDM004: 'import cycle or imports nested too deep',
  VDM010: 'unknown name',
  VDM011: 'unknown function or block',
  VDM012: 'duplicate definition',
  VDM013: 'wrong number of arguments',
  VDM014: 'unknown named argument',
  VDM015: 'missing argument',
  VDM016: 'duplicate argument',
  VDM017: 'wrong kind of value',
  VDM018: 'destructuring count mismatch',
  VDM019: 'statement not allowed here',
  VDM020: 'axis not in tensor',
  VDM021: 'axis size mismatch',
  VDM022: 'duplicate axis',
  VDM023: 'shape annotation mismatch',
  VDM024: 'concat mismatch',
  VDM025: 'shared module called with different weights',
  VDM030: 'does not divide',
  VDM031: 'patch does not divide',
  VDM032: 'window or shift invalid',
  VDM033: 'pool or upsample factor invalid',
  VDM034: 'conv kernel, padding or output invalid',
  VDM035: 'bad size',
  VDM036: 'assertion failed',
  VDM037: 'embedding table smaller than its labels',
  VDM038: 'attention rope invalid',
  VDM039: 'attention causal invalid',
  VDM040: 'unroll too long',
  VDM041: 'size too large',
  VDM042: 'recursion too deep',
  VDM043: 'graph too large',
  VDM044: 'attention key_mask invalid',
  VDM045: 'flatten axes invalid',
  VDM046: 'unflatten sizes do not match the axis',
  VDM047: 'unflatten axes invalid',
  VDM048: 'condition size differs from the video',
  VDM050: 'model error',
  VDM051: 'unknown input kind',
  VDM060: 'diffusion entry invalid',
  VDM061: 'diffusion inconsistent with model',
  VDM062: 'diffusion entry does not fit the schedule',
  VDM070: 'bad --dim override',
} as const;

export type Code = keyof typeof CODES;

export interface Diagnostic {
  readonly code: Code | 'internal';
  /** null: the whole run (command line); otherwise a span, possibly a whole-file one. */
  readonly span: Span | null;
  readonly message: string;
  readonly hint?: string;
  /** File shown when there is no span. */
  readonly file?: string;
  /**
   * The block calls that led to the error, innermost first, when it arose inside a block: the
   * location alone may be a library line that says nothing about where the user's spec goes wrong.
   */
  readonly calls?: readonly CallSite[];
}

/** A block call on the way to an error: the block's name and the span of the call expression. */
export interface CallSite {
  readonly block: string;
  readonly span: Span;
}

/** Longest message or hint printed whole; a longer one (a large value shown in it) is abbreviated. */
export const MAX_MESSAGE = 400;

/** Keeps both ends of a long text, saying how much of the middle is left out. */
export function abbreviate(text: string, max: number = MAX_MESSAGE): string {
  if (text.length <= max) return text;
  const head = Math.floor(max * 0.7);
  const tail = max - head;
  return `${text.slice(0, head)} ... (${text.length - head - tail} characters left out) ... ${text.slice(text.length - tail)}`;
}

/** The one factory for user-facing diagnostics. */
export function diag(code: Code, span: Span | null, message: string, hint?: string, calls?: readonly CallSite[]): Diagnostic {
  const d: { code: Code; span: Span | null; message: string; hint?: string; calls?: readonly CallSite[] } = { code, span, message: abbreviate(message) };
  if (hint !== undefined) d.hint = abbreviate(hint);
  if (calls !== undefined && calls.length > 0) d.calls = Object.freeze([...calls]);
  return Object.freeze(d);
}

/** A failure in the compiler itself, kept apart from the stable codes. */
export function internalError(file: string, error: unknown): Diagnostic {
  const text = error instanceof Error ? error.message : String(error);
  return Object.freeze({ code: 'internal' as const, span: null, file, message: text });
}

/**
 * Thrown inside the compiler to abandon the current expression with a diagnostic. It is the
 * compiler's own control flow, caught and never shown, so it captures no stack trace: a trace of
 * a deep elaboration costs more than the rest of it (an error on every iteration of a loop).
 */
export class DiagError extends Error {
  readonly diagnostic: Diagnostic;
  constructor(diagnostic: Diagnostic) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(diagnostic.message);
    Error.stackTraceLimit = limit;
    this.diagnostic = diagnostic;
  }
}

export function fail(code: Code, span: Span | null, message: string, hint?: string): never {
  throw new DiagError(diag(code, span, message, hint));
}

function location(d: Diagnostic): string {
  return d.span ? spanLocation(d.span) : d.file ?? '<command line>';
}

/** `FILE:LINE:COL`, or `FILE` for a span standing for a whole file. */
export function spanLocation(s: Span): string {
  const file = s.source.displayPath;
  if ((s as { whole?: boolean }).whole) return file;
  const { line, col } = s.source.lineCol(s.start);
  return `${file}:${line}:${col}`;
}

/** `FILE:LINE:COL: error VDMxxx: message`, the source line with a gutter and carets, then the hint. */
export function formatDiagnostic(d: Diagnostic): string {
  if (d.code === 'internal') {
    return `${location(d)}: internal error: ${d.message} (this is a bug in vdm, not in the spec)`;
  }
  const out = [`${location(d)}: error ${d.code}: ${d.message}`];
  const s = d.span;
  if (s && !(s as { whole?: boolean }).whole) out.push(...excerpt(s));
  if (d.calls?.length) out.push(...callNotes(d.calls));
  if (d.hint) out.push(`   hint: ${d.hint}`);
  return out.join('\n');
}

/** The span's first line with a ` NN | ` gutter, and carets under the span. */
function excerpt(s: Span): string[] {
  const a = s.source.lineCol(s.start);
  const b = s.source.lineCol(Math.max(s.start, s.end));
  const text = s.source.lineText(a.line);
  const width = String(a.line).length;
  const lastCol = b.line === a.line ? b.col : text.length + 1;
  const count = Math.max(1, lastCol - a.col);
  // Reuse the line's own tabs in the padding so carets stay aligned.
  const pad = text.slice(0, a.col - 1).replace(/[^\t]/g, ' ');
  return [` ${a.line} | ${text}`, ` ${' '.repeat(width)} | ${pad}${'^'.repeat(count)}`];
}

/** Shown in full up to this many lines; longer chains keep both ends. */
const MAX_NOTES = 12;
/** The longest cycle of calls (a recursion through several blocks) folded into one line. */
const MAX_CYCLE = 8;

const sameSite = (a: CallSite, b: CallSite) => a.block === b.block && a.span.source === b.span.source && a.span.start === b.span.start;

/**
 * `note: in block 'b' called at FILE:LINE:COL`, innermost first, then an excerpt of the outermost
 * call: the line in the user's own spec that led there. A recursion, which repeats a cycle of call
 * sites, shows the cycle once and how often it repeats.
 */
function callNotes(calls: readonly CallSite[]): string[] {
  let lines: string[] = [];
  for (let i = 0; i < calls.length;) {
    let best = { period: 1, repeats: 1 };
    for (let period = 1; period <= MAX_CYCLE && i + 2 * period <= calls.length; period++) {
      let repeats = 1;
      while (i + (repeats + 1) * period <= calls.length
        && calls.slice(i, i + period).every((c, k) => sameSite(c, calls[i + repeats * period + k]))) repeats++;
      if (repeats > 1 && repeats * period > best.repeats * best.period) best = { period, repeats };
    }
    for (const site of calls.slice(i, i + best.period)) lines.push(`   note: in block '${site.block}' called at ${spanLocation(site.span)}`);
    if (best.repeats > 1) {
      const what = best.period === 1 ? 'this call repeats' : `these ${best.period} calls repeat`;
      lines.push(`   note: ... ${what} ${best.repeats - 1} more time${best.repeats === 2 ? '' : 's'}`);
    }
    i += best.period * best.repeats;
  }
  if (lines.length > MAX_NOTES) {
    const keep = MAX_NOTES / 2;
    lines = [...lines.slice(0, keep), `   note: ... ${lines.length - 2 * keep} more lines ...`, ...lines.slice(-keep)];
  }
  return [...lines, ...excerpt(calls[calls.length - 1].span)];
}

/**
 * Stable order: by file, then position. One diagnostic per code and place: the static checks and
 * elaboration may both notice a problem (say, a missing return) in their own words. Inside a block,
 * calls with other arguments may fail at the same place in other words (heads=5, then heads=3):
 * those stay, unless a diagnostic from outside any call already covers the place.
 */
const MAX_PER_PLACE = 3;

export function sortAndDedupe(list: readonly Diagnostic[]): Diagnostic[] {
  const coveredOutsideCalls = new Set<string>();
  const unique: Diagnostic[] = [];
  const place = (d: Diagnostic) => (d.span ? `${d.code}|${d.span.source.absPath}|${d.span.start}` : `${d.code}|${d.file}|${d.message}`);
  for (const d of list) {
    if (!d.calls) coveredOutsideCalls.add(place(d));
  }
  const kept = new Set<string>();
  const perPlace = new Map<string, number>();
  for (const d of list) {
    if (d.calls && coveredOutsideCalls.has(place(d))) continue;
    const key = d.calls ? `${place(d)}|${d.message}` : place(d);
    const atPlace = perPlace.get(place(d)) ?? 0;
    if (kept.has(key) || atPlace >= MAX_PER_PLACE) continue;
    kept.add(key);
    perPlace.set(place(d), atPlace + 1);
    unique.push(d);
  }
  const fileOrder = new Map<string, number>();
  for (const d of unique) {
    const f = d.span?.source.absPath ?? d.file ?? '';
    if (!fileOrder.has(f)) fileOrder.set(f, fileOrder.size);
  }
  return unique
    .map((d, i) => ({ d, i }))
    .sort((x, y) => {
      const fx = fileOrder.get(x.d.span?.source.absPath ?? x.d.file ?? '')!;
      const fy = fileOrder.get(y.d.span?.source.absPath ?? y.d.file ?? '')!;
      if (fx !== fy) return fx - fy;
      const px = x.d.span?.start ?? -1;
      const py = y.d.span?.start ?? -1;
      return px !== py ? px - py : x.i - y.i;
    })
    .map((e) => e.d);
}
