import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AssignStmt, BlockDef, CallExpr, Expr, FileAst, ForStmt, IfStmt, InputStmt, LetStmt, ModelDef } from '../../src/compiler/frontend/ast.ts';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCached } from '../../src/compiler/frontend/ast-cache.ts';
import { reviveItems, serializeItems } from '../../src/compiler/frontend/ast-json.ts';
import { parseSource } from '../../src/compiler/frontend/parse.ts';
import { SourceFile } from '../../src/compiler/ir/source.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function parse(text: string): FileAst {
  const r = parseSource(new SourceFile('/virtual/t.vdm', text));
  if (!r.ok) throw new Error(`unexpected syntax error: ${r.diagnostic.message}`);
  return r.ast;
}

function syntaxError(text: string) {
  const r = parseSource(new SourceFile('/virtual/t.vdm', text));
  assert.not.ok(r.ok, 'expected a syntax error');
  if (r.ok) throw new Error('unreachable');
  const { line, col } = r.diagnostic.span!.source.lineCol(r.diagnostic.span!.start);
  return { code: r.diagnostic.code, line, col, message: r.diagnostic.message };
}

function expr(text: string): Expr {
  const m = parse(`model M { v = ${text} }`).items[0] as ModelDef;
  return (m.body[0] as AssignStmt).value;
}

/** A compact rendering of expressions to check precedence. */
function show(e: Expr): string {
  switch (e.type) {
    case 'number': return String(e.value);
    case 'string': return JSON.stringify(e.value);
    case 'bool': return String(e.value);
    case 'ident': return e.name;
    case 'tuple': return `(${e.items.map((i) => (i.name ? `${i.name.name}: ` : '') + show(i.value)).join(', ')})`;
    case 'call': return `${e.callee.name}(${e.args.map((a) => (a.name ? `${a.name.name}: ` : '') + show(a.value)).join(', ')})${e.naming ? ` as ${e.naming.name}` : ''}`;
    case 'index': return `${e.target.name}[${show(e.index)}]`;
    case 'unary': return `(${e.op} ${show(e.operand)})`;
    case 'binary': return `(${show(e.left)} ${e.op} ${show(e.right)})`;
    case 'range': return `${show(e.start)}..${show(e.end)}`;
    case 'if': return `if ${show(e.cond)} then ${show(e.then)} else ${show(e.else)}`;
    case 'module': return `module ${e.callee.name} as ${e.naming.name}`;
  }
}

test('items: import, block with defaults, model, diffusion, top-level let', () => {
  const ast = parse(`import "std/dit.vdm"
let a = 1, b = 2
block f(x, y = 3,) { return x }
model M { output o = x }
diffusion { predict v }`);
  assert.equal(ast.items.map((i) => i.type), ['import', 'let', 'block', 'model', 'diffusion']);
  const block = ast.items[2] as BlockDef;
  assert.equal(block.params.map((p) => p.name.name), ['x', 'y']);
  assert.is(block.params[0].default, null);
  assert.equal(show(block.params[1].default!), '3');
});

test('operator precedence and associativity', () => {
  assert.is(show(expr('1 + 2 * 3 - 4')), '((1 + (2 * 3)) - 4)');
  assert.is(show(expr('-x ** 2')), '(- (x ** 2))');
  assert.is(show(expr('2 ** 3 ** 2')), '(2 ** (3 ** 2))');
  assert.is(show(expr('a < b and not c or d')), '(((a < b) and (not c)) or d)');
  assert.is(show(expr('a % b / c')), '((a % b) / c)');
  assert.is(show(expr('0..n + 1')), '0..(n + 1)');
  assert.is(show(expr('if a == 1 then x else y')), 'if (a == 1) then x else y');
});

test('literals: numbers with exponents, strings with escapes, bools', () => {
  assert.is(show(expr('1e-4')), '0.0001');
  assert.is(show(expr('2.5E+2')), '250');
  assert.is((expr('"a\\"b\\n"') as { value: string }).value, 'a"b\n');
  assert.is(show(expr('true')), 'true');
});

test('tuples: empty, one-element, named, nested; calls with named args and as', () => {
  assert.is(show(expr('()')), '()');
  assert.is(show(expr('(a,)')), '(a)');
  assert.is((expr('(a,)') as { type: string }).type, 'tuple');
  assert.is(show(expr('(a)')), 'a');
  assert.is(show(expr('(t: 1, h: 2)')), '(t: 1, h: 2)');
  assert.is(show(expr('(h: 2)')), '(h: 2)');
  assert.is(show(expr('f(x, heads: 4,) as attn')), 'f(x, heads: 4) as attn');
  assert.is(show(expr('xs[-1]')), 'xs[(- 1)]');
});

test('statements: dims, input with options, output with annotation, destructuring, loops, ifs, assert', () => {
  const m = parse(`model M {
  dims b, c = 4, t = 16
  input y : label[b](classes: 10, null: true)
  input x : video[b, c, t, h=32, w=32]
  (p, (q, r)) = (1, (2, 3))
  z: [b, c=8] = x
  let k = 1, j = 2
  for i in 0..3 as blocks { x = f(x) }
  repeat 2 { x = g(x) }
  if a { x = 1 } else if b { x = 2 } else { x = 3 }
  assert k > 0, "k must be positive"
  output o: [b, c] = x
}`).items[0] as ModelDef;
  assert.equal(m.body.map((s) => s.type), ['dims', 'input', 'input', 'assign', 'assign', 'let', 'for', 'repeat', 'ifStmt', 'assert', 'output']);
  const label = m.body[1] as InputStmt;
  assert.is(label.tensorType.kind?.name, 'label');
  assert.is(label.tensorType.options.length, 2);
  const ifStmt = m.body[8] as IfStmt;
  assert.is(ifStmt.else?.[0].type, 'ifStmt');
  assert.is((m.body[9] as { message: string }).message, 'k must be positive');
});

test('a line starting with "(" never continues the previous statement', () => {
  const m = parse('model M {\n  x = a\n  (b, c) = x\n}').items[0] as ModelDef;
  assert.equal(m.body.map((s) => s.type), ['assign', 'assign']);
  assert.is(show((m.body[0] as AssignStmt).value), 'a');
});

test('input options must touch the "]", so a following tuple line is a new statement', () => {
  const m = parse('model M {\n  input t : timestep[b]\n  (p, q) = (1, 2)\n}').items[0] as ModelDef;
  assert.equal(m.body.map((s) => s.type), ['input', 'assign']);
});

test('keywords are whole words: names starting with a keyword are names', () => {
  const m = parse('model M {\n  dimsx = 1\n  returned = notes\n  outputs = asserted\n  letter = iffy\n}').items[0] as ModelDef;
  assert.equal(m.body.map((s) => s.type), ['assign', 'assign', 'assign', 'assign']);
  assert.is(show((m.body[1] as AssignStmt).value), 'notes');
});

test('`for i in range(n) as blocks` names the loop, not the call', () => {
  const m = parse('model M { for i in range(4) as blocks { x = f(x) } repeat len(xs) as stages { } }').items[0] as ModelDef;
  const f = m.body[0] as ForStmt;
  assert.is(f.naming?.name, 'blocks');
  assert.is((f.iterable as CallExpr).naming, null);
  assert.is((m.body[1] as { naming: { name: string } }).naming.name, 'stages');
});

test('a module binding: `name as seg` as the whole right side of an assignment or let, nowhere else', () => {
  const m = parse('model M {\n  cell = conv_cell as fwd\n  let p = linear as proj, q = 2\n  y = cell(x) as z\n  w = asx\n}').items[0] as ModelDef;
  assert.is(show((m.body[0] as AssignStmt).value), 'module conv_cell as fwd');
  const v = (m.body[0] as AssignStmt).value;
  assert.equal([v.span.start, v.span.end], [19, 35]);
  assert.equal((m.body[1] as LetStmt).bindings.map((b) => show(b.value)), ['module linear as proj', '2']);
  assert.is(show((m.body[2] as AssignStmt).value), 'cell(x) as z');
  assert.is(show((m.body[3] as AssignStmt).value), 'asx');
  // a loop's `as` still names the loop; elsewhere `name as seg` is no expression
  const f = (parse('model M { for i in xs as blocks { } }').items[0] as ModelDef).body[0] as ForStmt;
  assert.is(f.naming?.name, 'blocks');
  let e = syntaxError('model M {\n  y = 1 + cell as fwd\n}');
  assert.equal([e.line, e.col], [2, 16]);
  e = syntaxError('model M {\n  y = cell as 3\n}');
  assert.equal([e.line, e.col], [2, 15]);
  assert.match(e.message, /expected a name/);
  e = syntaxError('model M {\n  output o = cell as fwd\n}');
  assert.equal([e.line, e.col], [2, 19]);
});

test('comments are skipped; spans point at the written text', () => {
  const src = '// header\nmodel M { /* a\n b */ x = foo // trailing\n}';
  const m = parse(src).items[0] as ModelDef;
  const v = (m.body[0] as AssignStmt).value;
  assert.is(src.slice(v.span.start, v.span.end), 'foo');
  assert.equal(v.span.source.lineCol(v.span.start), { line: 3, col: 11 });
});

test('syntax errors: VDM001 at the failure position with a readable expected list', () => {
  let e = syntaxError('model M {\n  x = = 1\n}');
  assert.equal([e.code, e.line, e.col], ['VDM001', 2, 7]);
  assert.match(e.message, /unexpected "="; expected an expression/);
  e = syntaxError('block f(x) { return x');
  assert.equal([e.line, e.col], [1, 22]);
  assert.match(e.message, /unexpected end of file; expected "}"/);
  e = syntaxError('blok f(x) {}');
  assert.equal([e.line, e.col], [1, 1]);
  assert.match(e.message, /expected a top-level item/);
  e = syntaxError('model M {\n  x = 1\n  foo bar\n}');
  assert.equal([e.line, e.col], [3, 7]);
  assert.match(e.message, /unexpected "bar"/);
  e = syntaxError('model M { x = f (1) }');
  assert.equal([e.line, e.col], [1, 18]); // at the 1: "(1)" cannot start a destructuring
});

test('"=" where an operator could go hints at "=="; elsewhere it does not', () => {
  const hintOf = (text: string) => {
    const r = parseSource(new SourceFile('/virtual/t.vdm', text));
    return r.ok ? 'parsed' : r.diagnostic.hint;
  };
  assert.is(hintOf('model M { y = if t = 2 then 1 else 0 }'), 'to compare two values, write `==`');
  assert.is(hintOf('model M {\n  assert k = 1\n}'), 'to compare two values, write `==`');
  assert.is(hintOf('model M {\n  x = = 1\n}'), undefined);
});

test('a character that looks like a space is named by its code point, not taken for the end of the file', () => {
  let e = syntaxError('model M {\n  x = f(1,\u00a02)\n}');
  assert.equal([e.line, e.col], [2, 11]);
  assert.match(e.message, /^unexpected non-breaking space U\+00A0; /);
  e = syntaxError('\ufeffmodel M {}');
  assert.match(e.message, /^unexpected byte order mark U\+FEFF; /);
  e = syntaxError('model M { x = 1 }\n\u200b');
  assert.match(e.message, /^unexpected invisible character U\+200B/);
});

test('the AST is immutable', () => {
  const ast = parse('model M { x = 1 }');
  assert.ok(Object.isFrozen(ast));
  assert.ok(Object.isFrozen(ast.items[0]));
  assert.throws(() => { (ast.items as unknown as unknown[]).push(1); });
});

test('the parse cache gives back the same tree, with spans in the given file', () => {
  const text = fs.readFileSync(path.join(repoRoot, 'test/compiler/fixtures/dit.vdm'), 'utf8');
  const source = new SourceFile('/virtual/dit.vdm', text);
  const fresh = parse(text);
  const json = serializeItems(fresh.items);
  const revived = reviveItems(json, source);
  const plain = (items: unknown) => JSON.parse(serializeItems(items as FileAst['items']));
  assert.equal(plain(revived), plain(fresh.items));
  const block = revived.find((i) => i.type === 'block') as BlockDef;
  assert.is(block.name.span.source, source);
  assert.is(text.slice(block.name.span.start, block.name.span.end), 'modulate');
  assert.ok(Object.isFrozen(block.params));
  const cached = parseCached(source);
  assert.ok(cached.ok && parseCached(new SourceFile('/virtual/other.vdm', text)).ok);
});

test('the parse cache keeps a literal that overflows to infinity', () => {
  const text = 'let big = 1e400\nlet small = 1.5\n';
  const items = reviveItems(serializeItems(parse(text).items), new SourceFile('/virtual/big.vdm', text));
  const values = items.map((i) => ((i as LetStmt).bindings[0].value as { value: number }).value);
  assert.equal(values, [Infinity, 1.5]);
});

test.run();
