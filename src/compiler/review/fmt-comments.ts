// Comments for `vdm fmt`. The grammar skips comments as whitespace, so the parse tree never
// sees them; they are recovered here from the source text and placed back in the gaps between
// the tokens they sat between. Every gap is owned by exactly one construct of the formatter
// (the smallest one containing both neighbouring tokens), which asks this table for the gap's
// comments; `assertAllPlaced` then proves that no comment was dropped or printed twice.
import { type Doc, hardline, softline, breakParent, lineSuffix } from './fmt-doc.ts';

/**
 * Marks where an end-of-line comment starts in printed text; `alignTrailingComments` replaces it
 * with the padding that lines the comment up with its neighbours. The formatter refuses source
 * text that contains it.
 */
export const TRAILING = '\u0000';

/**
 * End-of-line comments line up within a paragraph: consecutive non-blank lines of the same
 * indentation. They start two spaces after the longest code among the lines that carry one.
 */
export function alignTrailingComments(text: string): string {
  const lines = text.split('\n');
  const indentOf = (l: string) => /^ */.exec(l)![0].length;
  for (let i = 0; i < lines.length;) {
    let j = i + 1;
    if (lines[i] !== '') while (j < lines.length && lines[j] !== '' && indentOf(lines[j]) === indentOf(lines[i])) j++;
    const commented = [];
    for (let k = i; k < j; k++) if (lines[k].includes(TRAILING)) commented.push(k);
    const split = new Map(commented.map((k) => {
      const at = lines[k].indexOf(TRAILING);
      return [k, [lines[k].slice(0, at).trimEnd(), lines[k].slice(at + 1)]] as const;
    }));
    const column = Math.max(0, ...[...split.values()].map(([code]) => code.length)) + 2;
    for (const [k, [code, comment]] of split) lines[k] = code.padEnd(column) + comment;
    i = j;
  }
  return lines.join('\n');
}

export interface Comment { start: number; end: number; text: string; block: boolean }

/** Finds `//` and `/* *\/` comments, skipping string literals (which cannot span lines). */
export function scanComments(src: string): Comment[] {
  const out: Comment[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    if (ch === '"') {
      i++;
      while (i < src.length && src[i] !== '"' && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
      i++;
    } else if (ch === '/' && src[i + 1] === '/') {
      let end = src.indexOf('\n', i);
      if (end < 0) end = src.length;
      out.push({ start: i, end, text: src.slice(i, end).replace(/[ \t\r]+$/, ''), block: false });
      i = end;
    } else if (ch === '/' && src[i + 1] === '*') {
      let end = src.indexOf('*/', i + 2);
      end = end < 0 ? src.length : end + 2;
      out.push({ start: i, end, text: src.slice(i, end).replace(/[ \t\r]+$/gm, ''), block: true });
      i = end;
    } else {
      i++;
    }
  }
  return out;
}

/** What a run of comments in one gap needs around it. */
export interface CommentRun {
  docs: Doc[];
  /** The run ends with a line comment (or a block comment followed by a newline): a newline must follow. */
  needsNewline: boolean;
  /** The run ends with a block comment that started its own line and a token follows on that line. */
  gluedToNext: boolean;
}

export class CommentTable {
  private readonly comments: Comment[];
  private readonly placed = new Set<Comment>();

  constructor(private readonly src: string) {
    this.comments = scanComments(src);
  }

  get all(): readonly Comment[] { return this.comments; }

  /** Takes (marks as placed) the comments lying inside [from, to). */
  take(from: number, to: number): Comment[] {
    const got = this.comments.filter((c) => c.start >= from && c.end <= to && !this.placed.has(c));
    for (const c of got) this.placed.add(c);
    return got;
  }

  hasNewline(from: number, to: number): boolean {
    return this.src.slice(from, to).includes('\n');
  }

  /** Whether a comment in [from, to) starts its own line. */
  hasOwnLineComment(from: number, to: number): boolean {
    let prev = from;
    for (const c of this.comments) {
      if (c.start < from || c.end > to) continue;
      if (this.hasNewline(prev, c.start)) return true;
      prev = c.end;
    }
    return false;
  }

  newlines(from: number, to: number): number {
    let n = 0;
    for (let i = from; i < to; i++) if (this.src[i] === '\n') n++;
    return n;
  }

  /**
   * Comments of one gap inside an expression or list. A comment on the same line as the token
   * before it stays there (a line comment as a line suffix, forcing its group to break); a
   * comment that started its own line starts its own line again.
   */
  run(from: number, to: number): CommentRun {
    const docs: Doc[] = [];
    let needsNewline = false;
    let gluedToNext = false;
    let prevEnd = from;
    for (const c of this.take(from, to)) {
      const ownLine = this.hasNewline(prevEnd, c.start);
      if (ownLine) docs.push(hardline, c.text);
      else if (c.block) docs.push(' ', c.text);
      else docs.push(lineSuffix(TRAILING + c.text), breakParent);
      needsNewline = !c.block;
      gluedToNext = c.block && ownLine;
      prevEnd = c.end;
    }
    if (docs.length && !needsNewline && this.hasNewline(prevEnd, to)) needsNewline = true;
    return { docs, needsNewline, gluedToNext: gluedToNext && !needsNewline };
  }

  /** The separator `sep` between two tokens, with the gap's comments woven in. */
  gap(sep: Doc, from: number, to: number): Doc {
    const { docs, needsNewline, gluedToNext } = this.run(from, to);
    if (!docs.length) return sep;
    if (needsNewline) return [...docs, hardline];
    // A block comment that opens its line stays on the line of the token after it.
    if (gluedToNext) return [...docs, ' '];
    // One that follows a token keeps the separator; it still needs a space before the next token.
    return [...docs, sep === softline || sep === '' ? [' ', sep] : sep];
  }

  /** Throws if any comment was not placed: the formatter must never lose a comment. */
  assertAllPlaced(): void {
    const lost = this.comments.filter((c) => !this.placed.has(c));
    if (lost.length) throw new Error(`internal formatter error: comment at offset ${lost[0].start} was not placed`);
  }
}
