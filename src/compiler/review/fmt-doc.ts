// A small layout algebra for `vdm fmt`: documents made of text, groups, indentation and line
// breaks, printed at a fixed width. A group is printed on one line when it fits, else every
// `line` directly inside it becomes a newline (nested groups decide again on their own).
// Line comments ride along as line suffixes: they are emitted just before the next newline,
// so a trailing comment stays at the end of its line even when a comma follows it in the doc.

export type Doc = string | Doc[] | Group | Indent | Line | IfBreak | Suffix | BreakParent;
interface Group { kind: 'group'; contents: Doc; broken: boolean }
interface Indent { kind: 'indent'; contents: Doc }
interface Line { kind: 'line'; soft: boolean; hard: boolean }
interface IfBreak { kind: 'ifBreak'; broken: Doc; flat: Doc }
interface Suffix { kind: 'suffix'; text: string }
interface BreakParent { kind: 'breakParent' }

/** A space when the enclosing group is flat, a newline when it is broken. */
export const line: Doc = { kind: 'line', soft: false, hard: false };
/** Nothing when flat, a newline when broken. */
export const softline: Doc = { kind: 'line', soft: true, hard: false };
/** Always a newline; forces every enclosing group to break. */
export const hardline: Doc = [{ kind: 'line', soft: false, hard: true }, { kind: 'breakParent' }];
export const breakParent: Doc = { kind: 'breakParent' };

export const group = (contents: Doc): Doc => ({ kind: 'group', contents, broken: false });
export const indent = (contents: Doc): Doc => ({ kind: 'indent', contents });
export const ifBreak = (broken: Doc, flat: Doc = ''): Doc => ({ kind: 'ifBreak', broken, flat });
/** Text printed at the end of the current line (before the next newline). */
export const lineSuffix = (text: string): Doc => ({ kind: 'suffix', text });

export const INDENT = '  ';

/** Marks every group that contains a hard break as broken (returns true if `doc` contains one). */
function propagateBreaks(doc: Doc): boolean {
  if (typeof doc === 'string') return doc.includes('\n');
  if (Array.isArray(doc)) {
    let any = false;
    for (const d of doc) any = propagateBreaks(d) || any;
    return any;
  }
  switch (doc.kind) {
    case 'group': {
      const inner = propagateBreaks(doc.contents);
      if (inner) doc.broken = true;
      return inner;
    }
    case 'indent': return propagateBreaks(doc.contents);
    case 'ifBreak': return propagateBreaks(doc.broken) || propagateBreaks(doc.flat);
    case 'breakParent': return true;
    case 'line': return doc.hard;
    case 'suffix': return false;
  }
}

type Mode = 'flat' | 'break';
interface Cmd { ind: number; mode: Mode; doc: Doc }

/** Whether `next` (then the rest of the line from `rest`) fits in `width` columns. */
function fits(next: Cmd, rest: Cmd[], width: number): boolean {
  const stack: Cmd[] = [next];
  let restIdx = rest.length - 1;
  while (width >= 0) {
    let cmd = stack.pop();
    if (!cmd) {
      if (restIdx < 0) return true;
      cmd = rest[restIdx--];
    }
    const { mode, doc } = cmd;
    if (typeof doc === 'string') {
      if (doc.includes('\n')) return false;
      width -= doc.length;
    } else if (Array.isArray(doc)) {
      for (let i = doc.length - 1; i >= 0; i--) stack.push({ ind: cmd.ind, mode, doc: doc[i] });
    } else {
      switch (doc.kind) {
        case 'group':
          if (doc.broken && mode === 'flat') return false;
          stack.push({ ind: cmd.ind, mode: doc.broken ? 'break' : mode, doc: doc.contents });
          break;
        case 'indent': stack.push({ ind: cmd.ind, mode, doc: doc.contents }); break;
        case 'ifBreak': stack.push({ ind: cmd.ind, mode, doc: mode === 'break' ? doc.broken : doc.flat }); break;
        case 'line':
          if (mode === 'break' || doc.hard) return true;
          if (!doc.soft) width -= 1;
          break;
        case 'suffix': case 'breakParent': break;
      }
    }
  }
  return false;
}

/** Prints `doc` at `width` columns; trailing spaces are never produced. */
export function printDoc(doc: Doc, width: number): string {
  propagateBreaks(doc);
  const out: string[] = [];
  let suffixes: string[] = [];
  let column = 0;
  const stack: Cmd[] = [{ ind: 0, mode: 'break', doc }];
  const newline = (ind: number) => {
    if (suffixes.length) { out.push(suffixes.join('')); suffixes = []; }
    while (out.length && /[ \t]$/.test(out[out.length - 1])) out[out.length - 1] = out[out.length - 1].replace(/[ \t]+$/, '');
    out.push('\n' + INDENT.repeat(ind));
    column = ind * INDENT.length;
  };
  while (stack.length) {
    const cmd = stack.pop()!;
    const { ind, mode, doc: d } = cmd;
    if (typeof d === 'string') {
      out.push(d);
      const nl = d.lastIndexOf('\n');
      column = nl < 0 ? column + d.length : d.length - nl - 1;
    } else if (Array.isArray(d)) {
      for (let i = d.length - 1; i >= 0; i--) stack.push({ ind, mode, doc: d[i] });
    } else {
      switch (d.kind) {
        case 'group': {
          const flat: Cmd = { ind, mode: 'flat', doc: d.contents };
          const useFlat = !d.broken && fits(flat, stack, width - column);
          stack.push(useFlat ? flat : { ind, mode: 'break', doc: d.contents });
          break;
        }
        case 'indent': stack.push({ ind: ind + 1, mode, doc: d.contents }); break;
        case 'ifBreak': stack.push({ ind, mode, doc: mode === 'break' ? d.broken : d.flat }); break;
        case 'line':
          if (mode === 'flat' && !d.hard) {
            if (!d.soft) { out.push(' '); column += 1; }
          } else {
            newline(ind);
          }
          break;
        case 'suffix': suffixes.push(d.text); break;
        case 'breakParent': break;
      }
    }
  }
  if (suffixes.length) out.push(suffixes.join(''));
  return out.join('');
}
