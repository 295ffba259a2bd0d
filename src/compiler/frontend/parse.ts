// Text -> typed AST. The hand-written parser in fast-parse.ts builds the tree (linear in the text);
// ohm on grammar/vdm.ohm is the reference it is tested against and words syntax errors: one VDM001
// at ohm's rightmost failure position, with ohm's list of expected things condensed into words a
// person reads (files over OHM_ERROR_BYTES get the fast parser's own message, at the same place).
import type * as ohm from 'ohm-js';
import type * as A from './ast.ts';
import type { ParseResult } from './ast.ts';
import { diag, type Diagnostic } from '../ir/diagnostics.ts';
import { vdmGrammar } from './grammar.ts';
import { span, type SourceFile, type Span } from '../ir/source.ts';
import { describeExpected } from './parse-expected.ts';
import { parseOnLargeStack } from './parse-deep.ts';
import { parseFast } from './fast-parse.ts';
import { isMainThread } from 'node:worker_threads';


let semantics: ohm.Semantics | null = null;
let current: SourceFile | null = null;

function spanOf(node: ohm.Node): Span {
  return span(current!, node.source.startIdx, node.source.endIdx);
}

function nameOf(node: ohm.Node): A.Name {
  return Object.freeze({ name: node.sourceString, span: spanOf(node) });
}

function opt<T>(iter: ohm.Node, f: (n: ohm.Node) => T): T | null {
  return iter.children.length ? f(iter.children[0]) : null;
}

function list(node: ohm.Node): ohm.Node[] {
  return node.asIteration().children;
}

const freeze = <T extends object>(o: T): T => Object.freeze(o);

/**
 * A left-associative chain such as `1 + 1 + ... + 1` nests thousands deep on the left: walk down
 * that spine in a loop rather than by recursion, then build the tree bottom-up.
 */
function binary(this: ohm.Node, _a: ohm.Node, _op: ohm.Node, _b: ohm.Node): A.Expr {
  const chain: ohm.Node[] = [];
  let node: ohm.Node = this;
  for (;;) {
    chain.push(node);
    const inner = node.children[0].children.length === 1 ? node.children[0].children[0] : null;
    if (!inner || inner.ctorName !== node.ctorName) break;
    node = inner;
  }
  let acc: A.Expr = chain[chain.length - 1].children[0].ast();
  for (let i = chain.length - 1; i >= 0; i--) {
    const [, op, right] = chain[i].children;
    acc = freeze({
      type: 'binary', op: op.sourceString as A.BinaryOp, left: acc, right: right.ast(),
      opSpan: spanOf(op), span: spanOf(chain[i]),
    });
  }
  return acc;
}

function assign(this: ohm.Node, target: ohm.Node, _colon: ohm.Node, ann: ohm.Node, _eq: ohm.Node, value: ohm.Node): A.AssignStmt {
  return freeze({ type: 'assign', target: target.ast(), annotation: opt(ann, (n) => n.ast()), value: value.ast(), span: spanOf(this) });
}

/** The value of a string literal from the text between its quotes. */
export function unescapeString(raw: string): string {
  return raw.replace(/\\(.)/gs, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[c] ?? c);
}

function makeSemantics(g: ohm.Grammar): ohm.Semantics {
  const s = g.createSemantics();
  s.addOperation<unknown>('ast', {
    File(items) { return items.children.map((i) => i.ast()); },
    Import(_kw, str) { return freeze({ type: 'import', path: str.ast(), pathSpan: spanOf(str), span: spanOf(this) }); },
    BlockDef(_kw, head, params, _comma, _close, body) {
      return freeze({ type: 'block', name: head.ast(), params: list(params).map((p) => p.ast()), body: body.ast(), span: spanOf(this) });
    },
    Param_default(id, _eq, e) { return freeze({ name: nameOf(id), default: e.ast() }); },
    Param_plain(id) { return freeze({ name: nameOf(id), default: null }); },
    ModelDef(_kw, id, body) { return freeze({ type: 'model', name: nameOf(id), body: body.ast(), span: spanOf(this) }); },
    DiffusionDef(_kw, _open, entries, _close) {
      return freeze({ type: 'diffusion', entries: entries.children.map((e) => e.ast()), span: spanOf(this) });
    },
    DiffEntry(id, e) { return freeze({ key: nameOf(id), value: e.ast(), span: spanOf(this) }); },
    Body(_open, stmts, _close) { return Object.freeze(stmts.children.map((st) => st.ast())); },
    DimsStmt(_kw, dims) { return freeze({ type: 'dims', dims: list(dims).map((d) => d.ast()), span: spanOf(this) }); },
    DimDecl_default(id, _eq, e) { return freeze({ name: nameOf(id), default: e.ast(), span: spanOf(this) }); },
    DimDecl_free(id) { return freeze({ name: nameOf(id), default: null, span: spanOf(this) }); },
    InputStmt(_kw, id, _colon, type) { return freeze({ type: 'input', name: nameOf(id), tensorType: type.ast(), span: spanOf(this) }); },
    OutputStmt(_kw, id, _colon, ann, _eq, e) {
      return freeze({ type: 'output', name: nameOf(id), annotation: opt(ann, (n) => n.ast()), value: e.ast(), span: spanOf(this) });
    },
    TensorType(head, axes, _comma, end) {
      const kind = head.ctorName === 'indexHead' ? head.ast() : null;
      return freeze({ kind, axes: list(axes).map((a) => a.ast()), options: end.ast(), span: spanOf(this) });
    },
    TypeEnd_options(_head, args, _comma, _close) { return Object.freeze(list(args).map((a) => a.ast())); },
    TypeEnd_plain(_close) { return Object.freeze([]); },
    AxisDecl_sized(id, _eq, e) { return freeze({ name: nameOf(id), size: e.ast(), span: spanOf(this) }); },
    AxisDecl_named(id) { return freeze({ name: nameOf(id), size: null, span: spanOf(this) }); },
    LetStmt(_kw, bindings) { return freeze({ type: 'let', bindings: list(bindings).map((b) => b.ast()), span: spanOf(this) }); },
    Binding: assign,
    AssignStmt: assign,
    Target_tuple(_open, items, _comma, _close) {
      return freeze({ type: 'tuple', items: list(items).map((t) => t.ast()), span: spanOf(this) });
    },
    Target_name(id) { return freeze({ type: 'name', name: id.sourceString, span: spanOf(this) }); },
    ForStmt(_kw, id, _in, iterable, naming, body) {
      let iter: A.Expr = iterable.ast();
      let name: A.Name | null = opt(naming, (n) => n.ast());
      // `for i in range(n) as blocks { }`: the grammar gives `as blocks` to the call; it names the loop.
      if (!name && iter.type === 'call' && iter.naming) {
        name = iter.naming;
        iter = freeze({ ...iter, naming: null });
      }
      return freeze({ type: 'for', variable: nameOf(id), iterable: iter, naming: name, body: body.ast(), span: spanOf(this) });
    },
    RepeatStmt(_kw, count, naming, body) {
      let c: A.Expr = count.ast();
      let name: A.Name | null = opt(naming, (n) => n.ast());
      if (!name && c.type === 'call' && c.naming) {
        name = c.naming;
        c = freeze({ ...c, naming: null });
      }
      return freeze({ type: 'repeat', count: c, naming: name, body: body.ast(), span: spanOf(this) });
    },
    Naming(_kw, id) { return nameOf(id); },
    Module(id, naming) { return freeze({ type: 'module', callee: nameOf(id), naming: naming.ast(), span: spanOf(this) }); },
    IfStmt(_kw, cond, body, elseClause) {
      return freeze({ type: 'ifStmt', cond: cond.ast(), then: body.ast(), else: opt(elseClause, (n) => n.ast()), span: spanOf(this) });
    },
    ElseClause_elif(_kw, ifStmt) { return Object.freeze([ifStmt.ast()]); },
    ElseClause_else(_kw, body) { return body.ast(); },
    AssertStmt(_kw, cond, _comma, message) {
      return freeze({ type: 'assert', cond: cond.ast(), message: opt(message, (n) => n.ast()), span: spanOf(this) });
    },
    ReturnStmt(_kw, e) { return freeze({ type: 'return', value: e.ast(), span: spanOf(this) }); },
    IfExpr(_if, c, _then, a, _else, b) { return freeze({ type: 'if', cond: c.ast(), then: a.ast(), else: b.ast(), span: spanOf(this) }); },
    RangeExpr_range(a, _dots, b) { return freeze({ type: 'range', start: a.ast(), end: b.ast(), span: spanOf(this) }); },
    OrExpr_or: binary,
    AndExpr_and: binary,
    CmpExpr_cmp: binary,
    AddExpr_binary: binary,
    MulExpr_binary: binary,
    PowExpr_pow: binary,
    NotExpr_not(_not, e) { return freeze({ type: 'unary', op: 'not', operand: e.ast(), span: spanOf(this) }); },
    UnaryExpr_neg(_minus, e) { return freeze({ type: 'unary', op: '-', operand: e.ast(), span: spanOf(this) }); },
    PostfixExpr_index(head, index, _close) {
      const target: A.Name = head.ast();
      return freeze({
        type: 'index', target: freeze({ type: 'ident', name: target.name, span: target.span }),
        index: index.ast(), span: spanOf(this),
      });
    },
    Call(head, args, _comma, _close, naming) {
      return freeze({ type: 'call', callee: head.ast(), args: list(args).map((a) => a.ast()), naming: opt(naming, (n) => n.ast()), span: spanOf(this) });
    },
    Arg_named(id, _colon, e) { return freeze({ name: nameOf(id), value: e.ast(), span: spanOf(this) }); },
    Arg_positional(e) { return freeze({ name: null, value: e.ast(), span: spanOf(this) }); },
    Primary(e) {
      if (e.ctorName !== 'string') return e.ast();
      return freeze({ type: 'string', value: e.ast(), span: spanOf(this) });
    },
    Paren(_open, e, _close) { return e.ast(); },
    Tuple_empty(_open, _close) { return freeze({ type: 'tuple', items: [], span: spanOf(this) }); },
    Tuple_onenamed(_open, id, _colon, e, _comma, _close) {
      return freeze({ type: 'tuple', items: [freeze({ name: nameOf(id), value: e.ast() })], span: spanOf(this) });
    },
    Tuple_many(_open, first, _comma, rest, _comma2, _close) {
      return freeze({ type: 'tuple', items: [first.ast(), ...list(rest).map((r) => r.ast())], span: spanOf(this) });
    },
    TupleElem_named(id, _colon, e) { return freeze({ name: nameOf(id), value: e.ast() }); },
    TupleElem_positional(e) { return freeze({ name: null, value: e.ast() }); },
    callHead(id, _open) { return nameOf(id); },
    indexHead(id, _open) { return nameOf(id); },
    number(_int, _dot, _frac, _exp) { return freeze({ type: 'number', value: Number(this.sourceString), span: spanOf(this) }); },
    string(_open, _chars, _close) { return unescapeString(this.sourceString.slice(1, -1)); },
    bool(_word) { return freeze({ type: 'bool', value: this.sourceString === 'true', span: spanOf(this) }); },
    ident(_start, _rest) { return freeze({ type: 'ident', name: this.sourceString, span: spanOf(this) }); },
  });
  return s;
}

/**
 * Parses a whole file into its AST, or the first syntax error. Nesting too deep for this thread's
 * stack is parsed again on a thread with a large one.
 */
export function parseSource(source: SourceFile): ParseResult {
  try {
    return parseHere(source);
  } catch (err) {
    if (!(err instanceof RangeError) || isMainless()) throw err;
    return parseOnLargeStack(source);
  }
}

/** A worker that is itself the large-stack parser must not start another one. */
function isMainless(): boolean {
  return !isMainThread;
}

/**
 * Files larger than this with a syntax error get the fast parser's own message: ohm, which words
 * syntax errors for the smaller ones, needs seconds and hundreds of megabytes per 100 KB.
 */
const OHM_ERROR_BYTES = 64 * 1024;

function parseHere(source: SourceFile): ParseResult {
  const fast = parseFast(source);
  if (fast.ok) return { ok: true, ast: Object.freeze({ source, items: Object.freeze(fast.items) }) };
  if (source.text.length <= OHM_ERROR_BYTES) return parseWithOhm(source);
  return { ok: false, diagnostic: fastSyntaxError(source, fast.pos, fast.expected) };
}

function fastSyntaxError(source: SourceFile, pos: number, expectedRaw: readonly string[]): Diagnostic {
  const rest = source.text.slice(pos);
  const token = /^\w+/.exec(rest)?.[0] ?? (rest.length ? String.fromCodePoint(rest.codePointAt(0)!) : undefined);
  const found = token === undefined ? 'end of file' : describeToken(token);
  const expected = describeExpected(expectedRaw);
  return diag('VDM001', span(source, pos, pos + (token?.length ?? 0)), expected ? `unexpected ${found}; expected ${expected}` : `unexpected ${found}`);
}

/** The reference parse: ohm on grammar/vdm.ohm, with its wording of syntax errors. */
export function parseWithOhm(source: SourceFile): ParseResult {
  const g = vdmGrammar();
  semantics ??= makeSemantics(g);
  const match = g.match(source.text);
  if (match.failed()) return { ok: false, diagnostic: syntaxError(source, match) };
  current = source;
  try {
    const items = semantics(match).ast() as A.Item[];
    return { ok: true, ast: Object.freeze({ source, items: Object.freeze(items) }) };
  } finally {
    current = null;
  }
}

/**
 * A character the eye cannot tell from a space (a non-breaking space pasted from a web page, a
 * byte order mark) is named by its code point, never taken for the end of the file.
 */
function describeToken(token: string): string {
  if (/^[\p{L}\p{N}\p{P}\p{S}]/u.test(token)) return `"${token}"`;
  const code = token.codePointAt(0)!;
  const name = code === 0xfeff ? 'byte order mark' : code === 0xa0 ? 'non-breaking space' : /\s/.test(token) ? 'space character' : 'invisible character';
  return `${name} U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

function syntaxError(source: SourceFile, match: ohm.FailedMatchResult): Diagnostic {
  const pos = match.getRightmostFailurePosition();
  const rest = source.text.slice(pos);
  const token = /^\w+/.exec(rest)?.[0] ?? (rest.length ? String.fromCodePoint(rest.codePointAt(0)!) : undefined);
  const found = token === undefined ? 'end of file' : describeToken(token);
  const failures = (match as unknown as { getRightmostFailures?(): { isFluffy(): boolean; getText(): string; getType(): string }[] })
    .getRightmostFailures?.() ?? [];
  const expected = describeExpected(
    failures.filter((f) => !f.isFluffy()).map((f) => (f.getType() === 'string' ? JSON.stringify(f.getText()) : f.getText())),
  );
  const message = expected ? `unexpected ${found}; expected ${expected}` : `unexpected ${found}`;
  // `if t = 2 then`: an assignment sign where an operator could go is almost always a comparison.
  const hint = token === '=' && !rest.startsWith('==') && expected.includes('an operator') ? 'to compare two values, write `==`' : undefined;
  return diag('VDM001', span(source, pos, pos + (token?.length ?? 0)), message, hint);
}
