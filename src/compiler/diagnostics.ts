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
  VDM030: 'does not divide',
  VDM031: 'patch does not divide',
  VDM032: 'window or shift invalid',
  VDM033: 'pool or upsample factor invalid',
  VDM034: 'conv kernel, padding or output invalid',
  VDM035: 'bad size',
  VDM036: 'assertion failed',
  VDM040: 'unroll too long',
  VDM041: 'size too large',
  VDM042: 'recursion too deep',
  VDM043: 'graph too large',
  VDM050: 'model error',
  VDM051: 'unknown input kind',
  VDM060: 'diffusion entry invalid',
  VDM061: 'diffusion inconsistent with model',
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
}

/** The one factory for user-facing diagnostics. */
export function diag(code: Code, span: Span | null, message: string, hint?: string): Diagnostic {
  return Object.freeze(hint === undefined ? { code, span, message } : { code, span, message, hint });
}

/** A failure in the compiler itself, kept apart from the stable codes. */
export function internalError(file: string, error: unknown): Diagnostic {
  const text = error instanceof Error ? error.message : String(error);
  return Object.freeze({ code: 'internal' as const, span: null, file, message: text });
}

/** Thrown inside the compiler to abandon the current expression with a diagnostic. */
export class DiagError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

export function fail(code: Code, span: Span | null, message: string, hint?: string): never {
  throw new DiagError(diag(code, span, message, hint));
}

function location(d: Diagnostic): string {
  if (!d.span) return d.file ?? '<command line>';
  const file = d.span.source.displayPath;
  if ((d.span as { whole?: boolean }).whole) return file;
  const { line, col } = d.span.source.lineCol(d.span.start);
  return `${file}:${line}:${col}`;
}

/** `FILE:LINE:COL: error VDMxxx: message`, the source line with a gutter and carets, then the hint. */
export function formatDiagnostic(d: Diagnostic): string {
  if (d.code === 'internal') {
    return `${location(d)}: internal error: ${d.message} (this is a bug in vdm, not in the spec)`;
  }
  const out = [`${location(d)}: error ${d.code}: ${d.message}`];
  const s = d.span;
  if (s && !(s as { whole?: boolean }).whole) {
    const a = s.source.lineCol(s.start);
    const b = s.source.lineCol(Math.max(s.start, s.end));
    const text = s.source.lineText(a.line);
    const width = String(a.line).length;
    const lastCol = b.line === a.line ? b.col : text.length + 1;
    const count = Math.max(1, lastCol - a.col);
    // Reuse the line's own tabs in the padding so carets stay aligned.
    const pad = text.slice(0, a.col - 1).replace(/[^\t]/g, ' ');
    out.push(` ${a.line} | ${text}`);
    out.push(` ${' '.repeat(width)} | ${pad}${'^'.repeat(count)}`);
  }
  if (d.hint) out.push(`   hint: ${d.hint}`);
  return out.join('\n');
}

/**
 * Stable order: by file, then position. One diagnostic per code and place: the static checks and
 * elaboration may both notice a problem (say, a missing return) in their own words.
 */
export function sortAndDedupe(list: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const unique: Diagnostic[] = [];
  for (const d of list) {
    const key = d.span ? `${d.code}|${d.span.source.absPath}|${d.span.start}` : `${d.code}|${d.file}|${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
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
