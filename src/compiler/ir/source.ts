// Source text with fast offset -> line/column lookup, and spans that point into it.
// Spans keep offsets; line/column are computed only when a diagnostic or the graph IR needs them.
import fs from 'node:fs';
import path from 'node:path';

export class SourceFile {
  readonly lineStarts: number[];
  constructor(
    readonly absPath: string,
    readonly text: string,
    /** The path shown to people (relative to the working directory when inside it). */
    readonly displayPath: string = displayPathOf(absPath),
  ) {
    this.lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  /** 1-based line and column of an offset (binary search over line starts). */
  lineCol(offset: number): { line: number; col: number } {
    const o = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= o) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: o - this.lineStarts[lo] + 1 };
  }

  /** Text of a 1-based line without its newline. */
  lineText(line: number): string {
    const start = this.lineStarts[line - 1] ?? this.text.length;
    const next = this.lineStarts[line];
    const end = next === undefined ? this.text.length : next - 1;
    return this.text.slice(start, end).replace(/\r$/, '');
  }
}

export function displayPathOf(absPath: string): string {
  const rel = path.relative(process.cwd(), absPath);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : absPath;
}

/** A half-open range [start, end) of offsets in one source file. */
export interface Span {
  readonly source: SourceFile;
  readonly start: number;
  readonly end: number;
}

export function span(source: SourceFile, start: number, end: number): Span {
  return Object.freeze({ source, start, end });
}

/** Serializable location used by the graph IR. */
export interface Location {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly endLine: number;
  readonly endCol: number;
}

export function locationOf(s: Span): Location {
  const a = s.source.lineCol(s.start);
  const b = s.source.lineCol(s.end);
  return { file: s.source.displayPath, line: a.line, col: a.col, endLine: b.line, endCol: b.col };
}

/** A span standing for a whole file (diagnostics about it print no line or column). */
export function wholeFile(source: SourceFile): Span {
  return Object.freeze({ source, start: 0, end: 0, whole: true });
}

/** A spec's text as the language sees it: UTF-8 without a leading byte order mark. */
export function readSpecText(file: string | number): string {
  return fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
}
