// `vdm fmt`: one canonical layout for .vdm source, printed from the ohm parse tree.
//
// Layout rules (no options):
// - 2-space indentation per `{ }` level; one statement per line; `{` ends the line that opens it.
// - One space around binary operators (`+ - * / % ** == != < <= > >= and or`) and `=`, after
//   commas and after `:`; none before `,` or `:`. Ranges stay tight (`0..depth`), as does unary
//   minus (`-x`). A call's `(` and an index's `[` touch the name before them (the grammar needs it).
// - Shape notation is tight inside tensor types: `video[b, c=2*c, h=h/p]`. Declarations read
//   `input x : video[...]` and `output y : [...] = e` (a space before `:`); consecutive `input`
//   lines align their `:`. Annotations on assignments read `z: [...] = e`.
// - A bracketed list (call arguments, block parameters, tuples, tensor axes) stays on one line
//   when the line fits in 100 columns; otherwise it is broken one item per line, indented, with a
//   trailing comma, and the closing bracket on its own line. Outer lists break before inner ones.
//   `let`/`dims` lists that do not fit continue on indented lines after a comma. A one-element
//   tuple keeps its comma: `(a,)`.
// - Diffusion entries align their values one column after the longest entry name.
// - Blank lines between statements and items are kept but collapsed to one; none directly after
//   `{`, before `}`, or at the start or end of the file. Trailing whitespace is removed and the
//   file ends with exactly one newline.
// - Comments are kept with their text: a comment on its own line stays on its own line (indented
//   with the code that follows it), an end-of-line comment stays at the end of its line; those of
//   one paragraph (consecutive lines, same indentation) start in one column, two spaces after the
//   longest code among them.
// Number and string literals are printed exactly as written.
import type * as ohm from 'ohm-js';
import { isMainThread } from 'node:worker_threads';
import { vdmGrammar } from '../frontend/grammar.ts';
import { formatOnLargeStack } from './fmt-deep.ts';
import { type Doc, group, hardline, ifBreak, indent, line, printDoc, softline } from './fmt-doc.ts';
import { CommentTable, TRAILING, alignTrailingComments } from './fmt-comments.ts';

export const FMT_WIDTH = 100;

/** A printed piece of the tree with the source span of its first and last token. */
interface Part { doc: Doc; start: number; end: number }

export class FmtSyntaxError extends Error {
  constructor(message: string, readonly line: number, readonly col: number) { super(message); }
}

/**
 * Formats .vdm source text. Throws FmtSyntaxError when the text does not parse. Nesting too deep
 * for this thread's stack is formatted again on a thread with a large one.
 */
export function formatSource(source: string): string {
  try {
    return formatHere(source);
  } catch (err) {
    if (!(err instanceof RangeError) || !isMainThread) throw err;
    const reply = formatOnLargeStack(source);
    if (reply.ok) return reply.text;
    if (reply.syntax) throw new FmtSyntaxError(reply.syntax.message, reply.syntax.line, reply.syntax.col);
    throw new Error(reply.error);
  }
}

function formatHere(source: string): string {
  const src = source.replace(/\r\n?/g, '\n');
  const nul = src.indexOf(TRAILING);
  if (nul >= 0) {
    const before = src.slice(0, nul).split('\n');
    throw new FmtSyntaxError('the file contains a NUL character', before.length, before[before.length - 1].length + 1);
  }
  const match = vdmGrammar().match(src);
  if (match.failed()) {
    const pos = match.getRightmostFailurePosition();
    const before = src.slice(0, pos).split('\n');
    throw new FmtSyntaxError(match.shortMessage ?? 'syntax error', before.length, before[before.length - 1].length + 1);
  }
  const comments = new CommentTable(src);
  // Building the semantics costs more than formatting a spec, so it is made once; the file being
  // formatted reaches the actions through `current`.
  semantics ??= vdmGrammar().createSemantics().addOperation('fmt', actions());
  current = { src, comments };
  let file: Part;
  try {
    file = semantics(match).fmt() as Part;
  } finally {
    current = null;
  }
  comments.assertAllPlaced();
  const printed = printDoc(file.doc, FMT_WIDTH).replace(/[ \t]+$/gm, '').replace(/^\n+/, '').replace(/\n*$/, '');
  const text = alignTrailingComments(printed);
  return text ? text + '\n' : '';
}

type Node = ohm.Node;

let semantics: ohm.Semantics | undefined;
let current: { src: string; comments: CommentTable } | null = null;

function actions(): ohm.ActionDict<Part> {
  // The file being formatted, read at call time: the semantics outlive any one file.
  const comments = (): CommentTable => current!.comments;
  const tok = (n: Node): Part => ({ doc: n.sourceString, start: n.source.startIdx, end: n.source.endIdx });
  const fmt = (n: Node): Part => n.fmt() as Part;
  const opt = (n: Node): Part[] => n.children.map(fmt);
  const items = (listOf: Node): Part[] => listOf.asIteration().children.map(fmt);

  /** Parts separated by the separators between them: seq([a, ' ', b, '', c]). */
  const seq = (xs: (Part | Doc)[]): Part => {
    const parts = xs.filter((_, i) => i % 2 === 0) as Part[];
    const docs: Doc[] = [parts[0].doc];
    for (let i = 1; i < parts.length; i++) {
      docs.push(comments().gap(xs[2 * i - 1] as Doc, parts[i - 1].end, parts[i].start), parts[i].doc);
    }
    return { doc: docs, start: parts[0].start, end: parts[parts.length - 1].end };
  };
  /** seq with optional pieces: entries that are empty arrays of parts (absent `?`) are dropped with their separator. */
  const seqOpt = (xs: (Part | Part[] | Doc)[]): Part => {
    const flat: (Part | Doc)[] = [];
    for (let i = 0; i < xs.length; i += 2) {
      const p = xs[i] as Part | Part[];
      const ps = Array.isArray(p) ? p : [p];
      if (!ps.length) continue;
      if (flat.length) flat.push(i === 0 ? '' : xs[i - 1] as Doc);
      ps.forEach((q, k) => { if (k) flat.push(''); flat.push(q); });
    }
    return seq(flat);
  };

  /** The inside of a bracketed list (items, commas, comments), indented; empty when there is nothing. */
  const listInner = (openEnd: number, elems: Part[], closeStart: number, keepSingleComma = false): Doc[] => {
    const inner: Doc[] = [];
    let prev = openEnd;
    elems.forEach((e, i) => {
      if (i) inner.push(',');
      inner.push(comments().gap(i ? line : softline, prev, e.start), e.doc);
      prev = e.end;
    });
    if (elems.length) inner.push(keepSingleComma ? ',' : ifBreak(','));
    inner.push(...comments().run(prev, closeStart).docs);
    return inner.length ? [indent(inner), softline] : [];
  };

  /** A bracketed list: flat if it fits, else one item per line with a trailing comma. */
  const list = (open: Part, elems: Part[], close: Part, keepSingleComma = false): Part => {
    const inner = listInner(open.end, elems, close.start, keepSingleComma);
    const doc = inner.length ? group([open.doc, ...inner, close.doc]) : [open.doc, close.doc];
    return { doc, start: open.start, end: close.end };
  };

  /** An unbracketed comma list (`let`, `dims`): continuation lines are indented. */
  const commaRun = (elems: Part[]): Part => {
    const rest: Doc[] = [];
    for (let i = 1; i < elems.length; i++) rest.push(',', comments().gap(line, elems[i - 1].end, elems[i].start), elems[i].doc);
    return { doc: group([elems[0].doc, indent(rest)]), start: elems[0].start, end: elems[elems.length - 1].end };
  };

  /**
   * Statements (or items, or diffusion entries) one per line. Blank lines are kept (at most one)
   * except at the start and end; comments keep their own line or their end-of-line position.
   */
  const statements = (stmts: Part[], from: number, to: number, atFileStart: boolean): Doc[] => {
    const out: Doc[] = [];
    let prevEnd = from;
    let first = true;
    const emit = (doc: Doc, start: number, end: number) => {
      if (!(first && atFileStart)) {
        out.push(hardline);
        if (!first && comments().newlines(prevEnd, start) >= 2) out.push(hardline);
      }
      out.push(doc);
      first = false;
      prevEnd = end;
    };
    const emitComments = (until: number) => {
      for (const c of comments().take(prevEnd, until)) {
        const sameLine = !comments().hasNewline(prevEnd, c.start) && !(first && atFileStart);
        if (sameLine) { out.push(c.block ? ' ' : TRAILING, c.text); prevEnd = c.end; } else emit(c.text, c.start, c.end);
      }
    };
    for (const s of stmts) {
      emitComments(s.start);
      emit(s.doc, s.start, s.end);
    }
    emitComments(to);
    return out;
  };

  const braces = (open: Part, stmts: Part[], close: Part): Part => {
    const body = statements(stmts, open.end, close.start, false);
    const doc = body.length ? [open.doc, indent(body), hardline, close.doc] : [open.doc, close.doc];
    return { doc, start: open.start, end: close.end };
  };

  // Sizes inside tensor types are written tight (`h=h/p`), as in the language's shape notation.
  let tight = 0;
  const tightly = (n: Node): Part => { tight++; try { return fmt(n); } finally { tight--; } };
  // Consecutive `input` lines in the output (no blank line or comment line between) align their `:`.
  const inputNameWidth = new Map<number, number>();
  const alignInputs = (stmts: Node[]) => {
    let run: Node[] = [];
    const flush = () => {
      const width = Math.max(...run.map((st) => st.children[1].sourceString.length));
      for (const st of run) inputNameWidth.set(st.children[1].source.startIdx, width);
      run = [];
    };
    stmts.forEach((st, i) => {
      const prev = stmts[i - 1];
      const adjacent = prev && run.length && comments().newlines(prev.source.endIdx, st.source.startIdx) < 2 &&
        !comments().hasOwnLineComment(prev.source.endIdx, st.source.startIdx);
      if (run.length && (!adjacent || st.ctorName !== 'InputStmt')) flush();
      if (st.ctorName === 'InputStmt') run.push(st);
    });
    if (run.length) flush();
  };

  /**
   * A left-associative chain (a + b - c ...) walked down its left spine in a loop: a sum of
   * thousands of terms must not take one stack frame per term.
   */
  const chain = (self: Node, sp: string): Part => {
    const tail: (Node | string)[] = [];
    let node = self;
    let first: Node;
    for (;;) {
      const [left, op, right] = node.children;
      tail.unshift(sp, op, sp, right);
      const inner = left.children.length === 1 ? left.children[0] : null;
      if (inner?.ctorName !== self.ctorName) { first = left; break; }
      node = inner;
    }
    return seq([fmt(first), ...tail.map((x) => (typeof x === 'string' ? x : fmt(x)))]);
  };
  function binary(this: Node, _a: Node, _op: Node, _b: Node) { return chain(this, tight ? '' : ' '); }
  function wordOp(this: Node, _a: Node, _op: Node, _b: Node) { return chain(this, ' '); }
  const named = (id: Node, colon: Node, e: Node) => seq([fmt(id), '', fmt(colon), ' ', fmt(e)]);
  const assign = (target: Node, colon: Node, type: Node, eq: Node, e: Node) =>
    seqOpt([fmt(target), '', opt(colon), ' ', opt(type), ' ', fmt(eq), ' ', fmt(e)]);

  return {
    File(itemsNode) {
      const { length } = current!.src;
      const body = statements(itemsNode.children.map(fmt), 0, length, true);
      return { doc: body, start: 0, end: length };
    },
    Import: (kw, path) => seq([fmt(kw), ' ', fmt(path)]),
    BlockDef: (kw, head, params, _comma, close, body) =>
      seq([fmt(kw), ' ', list(fmt(head), items(params), fmt(close)), ' ', fmt(body)]),
    Param_default: (id, eq, e) => seq([fmt(id), ' ', fmt(eq), ' ', fmt(e)]),
    ModelDef: (kw, id, body) => seq([fmt(kw), ' ', fmt(id), ' ', fmt(body)]),
    // Entry values line up one column after the longest entry name.
    DiffusionDef: (kw, open, entries, close) => {
      const width = Math.max(0, ...entries.children.map((e) => e.children[0].sourceString.length));
      const printed = entries.children.map((e) => {
        const [id, value] = e.children;
        return seq([fmt(id), ' '.repeat(width - id.sourceString.length + 1), fmt(value)]);
      });
      return seq([fmt(kw), ' ', braces(fmt(open), printed, fmt(close))]);
    },
    Body: (open, stmts, close) => {
      alignInputs(stmts.children.map((st) => st.children[0]));
      return braces(fmt(open), stmts.children.map(fmt), fmt(close));
    },
    DimsStmt: (kw, decls) => seq([fmt(kw), ' ', commaRun(items(decls))]),
    DimDecl_default: (id, eq, e) => seq([fmt(id), ' ', fmt(eq), ' ', fmt(e)]),
    // Declarations read `input x : video[...]`; annotations on assignments read `z: [...]`.
    InputStmt: (kw, id, colon, type) => {
      const pad = ' '.repeat((inputNameWidth.get(id.source.startIdx) ?? id.sourceString.length) - id.sourceString.length + 1);
      return seq([fmt(kw), ' ', fmt(id), pad, fmt(colon), ' ', fmt(type)]);
    },
    OutputStmt: (kw, id, colon, type, eq, e) =>
      seqOpt([fmt(kw), ' ', fmt(id), ' ', opt(colon), ' ', opt(type), ' ', fmt(eq), ' ', fmt(e)]),
    TensorType: (head, axes, _comma, end) => {
      const open = fmt(head);
      const alt = end.children[0];
      if (alt.ctorName !== 'TypeEnd_options') return list(open, items(axes), fmt(alt.children[0]));
      // `video[b, c](classes: 10)`: the `](` token closes the axes and opens the options.
      const [head2, args, , close] = alt.children;
      const mid = fmt(head2);
      const axesDocs = listInner(open.end, items(axes), mid.start);
      const argDocs = listInner(mid.end, items(args), close.start);
      return {
        doc: [group([open.doc, ...axesDocs, mid.doc]), group([...argDocs, fmt(close).doc])],
        start: open.start, end: close.source.endIdx,
      };
    },
    AxisDecl_sized: (id, eq, e) => seq([fmt(id), '', fmt(eq), '', tightly(e)]),
    LetStmt: (kw, bindings) => seq([fmt(kw), ' ', commaRun(items(bindings))]),
    Binding: assign,
    AssignStmt: assign,
    Target_tuple: (open, targets, _comma, close) => list(fmt(open), items(targets), fmt(close)),
    ForStmt: (kw, id, inKw, e, naming, body) =>
      seqOpt([fmt(kw), ' ', fmt(id), ' ', fmt(inKw), ' ', fmt(e), ' ', opt(naming), ' ', fmt(body)]),
    RepeatStmt: (kw, e, naming, body) => seqOpt([fmt(kw), ' ', fmt(e), ' ', opt(naming), ' ', fmt(body)]),
    Naming: (kw, id) => seq([fmt(kw), ' ', fmt(id)]),
    Module: (id, naming) => seq([fmt(id), ' ', fmt(naming)]),
    IfStmt: (kw, cond, body, elseClause) => seqOpt([fmt(kw), ' ', fmt(cond), ' ', fmt(body), ' ', opt(elseClause)]),
    ElseClause_elif: (kw, ifStmt) => seq([fmt(kw), ' ', fmt(ifStmt)]),
    ElseClause_else: (kw, body) => seq([fmt(kw), ' ', fmt(body)]),
    AssertStmt: (kw, e, comma, message) => seqOpt([fmt(kw), ' ', fmt(e), '', opt(comma), ' ', opt(message)]),
    ReturnStmt: (kw, e) => seq([fmt(kw), ' ', fmt(e)]),
    IfExpr: (ifKw, c, thenKw, a, elseKw, b) =>
      seq([fmt(ifKw), ' ', fmt(c), ' ', fmt(thenKw), ' ', fmt(a), ' ', fmt(elseKw), ' ', fmt(b)]),
    RangeExpr_range: (a, op, b) => seq([fmt(a), '', fmt(op), '', fmt(b)]),
    OrExpr_or: wordOp,
    AndExpr_and: wordOp,
    NotExpr_not: (kw, e) => seq([fmt(kw), ' ', fmt(e)]),
    CmpExpr_cmp: binary,
    AddExpr_binary: binary,
    MulExpr_binary: binary,
    UnaryExpr_neg: (op, e) => seq([fmt(op), '', fmt(e)]),
    PowExpr_pow: binary,
    PostfixExpr_index: (head, e, close) => seq([fmt(head), '', fmt(e), '', fmt(close)]),
    Call: (head, args, _comma, close, naming) => seqOpt([list(fmt(head), items(args), fmt(close)), ' ', opt(naming)]),
    Arg_named: named,
    Paren: (open, e, close) => seq([fmt(open), '', fmt(e), '', fmt(close)]),
    Tuple_empty: (open, close) => list(fmt(open), [], fmt(close)),
    Tuple_onenamed: (open, id, colon, e, _comma, close) => list(fmt(open), [named(id, colon, e)], fmt(close)),
    // `(a,)` needs its comma even when flat: without it, it would be a parenthesized expression.
    Tuple_many: (open, first, _comma, rest, _comma2, close) => {
      const elems = [fmt(first), ...items(rest)];
      return list(fmt(open), elems, fmt(close), elems.length === 1);
    },
    TupleElem_named: named,
    // Lexical rules are single tokens.
    callHead(_id, _paren) { return tok(this); },
    indexHead(_id, _bracket) { return tok(this); },
    cmpOp(_op) { return tok(this); },
    optionsHead(_close, _open) { return tok(this); },
    kw(_word) { return tok(this); },
    ident(_start, _rest) { return tok(this); },
    number(_int, _dot, _frac, _exp) { return tok(this); },
    string(_open, _chars, _close) { return tok(this); },
    bool(_b) { return tok(this); },
    _terminal() { return tok(this); },
  };
}
