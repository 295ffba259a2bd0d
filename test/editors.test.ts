// Editor support: the TextMate grammar is valid JSON, up to date with its generator, covers every
// keyword of the ohm grammar, and colours real lines as intended (checked with a small TextMate
// tokenizer below: begin/end regions, captures, includes; enough for this grammar).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import * as ohm from 'ohm-js';
import { GRAMMAR_PATH } from '../src/compiler/frontend/grammar.ts';
import { PRIMITIVES } from '../src/compiler/primitives/index.ts';
import { BUILTINS } from '../src/compiler/frontend/builtins.ts';
import { GRAMMAR_FILES, grammarText, stdBlockNames } from '../editors/build-grammar.ts';

const root = path.resolve(import.meta.dirname, '..');
const readJson = (rel: string) => JSON.parse(fs.readFileSync(path.join(root, rel), 'utf8'));

interface Rule {
  name?: string; match?: string; begin?: string; end?: string; include?: string;
  captures?: Record<string, Rule & { patterns?: Rule[] }>; beginCaptures?: Rule['captures']; endCaptures?: Rule['captures'];
  patterns?: Rule[];
}
interface Grammar { scopeName: string; patterns: Rule[]; repository: Record<string, Rule> }

const grammar: Grammar = readJson('editors/vdm.tmLanguage.json');

/** Keywords read from the ohm grammar's own `keyword` rule (its source text, as ohm parsed it). */
function ohmKeywords(): string[] {
  const g = ohm.grammar(fs.readFileSync(GRAMMAR_PATH, 'utf8')) as unknown as { rules: Record<string, { body: { source: { contents: string } } }> };
  const body = g.rules.keyword?.body.source.contents;
  assert.ok(body, 'the ohm grammar has a keyword rule');
  return [...body.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

const regexCache = new Map<string, RegExp>();
const re = (src: string) => {
  let r = regexCache.get(src);
  if (!r) regexCache.set(src, (r = new RegExp(src, 'gd')));
  return r;
};

function expand(rules: Rule[], out: Rule[] = [], seen = new Set<Rule>()): Rule[] {
  for (const r of rules) {
    if (r.include) {
      const target = r.include === '$self' ? { patterns: grammar.patterns } : grammar.repository[r.include.slice(1)];
      assert.ok(target, `include ${r.include} resolves`);
      if (!seen.has(target)) { seen.add(target); expand(target.match || target.begin ? [target] : target.patterns ?? [], out, seen); seen.delete(target); }
    } else if (r.match || r.begin) out.push(r);
    else if (r.patterns) expand(r.patterns, out, seen);
  }
  return out;
}

type Stack = { rule: Rule; scopes: string[] }[];

/** Scopes of every character of `text` (each an array, outermost first); regions span lines. */
function tokenize(text: string): string[][] {
  const stack: Stack = [{ rule: { patterns: grammar.patterns }, scopes: [] }];
  return text.split('\n').flatMap((line) => [...tokenizeLine(line, stack), []]);
}

function tokenizeLine(line: string, stack: Stack): string[][] {
  const scopes: string[][] = Array.from({ length: line.length }, () => []);
  const paint = (from: number, to: number, s: string[]) => { for (let i = from; i < to; i++) scopes[i] = [...s]; };
  const paintCaptures = (m: RegExpExecArray, caps: Rule['captures'], base: string[]) => {
    if (!caps) return;
    for (const [k, cap] of Object.entries(caps)) {
      const at = m.indices?.[Number(k)];
      if (!at) continue;
      const s = cap.name ? [...base, cap.name] : base;
      paint(at[0], at[1], s);
      // Captures with patterns: the first pattern matching the whole capture colours it.
      for (const p of expand(cap.patterns ?? [])) {
        const r = re(`^(?:${p.match})$`);
        r.lastIndex = 0;
        if (p.match && p.name && r.test(line.slice(at[0], at[1]))) { paint(at[0], at[1], [...s, p.name]); break; }
      }
    }
  };
  let pos = 0;
  while (pos < line.length) {
    const frame = stack[stack.length - 1];
    let best: { m: RegExpExecArray; rule: Rule | null } | null = null;
    if (frame.rule.end) {
      const r = re(frame.rule.end);
      r.lastIndex = pos;
      const m = r.exec(line);
      if (m) best = { m, rule: null };
    }
    for (const rule of expand(frame.rule.patterns ?? [])) {
      const r = re((rule.match ?? rule.begin)!);
      r.lastIndex = pos;
      const m = r.exec(line);
      if (m && (!best || m.index < best.m.index)) best = { m, rule };
    }
    if (!best || (best.m[0] === '' && best.m.index === pos && !best.rule?.begin)) { paint(pos, line.length, frame.scopes); break; }
    const { m, rule } = best;
    paint(pos, m.index, frame.scopes);
    const end = m.index + m[0].length;
    if (!rule) {
      paint(m.index, end, frame.scopes);
      paintCaptures(m, frame.rule.endCaptures, frame.scopes);
      stack.pop();
    } else if (rule.match) {
      const s = rule.name ? [...frame.scopes, rule.name] : frame.scopes;
      paint(m.index, end, s);
      paintCaptures(m, rule.captures, s);
    } else {
      const s = rule.name ? [...frame.scopes, rule.name] : frame.scopes;
      paint(m.index, end, s);
      paintCaptures(m, rule.beginCaptures, s);
      stack.push({ rule, scopes: s });
    }
    pos = Math.max(end, pos + (m[0].length ? 0 : 1));
  }
  return scopes;
}

/** Innermost scope of the first occurrence of `word` in `text`. */
function scopeOf(text: string, word: string): string {
  const at = text.indexOf(word);
  assert.ok(at >= 0, `${word} in ${text}`);
  const s = tokenize(text)[at];
  return s[s.length - 1] ?? '';
}

test('the grammar, its VS Code copy and the extension manifest are valid JSON and up to date', () => {
  const text = grammarText();
  for (const file of GRAMMAR_FILES) {
    assert.is(fs.readFileSync(file, 'utf8'), text, `${path.relative(root, file)} is stale: run \`npx tsx editors/build-grammar.ts\``);
  }
  const manifest = readJson('editors/vscode/package.json');
  readJson('editors/vscode/language-configuration.json');
  const [language] = manifest.contributes.languages;
  const [contributed] = manifest.contributes.grammars;
  assert.equal(language.extensions, ['.vdm']);
  assert.is(contributed.language, language.id);
  assert.is(contributed.scopeName, grammar.scopeName);
  assert.ok(fs.existsSync(path.join(root, 'editors/vscode', contributed.path)));
  assert.ok(fs.existsSync(path.join(root, 'editors/vscode', language.configuration)));
});

test('every regex of the grammar compiles', () => {
  const walk = (r: Rule) => {
    for (const src of [r.match, r.begin, r.end]) if (src) re(src);
    for (const p of r.patterns ?? []) walk(p);
    for (const caps of [r.captures, r.beginCaptures, r.endCaptures]) for (const c of Object.values(caps ?? {})) walk(c);
  };
  grammar.patterns.forEach(walk);
  Object.values(grammar.repository).forEach(walk);
});

test('every keyword of the ohm grammar is highlighted as a keyword, and only as a whole word', () => {
  const keywords = ohmKeywords();
  assert.ok(keywords.length >= 20, `found ${keywords.length} keywords`);
  for (const k of keywords) {
    const scope = scopeOf(`${k} x`, k);
    assert.match(scope, /^(keyword|storage\.type|constant\.language)\./, `keyword '${k}' got '${scope}'`);
    assert.not.match(scopeOf(`${k}x = 1`, k), /^(keyword|storage|constant\.language)/, `'${k}x' is not a keyword`);
  }
});

test('primitives, compile-time functions and standard-library blocks are support.function when called', () => {
  const names = [...PRIMITIVES.keys(), ...BUILTINS.keys(), ...stdBlockNames()];
  assert.ok(names.length > 60);
  for (const n of names) assert.match(scopeOf(`  y = ${n}(x)`, n), /^support\.function\./, n);
  assert.is(scopeOf('  y = my_block(x)', 'my_block'), 'entity.name.function.call.vdm');
  // Without a call, a name is just a name.
  assert.is(scopeOf('  y = linear', 'linear'), '');
});

test('a realistic spec line by line: comments, strings, numbers, operators, as-names, axis keys', () => {
  const line = '  z = attention(y, over: (t, h), window: (t: 2, h: 8), heads: 6) as attn  // windowed';
  assert.is(scopeOf(line, 'attention'), 'support.function.primitive.vdm');
  assert.is(scopeOf(line, 'over'), 'variable.parameter.vdm');
  assert.is(scopeOf(line, 't: 2'), 'entity.other.attribute-name.axis.vdm');
  assert.is(scopeOf(line, 'h: 8'), 'entity.other.attribute-name.axis.vdm');
  assert.is(scopeOf(line, '6)'), 'constant.numeric.vdm');
  assert.is(scopeOf(line, 'as attn'), 'keyword.other.as.vdm');
  assert.is(scopeOf(line, 'attn '), 'entity.name.namespace.vdm');
  assert.is(scopeOf(line, 'windowed'), 'comment.line.double-slash.vdm');
  assert.is(scopeOf(line, '='), 'keyword.operator.vdm');

  const decl = '  input y : label[b, c=4](classes: 1000, null: true)';
  assert.is(scopeOf(decl, 'input'), 'storage.type.vdm');
  assert.is(scopeOf(decl, 'y '), 'variable.other.definition.vdm');
  assert.is(scopeOf(decl, 'label'), 'support.type.input-kind.vdm');
  assert.is(scopeOf(decl, 'c='), 'entity.other.attribute-name.axis.vdm');
  assert.is(scopeOf(decl, 'classes'), 'variable.parameter.vdm');
  assert.is(scopeOf(decl, 'true'), 'constant.language.boolean.vdm');

  assert.is(scopeOf('  z: [b, c=d, t] = f(x)', 'c=d'), 'entity.other.attribute-name.axis.vdm');
  assert.is(scopeOf('block dit_block(x, cond) {', 'dit_block'), 'entity.name.function.vdm');
  assert.is(scopeOf('model DiT_S_2 {', 'DiT_S_2'), 'entity.name.type.vdm');
  assert.is(scopeOf('  assert x > 0, "need \\"x\\""', 'need'), 'string.quoted.double.vdm');
  assert.is(scopeOf('  assert x > 0, "need \\"x\\""', '\\"'), 'constant.character.escape.vdm');
  assert.is(scopeOf('let e = 1e-4 /* small */ ** 2', '1e-4'), 'constant.numeric.vdm');
  assert.is(scopeOf('let e = 1e-4 /* small */ ** 2', 'small'), 'comment.block.vdm');
  assert.is(scopeOf('let e = 1e-4 /* small */ ** 2', '**'), 'keyword.operator.vdm');
  assert.is(scopeOf('  for i in 0..depth as blocks {', '..'), 'keyword.operator.vdm');

  const diffusion = 'diffusion {\n  schedule cosine(steps: 1000)\n  predict  v\n}\nlet predict = 1';
  assert.is(scopeOf(diffusion, 'diffusion'), 'storage.type.diffusion.vdm');
  assert.is(scopeOf(diffusion, 'schedule'), 'keyword.other.diffusion-entry.vdm');
  assert.is(scopeOf(diffusion, 'predict'), 'keyword.other.diffusion-entry.vdm');
  assert.is(scopeOf(diffusion, 'steps'), 'variable.parameter.vdm');
  assert.is(scopeOf(diffusion.slice(diffusion.indexOf('}')), 'predict'), '', 'outside the section an entry name is a plain name');
  // A block comment spanning lines stays a comment.
  assert.is(scopeOf('/* a\n b */ let x = 1', 'b */'), 'comment.block.vdm');
  assert.is(scopeOf('/* a\n b */ let x = 1', 'let'), 'storage.type.let.vdm');
});

test.run();
