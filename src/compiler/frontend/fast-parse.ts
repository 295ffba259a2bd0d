// A hand-written parser for grammar/vdm.ohm: one linear pass of a lexer, then recursive descent
// over the tokens, building the same AST as the ohm semantics in parse.ts (same nodes, same
// spans). ohm memoizes every rule at every position (hundreds of megabytes and seconds for a
// 100 KB spec, a node per character of a comment); this parser costs a few token objects per word.
// It accepts exactly the language of the grammar (test/compiler/fast-parse.test.ts checks both
// parsers agree on every spec, library file and corpus entry, and on mutations of them). On a
// syntax error it returns the farthest failure, like ohm's: parse.ts lets ohm word the message for
// files of ordinary size and uses this one's for large files.
import type * as A from './ast.ts';
import { span, type SourceFile, type Span } from '../ir/source.ts';
import { KEYWORDS, EXPRESSION_WORDS, lex, type Token } from './fast-lex.ts';

export type FastResult = { ok: true; items: A.Item[] } | { ok: false; pos: number; expected: string[] };

class SyntaxFail extends Error {}
const freeze = <T extends object>(o: T): T => Object.freeze(o);

/** The value of a string literal from the text between its quotes (as parse.ts). */
function unescapeString(raw: string): string {
  return raw.replace(/\\(.)/gs, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[c] ?? c);
}

export function parseFast(source: SourceFile): FastResult {
  const tokens = lex(source.text);
  let p = 0;
  let far = -1;
  let farExpected = new Set<string>();

  const tok = () => tokens[p];
  const sp = (start: number, end: number): Span => span(source, start, end);
  const prevEnd = () => tokens[p - 1].end;

  function note(what: string, at: number = tokens[p].start): void {
    if (at > far) {
      far = at;
      farExpected = new Set();
    }
    if (at === far) farExpected.add(what);
  }
  /** ohm tries `kw<word>` on a name that starts with the word, and fails just after the word. */
  function noteKeywordPrefixes(words: readonly string[]): void {
    const t = tokens[p];
    if (t.kind !== 'id') return;
    for (const w of words) if (t.text.length > w.length && t.text.startsWith(w)) note('not an identPart', t.start + w.length);
  }
  function fail(what: string): never {
    note(what);
    throw new SyntaxFail();
  }
  /** Whether the next token is the operator or keyword `text` (recorded as expected when not). */
  function is(text: string): boolean {
    const t = tokens[p];
    if ((t.kind === 'op' || t.kind === 'kw') && t.text === text) return true;
    note(JSON.stringify(text));
    if (KEYWORDS.has(text)) noteKeywordPrefixes([text]);
    return false;
  }
  function accept(text: string): Token | null {
    if (!is(text)) return null;
    return tokens[p++];
  }
  function expect(text: string): Token {
    return accept(text) ?? fail(JSON.stringify(text));
  }
  function isIdent(): boolean {
    if (tokens[p].kind === 'id') return true;
    note('a name');
    return false;
  }
  function name(): A.Name {
    if (!isIdent()) throw new SyntaxFail();
    const t = tokens[p++];
    return freeze({ name: t.text, span: sp(t.start, t.end) });
  }
  /** `name(` or `name[` written touching. */
  function isHead(open: string): boolean {
    const t = tokens[p];
    const next = tokens[p + 1];
    if (t.kind === 'id' && next.kind === 'op' && next.text === open && next.start === t.end) return true;
    // ohm's lexical rule fails right after the name when the bracket does not touch it.
    if (t.kind === 'id') note(JSON.stringify(open), t.end);
    return false;
  }
  function string(): Token {
    if (tokens[p].kind === 'str') return tokens[p++];
    return fail('a string');
  }

  /** `X ("," X)*`, stopping before a "," that no X follows (the caller may take it as trailing). */
  function listOf<T>(item: () => T, starts: () => boolean): T[] {
    const out = [item()];
    while (tokens[p].kind === 'op' && tokens[p].text === ',') {
      const save = p;
      p++;
      if (!starts()) {
        p = save;
        break;
      }
      out.push(item());
    }
    return out;
  }
  /** ListOf<X, ","> ","? then the closing token. */
  function delimited<T>(item: () => T, starts: () => boolean, close: string): T[] {
    const out = starts() ? listOf(item, starts) : [];
    accept(',');
    expect(close);
    return out;
  }

  // ---- expressions ----
  const startsExpr = (): boolean => {
    const t = tokens[p];
    if (t.kind === 'id' || t.kind === 'num' || t.kind === 'str') return true;
    if (t.kind === 'kw' && ['if', 'not', 'true', 'false'].includes(t.text)) return true;
    if (t.kind === 'op' && (t.text === '(' || t.text === '-')) return true;
    for (const w of ['a name', 'a number', 'a string', '"true"', '"false"', '"("', '"-"', '"not"', '"if"']) note(w);
    noteKeywordPrefixes(EXPRESSION_WORDS);
    return false;
  };
  const startsNamed = () => tokens[p].kind === 'id' && tokens[p + 1].kind === 'op' && tokens[p + 1].text === ':';

  function expr(): A.Expr {
    if (tokens[p].kind === 'kw' && tokens[p].text === 'if') {
      const start = tokens[p++].start;
      const cond = expr();
      expect('then');
      const then = expr();
      expect('else');
      const otherwise = expr();
      return freeze({ type: 'if', cond, then, else: otherwise, span: sp(start, prevEnd()) });
    }
    note('"if"');
    noteKeywordPrefixes(EXPRESSION_WORDS);
    const start = tokens[p].start;
    const left = orExpr();
    if (!accept('..')) return left;
    const right = orExpr();
    return freeze({ type: 'range', start: left, end: right, span: sp(start, prevEnd()) });
  }

  function binaryLoop(next: () => A.Expr, ops: readonly string[], kind: 'op' | 'kw'): A.Expr {
    // A parenthesized operand's node is its inner expression, but the span starts at its "(".
    const start = tokens[p].start;
    let acc = next();
    for (;;) {
      const t = tokens[p];
      if (t.kind !== kind || !ops.includes(t.text)) {
        for (const o of ops) note(JSON.stringify(o));
        if (kind === 'kw') noteKeywordPrefixes(ops);
        return acc;
      }
      p++;
      const right = next();
      acc = freeze({
        type: 'binary', op: t.text as A.BinaryOp, left: acc, right,
        opSpan: sp(t.start, t.end), span: sp(start, prevEnd()),
      });
    }
  }
  const orExpr = (): A.Expr => binaryLoop(andExpr, ['or'], 'kw');
  const andExpr = (): A.Expr => binaryLoop(notExpr, ['and'], 'kw');
  function notExpr(): A.Expr {
    const t = tokens[p];
    if (t.kind === 'kw' && t.text === 'not') {
      p++;
      const operand = notExpr();
      return freeze({ type: 'unary', op: 'not', operand, span: sp(t.start, prevEnd()) });
    }
    note('"not"');
    return cmpExpr();
  }
  const CMP = ['==', '!=', '<=', '>=', '<', '>'];
  function cmpExpr(): A.Expr {
    const start = tokens[p].start;
    const left = addExpr();
    const t = tokens[p];
    if (t.kind !== 'op' || !CMP.includes(t.text)) {
      for (const o of CMP) note(JSON.stringify(o));
      return left;
    }
    p++;
    const right = addExpr();
    return freeze({ type: 'binary', op: t.text as A.BinaryOp, left, right, opSpan: sp(t.start, t.end), span: sp(start, prevEnd()) });
  }
  const addExpr = (): A.Expr => binaryLoop(mulExpr, ['+', '-'], 'op');
  const mulExpr = (): A.Expr => binaryLoop(unaryExpr, ['*', '/', '%'], 'op');
  function unaryExpr(): A.Expr {
    const t = tokens[p];
    if (t.kind === 'op' && t.text === '-') {
      p++;
      const operand = unaryExpr();
      return freeze({ type: 'unary', op: '-', operand, span: sp(t.start, prevEnd()) });
    }
    note('"-"');
    const start = tokens[p].start;
    const base = postfixExpr();
    const op = tokens[p];
    if (!(op.kind === 'op' && op.text === '**')) {
      note('"**"');
      return base;
    }
    p++;
    const right = unaryExpr();
    return freeze({ type: 'binary', op: '**', left: base, right, opSpan: sp(op.start, op.end), span: sp(start, prevEnd()) });
  }
  function postfixExpr(): A.Expr {
    if (isHead('[')) {
      const target = name();
      p++; // [
      const index = expr();
      expect(']');
      return freeze({
        type: 'index', target: freeze({ type: 'ident', name: target.name, span: target.span }), index, span: sp(target.span.start, prevEnd()),
      });
    }
    return primary();
  }
  function naming(): A.Name | null {
    if (!accept('as')) return null;
    return name();
  }
  function arg(): A.Arg {
    const start = tokens[p].start;
    if (startsNamed()) {
      const n = name();
      p++; // :
      const value = expr();
      return freeze({ name: n, value, span: sp(start, prevEnd()) });
    }
    const value = expr();
    return freeze({ name: null, value, span: sp(start, prevEnd()) });
  }
  function tupleElem(): A.TupleItem {
    if (startsNamed()) {
      const n = name();
      p++;
      return freeze({ name: n, value: expr() });
    }
    return freeze({ name: null, value: expr() });
  }
  function primary(): A.Expr {
    const t = tokens[p];
    if (isHead('(')) {
      const callee = name();
      p++; // (
      const args = delimited(arg, startsExpr, ')');
      const n = naming();
      return freeze({ type: 'call', callee, args, naming: n, span: sp(t.start, prevEnd()) });
    }
    if (t.kind === 'op' && t.text === '(') {
      p++;
      if (accept(')')) return freeze({ type: 'tuple', items: [], span: sp(t.start, prevEnd()) });
      const first = tupleElem();
      if (accept(',')) {
        const rest = startsExpr() ? listOf(tupleElem, startsExpr) : [];
        accept(',');
        expect(')');
        return freeze({ type: 'tuple', items: [first, ...rest], span: sp(t.start, prevEnd()) });
      }
      expect(')');
      if (first.name) return freeze({ type: 'tuple', items: [first], span: sp(t.start, prevEnd()) });
      return first.value;
    }
    p++;
    if (t.kind === 'num') return freeze({ type: 'number', value: Number(t.text), span: sp(t.start, t.end) });
    if (t.kind === 'str') return freeze({ type: 'string', value: unescapeString(t.text.slice(1, -1)), span: sp(t.start, t.end) });
    if (t.kind === 'kw' && (t.text === 'true' || t.text === 'false')) return freeze({ type: 'bool', value: t.text === 'true', span: sp(t.start, t.end) });
    if (t.kind === 'id') return freeze({ type: 'ident', name: t.text, span: sp(t.start, t.end) });
    p--;
    for (const w of ['a name', 'a number', 'a string', '"true"', '"false"', '"("']) note(w);
    throw new SyntaxFail();
  }

  // ---- types and statements ----
  function tensorType(): A.TensorType {
    const start = tokens[p].start;
    let kind: A.Name | null = null;
    if (isHead('[')) {
      kind = name();
      p++;
    } else expect('[');
    const axes = startsAxis() ? listOf(axisDecl, startsAxis) : [];
    accept(',');
    let options: readonly A.Arg[] = Object.freeze([]);
    const t = tokens[p];
    if (t.kind === 'op' && t.text === ']' && tokens[p + 1].kind === 'op' && tokens[p + 1].text === '(' && tokens[p + 1].start === t.end) {
      p += 2;
      options = Object.freeze(delimited(arg, startsExpr, ')'));
    } else expect(']');
    return freeze({ kind, axes, options, span: sp(start, prevEnd()) });
  }
  const startsAxis = () => isIdent();
  function axisDecl(): A.AxisDecl {
    const n = name();
    if (accept('=')) return freeze({ name: n, size: expr(), span: sp(n.span.start, prevEnd()) });
    return freeze({ name: n, size: null, span: n.span });
  }
  function annotation(): A.TensorType | null {
    return accept(':') ? tensorType() : null;
  }
  const startsTarget = () => {
    if (tokens[p].kind === 'id' || (tokens[p].kind === 'op' && tokens[p].text === '(')) return true;
    note('a name');
    note('"("');
    return false;
  };
  function target(): A.Target {
    const t = tokens[p];
    if (t.kind === 'op' && t.text === '(') {
      p++;
      const items = listOf(target, startsTarget);
      accept(',');
      expect(')');
      return freeze({ type: 'tuple', items, span: sp(t.start, prevEnd()) });
    }
    const n = name();
    return freeze({ type: 'name', name: n.name, span: n.span });
  }
  function assign(): A.AssignStmt {
    const start = tokens[p].start;
    const tgt = target();
    const ann = annotation();
    expect('=');
    const value = bound();
    return freeze({ type: 'assign', target: tgt, annotation: ann, value, span: sp(start, prevEnd()) });
  }
  /** The right side of an assignment: a module (`name as fwd`), else an expression. */
  function bound(): A.Expr {
    const t = tokens[p];
    if (t.kind === 'id') {
      p++;
      const module = is('as');
      p--;
      if (module) {
        const callee = name();
        p++; // as
        const n = name();
        return freeze({ type: 'module', callee, naming: n, span: sp(t.start, prevEnd()) });
      }
    }
    return expr();
  }
  function body(): readonly A.Stmt[] {
    expect('{');
    const stmts: A.Stmt[] = [];
    while (!is('}')) stmts.push(statement());
    p++;
    return Object.freeze(stmts);
  }
  function letStmt(): A.LetStmt {
    const start = tokens[p++].start;
    const bindings = listOf(assign, startsTarget);
    return freeze({ type: 'let', bindings, span: sp(start, prevEnd()) });
  }
  function ifStmt(): A.IfStmt {
    const start = tokens[p++].start;
    const cond = expr();
    const then = body();
    let otherwise: readonly A.Stmt[] | null = null;
    if (accept('else')) {
      if (tokens[p].kind === 'kw' && tokens[p].text === 'if') otherwise = Object.freeze([ifStmt()]);
      else {
        note('"if"');
        otherwise = body();
      }
    }
    return freeze({ type: 'ifStmt', cond, then, else: otherwise, span: sp(start, prevEnd()) });
  }
  function statement(): A.Stmt {
    const t = tokens[p];
    const start = t.start;
    if (t.kind === 'kw') {
      switch (t.text) {
        case 'dims': {
          p++;
          const dims = listOf(() => {
            const n = name();
            if (accept('=')) return freeze({ name: n, default: expr(), span: sp(n.span.start, prevEnd()) });
            return freeze({ name: n, default: null, span: n.span });
          }, startsAxis);
          return freeze({ type: 'dims', dims, span: sp(start, prevEnd()) });
        }
        case 'input': {
          p++;
          const n = name();
          expect(':');
          const type = tensorType();
          return freeze({ type: 'input', name: n, tensorType: type, span: sp(start, prevEnd()) });
        }
        case 'output': {
          p++;
          const n = name();
          const ann = annotation();
          expect('=');
          const value = expr();
          return freeze({ type: 'output', name: n, annotation: ann, value, span: sp(start, prevEnd()) });
        }
        case 'let': return letStmt();
        case 'for': {
          p++;
          const variable = name();
          expect('in');
          let iter = expr();
          let n = naming();
          // `for i in range(n) as blocks { }`: the call took `as blocks`; it names the loop.
          if (!n && iter.type === 'call' && iter.naming) {
            n = iter.naming;
            iter = freeze({ ...iter, naming: null });
          }
          const b = body();
          return freeze({ type: 'for', variable, iterable: iter, naming: n, body: b, span: sp(start, prevEnd()) });
        }
        case 'repeat': {
          p++;
          let count = expr();
          let n = naming();
          if (!n && count.type === 'call' && count.naming) {
            n = count.naming;
            count = freeze({ ...count, naming: null });
          }
          const b = body();
          return freeze({ type: 'repeat', count, naming: n, body: b, span: sp(start, prevEnd()) });
        }
        case 'if': return ifStmt();
        case 'assert': {
          p++;
          const cond = expr();
          let message: string | null = null;
          const save = p;
          if (accept(',')) {
            if (tokens[p].kind === 'str') message = unescapeString(tokens[p++].text.slice(1, -1));
            else {
              note('a string');
              p = save;
            }
          }
          return freeze({ type: 'assert', cond, message, span: sp(start, prevEnd()) });
        }
        case 'return': {
          p++;
          const value = expr();
          return freeze({ type: 'return', value, span: sp(start, prevEnd()) });
        }
        default:
      }
    }
    for (const w of ['"dims"', '"input"', '"output"', '"let"', '"for"', '"repeat"', '"if"', '"assert"', '"return"']) note(w);
    noteKeywordPrefixes(['dims', 'input', 'output', 'let', 'for', 'repeat', 'if', 'assert', 'return']);
    if (!startsTarget()) {
      note('"("');
      note('a name');
      throw new SyntaxFail();
    }
    return assign();
  }

  function item(): A.Item {
    const t = tokens[p];
    const start = t.start;
    if (t.kind === 'kw') {
      switch (t.text) {
        case 'import': {
          p++;
          const s = string();
          return freeze({ type: 'import', path: unescapeString(s.text.slice(1, -1)), pathSpan: sp(s.start, s.end), span: sp(start, s.end) });
        }
        case 'block': {
          p++;
          if (!isHead('(')) {
            if (tokens[p].kind !== 'id') note('a name');
            throw new SyntaxFail();
          }
          const n = name();
          p++;
          const params = delimited(() => {
            const pn = name();
            if (accept('=')) return freeze({ name: pn, default: expr() });
            return freeze({ name: pn, default: null });
          }, startsAxis, ')');
          const b = body();
          return freeze({ type: 'block', name: n, params, body: b, span: sp(start, prevEnd()) });
        }
        case 'model': {
          p++;
          const n = name();
          const b = body();
          return freeze({ type: 'model', name: n, body: b, span: sp(start, prevEnd()) });
        }
        case 'diffusion': {
          p++;
          expect('{');
          const entries: A.DiffEntry[] = [];
          while (!is('}')) {
            const key = name();
            const value = expr();
            entries.push(freeze({ key, value, span: sp(key.span.start, prevEnd()) }));
          }
          p++;
          return freeze({ type: 'diffusion', entries, span: sp(start, prevEnd()) });
        }
        case 'let': return letStmt();
        default:
      }
    }
    throw new SyntaxFail();
  }

  try {
    const items: A.Item[] = [];
    for (;;) {
      const t = tokens[p];
      if (t.kind === 'eof') break;
      const before = p;
      try {
        items.push(item());
      } catch (err) {
        // Where no item starts, ohm expects one or the end of input.
        if (err instanceof SyntaxFail && p === before) {
          for (const w of ['"import"', '"block"', '"model"', '"diffusion"', '"let"', 'end of input']) note(w);
          noteKeywordPrefixes(['import', 'block', 'model', 'diffusion', 'let']);
        }
        throw err;
      }
    }
    return { ok: true, items };
  } catch (err) {
    if (!(err instanceof SyntaxFail)) throw err;
    return { ok: false, pos: Math.max(far, 0), expected: [...farExpected] };
  }
}
