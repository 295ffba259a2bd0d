// The hand-written parser (fast-parse.ts) against the reference, ohm on grammar/vdm.ohm: on every
// spec, library file, example and corpus entry, and on seeded mutations of them, both must accept
// the same texts and build the same tree (same nodes, same spans); on a syntax error the fast
// parser's farthest failure is where ohm's is. Also: parsing is linear, so a large spec or a
// huge comment is no budget problem (timings are reported by the measurements, not here).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFast } from '../../src/compiler/frontend/fast-parse.ts';
import { parseSource, parseWithOhm } from '../../src/compiler/frontend/parse.ts';
import { serializeItems } from '../../src/compiler/frontend/ast-json.ts';
import { SourceFile } from '../../src/compiler/ir/source.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return walk(p);
    return e.isFile() && e.name.endsWith('.vdm') ? [p] : [];
  });
}

const files = ['specs', 'src/std', 'examples', 'test/broken', 'test/compiler/fixtures', 'test/golden'].flatMap((d) => walk(path.join(repo, d))).sort();

/** Both parsers on one text: the same verdict, the same tree, the same failure position. */
function agree(label: string, text: string): void {
  const source = new SourceFile(path.join(repo, 'x.vdm'), text);
  let ohm;
  try {
    ohm = parseWithOhm(source);
  } catch (err) {
    if (err instanceof RangeError) return; // too deep for ohm on this stack: the large-stack path covers it
    throw err;
  }
  const fast = parseFast(source);
  if (ohm.ok) {
    assert.ok(fast.ok, `${label}: ohm accepts, the fast parser fails at ${fast.ok ? '' : source.lineCol(fast.pos).line}:${fast.ok ? '' : source.lineCol(fast.pos).col}\n${text}`);
    if (fast.ok) {
      const [a, b] = [serializeItems(fast.items), serializeItems(ohm.ast.items)];
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      if (a !== b) assert.unreachable(`${label}: the trees differ at\n fast: ...${a.slice(Math.max(0, i - 150), i + 80)}\n ohm:  ...${b.slice(Math.max(0, i - 150), i + 80)}`);
    }
  } else {
    assert.not.ok(fast.ok, `${label}: ohm rejects (${ohm.diagnostic.message}), the fast parser accepts\n${text}`);
    if (!fast.ok) {
      const at = (o: number) => `${source.lineCol(o).line}:${source.lineCol(o).col}`;
      // ohm, scannerless, may match the "=" of "==" (or "*" of "**") and fail one character on.
      const [a, b] = [fast.pos, ohm.diagnostic.span!.start];
      const splitOperator = b === a + 1 && /^(==|\*\*|<=|>=|!=|\.\.)/.test(text.slice(a));
      if (!splitOperator) assert.is(at(a), at(b), `${label}: failure positions differ (ohm: ${ohm.diagnostic.message})\n${text}`);
    }
  }
}

test('both parsers agree on every spec, library file, example and corpus entry', () => {
  assert.ok(files.length > 50, `${files.length} files`);
  for (const f of files) agree(path.relative(repo, f), fs.readFileSync(f, 'utf8').replace(/^\uFEFF/, ''));
});

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['(', ')', '[', ']', '{', '}', ',', ':', '=', '==', '..', '.', '-', '*', '**', '/', '//', '/*', '*/', '"', '\\', ' ', '\n',
  'as', 'if', 'then', 'else', 'x', 'x(', 'x[', '](', '1', '1.5', '1e-3', '2e', 'true', 'not', 'and', 'let', 'in', 'for', '\u00a0'];

test('both parsers agree on seeded mutations of the corpus', () => {
  const random = rng(14);
  const small = files.filter((f) => fs.statSync(f).size < 4000);
  let count = 0;
  for (let round = 0; round < 3; round++) {
    for (const f of small) {
      const text = fs.readFileSync(f, 'utf8').replace(/^\uFEFF/, '');
      if (!text.length) continue;
      const at = Math.floor(random() * text.length);
      const len = 1 + Math.floor(random() * 4);
      const kind = random();
      const piece = PIECES[Math.floor(random() * PIECES.length)];
      const mutated = kind < 0.4 ? text.slice(0, at) + text.slice(at + len)
        : kind < 0.8 ? text.slice(0, at) + piece + text.slice(at)
          : text.slice(0, at) + piece + text.slice(at + len);
      agree(`${path.relative(repo, f)} mutation ${round}`, mutated);
      count++;
    }
  }
  assert.ok(count > 100, `${count} mutations`);
});

test('hand-picked corners of the grammar', () => {
  const cases = [
    'let a = 1..2', 'let a = 1.5..2', 'let y = 2e = 3', 'let k = 2abc', 'let x = (a)', 'let x = (a,)', 'let x = (a: 1)', 'let x = (a: 1,)',
    'let x = (a: 1, b: 2)', 'let x = (1, 2,)', 'let x = ()', 'let x = f(,)', 'let x = f()', 'let x = f (1)', 'let x = xs [0]', 'let x = xs[0]',
    'let x = 2 ** -3 ** 2', 'let x = a < b < c', 'let x = not not a', 'let x = - - 1', 'let x = a ***b', 'let x = a * * b', 'let x = if a then b else c',
    'let x = a /* c */ + b', 'let x = a /* open', 'let x = "a\\"b"', 'let x = "a\nb"', 'let (a, (b, c),) = d', 'let a = 1, b = 2', 'let a = 1,',
    'block f(a, b = 2,) {\n return a\n}', 'block f (a) {\n}', 'model M {\n input x: video[b, c](dtype: 1)\n}', 'model M {\n input x: video[b, c] (a, b) = c\n}',
    'model M {\n input x: [b, c=2,]\n output o: [b] = x\n}', 'model M {\n for i in range(3) as blocks {\n }\n repeat 2 as r {\n }\n}',
    'model M {\n if a {\n } else if b {\n } else {\n }\n}', 'model M {\n assert a, "m"\n assert b,\n}', 'diffusion {\n schedule linear(a: 1) predict epsilon\n}',
    'import "std/dit.vdm"', 'let iffy = in', 'let _x9 = ünïcode', 'let x = y as z', 'model M {\n dims b, c = 4,\n}', 'let x = f(a: 1, 2)',
    '\u00a0let a = 1', 'let a = 1 // c', '/* only a comment */', '', 'let a = b\n(c, d) = e',
    // tuple slices: an index whose expression is a range
    'let x = xs[0..-1]', 'let x = xs[-2..len(xs)]', 'let x = xs[a .. b]', 'let x = xs[0..]', 'let x = xs[..2]', 'let x = xs[0..1..2]',
  ];
  for (const c of cases) agree(JSON.stringify(c), c);
});

test('a large spec and a huge comment parse (linear, no budget problem)', () => {
  let big = '';
  for (let i = 0; big.length < 100_000; i++) big += `block mlp${i}(x, hidden, ratio = 4) {\n  y = linear(gelu(linear(x, hidden * ratio)), size(x, c)) // ${i}\n  return y + x * 2 - 1\n}\n`;
  const r = parseSource(new SourceFile(path.join(repo, 'big.vdm'), big));
  assert.ok(r.ok);
  const comment = `let a = 1\n/*${'x'.repeat(900_000)}*/\n//${'y'.repeat(100_000)}\nlet b = 2\n`;
  const c = parseSource(new SourceFile(path.join(repo, 'comment.vdm'), comment));
  assert.ok(c.ok && c.ast.items.length === 2);
  // a syntax error at the end of a large file: the fast parser's own message, at the right place
  const broken = parseSource(new SourceFile(path.join(repo, 'broken.vdm'), `${big}model M {\n  y = x *\n}\n`));
  assert.not.ok(broken.ok);
  if (!broken.ok) {
    const { line } = broken.diagnostic.span!.source.lineCol(broken.diagnostic.span!.start);
    assert.is(line, big.split('\n').length + 2);
    assert.match(broken.diagnostic.message, /^unexpected "}"; expected /);
  }
});

test.run();
