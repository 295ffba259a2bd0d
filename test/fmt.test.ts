// vdm fmt: layout rules on small inputs, and on every spec of the project: idempotent, same AST,
// every comment kept. The command (--check, write mode, stdin) is tested in test/cli/fmt.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatSource } from '../src/compiler/review/fmt.ts';
import { scanComments } from '../src/compiler/review/fmt-comments.ts';
import { astShape } from '../src/compiler/review/fmt-verify.ts';
import { parseSource } from '../src/compiler/frontend/parse.ts';
import { SourceFile } from '../src/compiler/ir/source.ts';
import { checkFile } from '../src/compiler/frontend/check.ts';

const root = path.resolve(import.meta.dirname, '..');

function vdmFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...vdmFiles(p));
    else if (e.name.endsWith('.vdm')) out.push(p);
  }
  return out.sort();
}

/** The parser's verdict; a parser failure (its own bug, reported by its own tests) counts as "does not parse". */
function parses(file: string, text: string): ReturnType<typeof parseSource> | { ok: false } {
  try {
    return parseSource(new SourceFile(file, text));
  } catch {
    return { ok: false };
  }
}

const lines = (...l: string[]) => l.join('\n') + '\n';

test('spacing, one statement per line, blank lines collapsed, final newline', () => {
  const src = '\n\nlet a=1 ,b=2*(3+4)   \n\n\n\nblock f(x,k=3){ y=conv(x,over:(h,w),kernel:k)  return -y**2 }';
  assert.is(formatSource(src), lines(
    'let a = 1, b = 2 * (3 + 4)',
    '',
    'block f(x, k = 3) {',
    '  y = conv(x, over: (h, w), kernel: k)',
    '  return -y ** 2',
    '}',
  ));
});

test('no blank line after { or before }, ranges and tensor sizes tight, declarations spaced', () => {
  const src = lines(
    'model M {', '', '  dims b,c=4,t', 'input x:video[b,c = 4,t,h = h / 2](classes:3)',
    'for i in 0 .. n as blocks {', '', 'x = f(x)', '', '}', '', '}',
  );
  assert.is(formatSource(src), lines(
    'model M {',
    '  dims b, c = 4, t',
    '  input x : video[b, c=4, t, h=h/2](classes: 3)',
    '  for i in 0..n as blocks {',
    '    x = f(x)',
    '  }',
    '}',
  ));
});

test('long argument lists break one per line with a trailing comma; short ones stay flat', () => {
  const args = Array.from({ length: 8 }, (_, i) => `argument_${i}: ${i}`).join(', ');
  const out = formatSource(`let x = attention(y, ${args}, inner: f(a, b))\n`);
  assert.is(out, lines(
    'let x = attention(',
    '  y,',
    ...Array.from({ length: 8 }, (_, i) => `  argument_${i}: ${i},`),
    '  inner: f(a, b),',
    ')',
  ));
  // Exactly 100 columns fits; 101 does not.
  const fits = `let x = g(${'a'.repeat(100 - 'let x = g()'.length)})\n`;
  assert.is(formatSource(fits), fits);
  assert.ok(formatSource(`let x = g(${'a'.repeat(101 - 'let x = g()'.length)})\n`).includes('(\n'));
  // A broken list loses nothing when formatted again flat (trailing comma dropped).
  assert.is(formatSource('let x = f(\n  a,\n  b,\n)\n'), 'let x = f(a, b)\n');
});

test('a one-element tuple keeps its comma (without it, it would be a parenthesized value)', () => {
  assert.is(formatSource('let x = ( a , )\nlet y = (a)\nlet z = (t: 1,)\n'), 'let x = (a,)\nlet y = (a)\nlet z = (t: 1)\n');
});

test('if/else chains, asserts, keywords and comparison operators', () => {
  const src = 'block f(x){if x>1{return x}else if not(x==0)and true{return 1}else{assert x<=0,"neg"\nreturn 0}}';
  assert.is(formatSource(src), lines(
    'block f(x) {',
    '  if x > 1 {',
    '    return x',
    '  } else if not (x == 0) and true {',
    '    return 1',
    '  } else {',
    '    assert x <= 0, "neg"',
    '    return 0',
    '  }',
    '}',
  ));
});

test('comments: own-line, end-of-line (aligned within a paragraph), inside lists, block comments', () => {
  const src = lines(
    '/* header',
    '   spans lines */   ',
    'import "std/dit.vdm" // the blocks',
    '',
    'model M { // model',
    '  // inputs',
    '  input x: video[b, c, t, h, w] // noisy',
    '  input first: image[b, c, h, w]',
    '  input s: timestep[b]     // step',
    '  z = conv(x, // input',
    '    /* kernel */ kernel: 3,',
    '    // own line',
    '    out: 4 // last',
    '  )',
    '  output y = z',
    '  // trailing',
    '}',
    '// end',
  );
  const out = formatSource(src);
  assert.is(out, lines(
    '/* header',
    '   spans lines */',
    'import "std/dit.vdm"  // the blocks',
    '',
    'model M {  // model',
    '  // inputs',
    '  input x     : video[b, c, t, h, w]  // noisy',
    '  input first : image[b, c, h, w]',
    '  input s     : timestep[b]           // step',
    '  z = conv(',
    '    x,       // input',
    '    /* kernel */ kernel: 3,',
    '    // own line',
    '    out: 4,  // last',
    '  )',
    '  output y = z',
    '  // trailing',
    '}',
    '// end',
  ));
  assert.is(formatSource(out), out);
});

test('comments in odd places are kept and the result is stable', () => {
  const odd = [
    'let x = a + // after plus\n  b\n',
    'let x = -/* neg */y\n',
    'let x = f(/* only */)\n',
    'let x = f(a /* before comma */, b)\n',
    'block f(x) { return x } // after block\n\n\n// detached\n',
    'diffusion { // d\n  predict epsilon // p\n  loss mse\n}\n',
    'let x = (a, b // tail\n)\n',
    'block f() { if a { x = 1 } // after if\nelse { x = 2 } }\n',
    'block f(\n  // first\n  a, /* glued */ b,\n) {}\n',
    'let x = f(a, /* own */\n  b)\n',
  ];
  for (const src of odd) {
    const out = formatSource(src);
    assert.equal(scanComments(out).map((c) => c.text), scanComments(src).map((c) => c.text), src);
    assert.is(formatSource(out), out, `not stable: ${JSON.stringify(src)}`);
    const [before, after] = [parses('a.vdm', src), parses('a.vdm', out)];
    assert.ok(before.ok && after.ok && astShape(after.ast) === astShape(before.ast), `meaning changed: ${src}`);
  }
});

test('diffusion entry values line up after the longest entry name', () => {
  const src = 'diffusion {\nschedule cosine(steps: 1000)\npredict v\nguidance cfg(scale: 4.0, dropout: 0.1)\n}\n';
  assert.is(formatSource(src), lines(
    'diffusion {',
    '  schedule cosine(steps: 1000)',
    '  predict  v',
    '  guidance cfg(scale: 4.0, dropout: 0.1)',
    '}',
  ));
});

test('every project spec that parses: idempotent, same AST, comments kept', () => {
  const files = ['specs', 'src/std', 'test/broken', 'test/diff', 'examples'].flatMap((d) => {
    const dir = path.join(root, d);
    return fs.existsSync(dir) ? vdmFiles(dir) : [];
  });
  let checked = 0;
  for (const file of files) {
    const src = fs.readFileSync(file, 'utf8');
    const before = parses(file, src);
    if (!before.ok) continue;
    const out = formatSource(src);
    checked++;
    // Already in canonical layout: idempotence, meaning and comments follow from out === src.
    if (out === src) continue;
    assert.is(formatSource(out), out, `not idempotent: ${file}`);
    const after = parses(file, out);
    assert.ok(after.ok, `formatted ${file} does not parse`);
    if (after.ok) assert.is(astShape(after.ast), astShape(before.ast), `meaning changed: ${file}`);
    const strip = (t: string) => t.replace(/[ \t]+$/gm, '');
    assert.equal(scanComments(out).map((c) => c.text), scanComments(src).map((c) => strip(c.text)), `comments: ${file}`);
    assert.not.match(out, /[ \t]$/m, `trailing whitespace: ${file}`);
  }
  assert.ok(checked >= 20, `only ${checked} specs checked`);
});

/** Deterministic pseudo-random numbers (the fuzz test must fail the same way every time). */
function lcg(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** Replaces every run of whitespace between tokens by another one (a line comment keeps its newline). */
function reflow(src: string, random: () => number): string {
  const choices = [' ', '\n', '  ', '\n\n', ' \n  ', '\t', '\n\n\n'];
  let out = '';
  let afterLineComment = false;
  for (let i = 0; i < src.length;) {
    let j = i + 1;
    if (src[i] === '"') {
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      j++;
    } else if (src.startsWith('//', i)) {
      j = src.indexOf('\n', i);
      if (j < 0) j = src.length;
    } else if (src.startsWith('/*', i)) {
      j = src.indexOf('*/', i + 2) + 2;
    } else if (/\s/.test(src[i])) {
      while (j < src.length && /\s/.test(src[j])) j++;
      const ws = choices[Math.floor(random() * choices.length)];
      out += afterLineComment && !ws.includes('\n') ? ws + '\n' : ws;
      afterLineComment = false;
      i = j;
      continue;
    }
    out += src.slice(i, j);
    afterLineComment = src.startsWith('//', i);
    i = j;
  }
  return out;
}

test('fuzz: the library with its whitespace shuffled formats idempotently, same AST, same comments', () => {
  const random = lcg(20261124);
  const files = ['specs', 'src/std', 'test/diff', 'examples'].flatMap((d) => (fs.existsSync(path.join(root, d)) ? vdmFiles(path.join(root, d)) : []));
  let variants = 0;
  for (const file of files) {
    const original = parses(file, fs.readFileSync(file, 'utf8'));
    if (!original.ok) continue;
    {
      const src = reflow(original.ast.source.text, random);
      const out = formatSource(src);
      assert.is(formatSource(out), out, `not idempotent: ${file} shuffled as ${JSON.stringify(src.slice(0, 200))}`);
      const after = parses(file, out);
      assert.ok(after.ok && astShape(after.ast) === astShape(original.ast), `meaning changed: ${file}`);
      assert.equal(scanComments(out).map((c) => c.text), scanComments(src).map((c) => c.text), `comments: ${file}`);
      variants++;
    }
  }
  assert.ok(variants >= 25, `${variants} variants`);
});

/** The graph without source positions, or the diagnostics (without places) when it does not check. */
function meaningOf(file: string): string {
  const r = checkFile(file);
  if (r.graph) return JSON.stringify(r.graph, (k, v) => (k === 'span' || k === 'file' ? undefined : v));
  const placeless = (t: string) => t.replace(/\S*\/\S*/g, '<path>');
  return JSON.stringify(r.diagnostics.map((d) => [d.code, placeless(d.message), placeless(d.hint ?? '')]));
}

test('formatting changes no graph (shapes, params, MACs, layer list)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-fmt-meaning-'));
  const random = lcg(7);
  try {
    let compared = 0;
    for (const d of ['specs', 'examples', 'test/diff']) {
      const from = path.join(root, d);
      if (!fs.existsSync(from)) continue;
      // Copy the whole folder so relative imports come along; shuffle its whitespace (so there is
      // always something to format), then format every file of the copy.
      const to = path.join(tmp, d);
      fs.cpSync(from, to, { recursive: true, filter: (f) => fs.statSync(f).isDirectory() || f.endsWith('.vdm') });
      for (const f of vdmFiles(to)) {
        const text = fs.readFileSync(f, 'utf8');
        if (parses(f, text).ok) fs.writeFileSync(f, formatSource(reflow(text, random)));
      }
      for (const f of vdmFiles(to)) {
        const rel = path.relative(tmp, f);
        assert.is(meaningOf(f), meaningOf(path.join(root, rel)), `meaning changed: ${rel}`);
        compared++;
      }
    }
    assert.ok(compared >= 20, `only ${compared} files compared`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
