// Builds the TextMate grammar for .vdm (editors/vdm.tmLanguage.json and the copy the VS Code
// extension ships in editors/vscode/syntaxes/) from the compiler's own lists: the keywords of the
// ohm grammar's `keyword` rule, the primitive, compile-time function and input-kind registries, and
// the block names of the standard library. Run `npx tsx editors/build-grammar.ts` after changing any of them;
// test/editors.test.ts fails while the checked-in files are out of date.
// Regexes stay within what both Oniguruma (editors) and JavaScript (the test) understand.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GRAMMAR_PATH } from '../src/compiler/frontend/grammar.ts';
import { PRIMITIVES } from '../src/compiler/primitives/index.ts';
import { BUILTINS } from '../src/compiler/frontend/builtins.ts';
import { INPUT_KINDS } from '../src/compiler/frontend/input-kinds.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const GRAMMAR_FILES = [path.join(root, 'editors/vdm.tmLanguage.json'), path.join(root, 'editors/vscode/syntaxes/vdm.tmLanguage.json')];

/** The words of the grammar's `keyword` rule, in order. */
export function grammarKeywords(ohmText = fs.readFileSync(GRAMMAR_PATH, 'utf8')): string[] {
  const rule = /^\s*keyword\s*=([\s\S]*?)^\s*\w+\s*=/m.exec(ohmText);
  if (!rule) throw new Error('no `keyword` rule in the grammar');
  return [...rule[1].matchAll(/"([A-Za-z_]\w*)"/g)].map((m) => m[1]);
}

/** Names of the blocks defined in the standard library. */
export function stdBlockNames(): string[] {
  const dir = path.join(root, 'src/std');
  const names = new Set<string>();
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.vdm')).sort()) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of text.matchAll(/^\s*block\s+([A-Za-z_]\w*)\(/gm)) names.add(m[1]);
  }
  return [...names].sort();
}

// How each keyword is coloured; a keyword missing here is still highlighted, as keyword.other.
const KEYWORD_SCOPES: Record<string, string> = {
  import: 'keyword.control.import.vdm',
  block: 'storage.type.block.vdm', model: 'storage.type.model.vdm', diffusion: 'storage.type.diffusion.vdm',
  dims: 'storage.type.dims.vdm', input: 'storage.type.input.vdm', output: 'storage.type.output.vdm', let: 'storage.type.let.vdm',
  for: 'keyword.control.vdm', in: 'keyword.control.vdm', repeat: 'keyword.control.vdm', if: 'keyword.control.vdm',
  then: 'keyword.control.vdm', else: 'keyword.control.vdm', assert: 'keyword.control.vdm', return: 'keyword.control.vdm',
  as: 'keyword.other.as.vdm',
  and: 'keyword.operator.logical.vdm', or: 'keyword.operator.logical.vdm', not: 'keyword.operator.logical.vdm',
  true: 'constant.language.boolean.vdm', false: 'constant.language.boolean.vdm',
};

const DIFFUSION_ENTRIES = ['schedule', 'predict', 'loss', 'sampler', 'guidance', 'timesteps'];
const ID = '[A-Za-z_][A-Za-z0-9_]*';
const words = (ws: readonly string[]) => `\\b(?:${ws.join('|')})\\b`;

export function buildGrammar(): object {
  const keywords = grammarKeywords();
  const byScope = new Map<string, string[]>();
  for (const k of keywords) {
    const scope = KEYWORD_SCOPES[k] ?? 'keyword.other.vdm';
    byScope.set(scope, [...(byScope.get(scope) ?? []), k]);
  }
  const primitives = [...PRIMITIVES.keys()].sort();
  const builtins = [...BUILTINS.keys()].sort();
  const std = stdBlockNames().filter((n) => !PRIMITIVES.has(n) && !BUILTINS.has(n));
  const axisName = 'entity.other.attribute-name.axis.vdm';
  return {
    name: 'vdm',
    scopeName: 'source.vdm',
    fileTypes: ['vdm'],
    patterns: [
      { include: '#comments' },
      { include: '#diffusion' },
      { include: '#block-def' },
      { include: '#model-def' },
      { include: '#declaration' },
      { include: '#annotation' },
      { include: '#expression' },
    ],
    repository: {
      comments: {
        patterns: [
          { name: 'comment.line.double-slash.vdm', match: '//.*$' },
          { name: 'comment.block.vdm', begin: '/\\*', end: '\\*/' },
        ],
      },
      strings: {
        name: 'string.quoted.double.vdm', begin: '"', end: '"',
        patterns: [{ name: 'constant.character.escape.vdm', match: '\\\\.' }],
      },
      numbers: { name: 'constant.numeric.vdm', match: '\\b[0-9]+(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\\b' },
      keywords: {
        patterns: [
          // `as name`: the name becomes the parameter path segment.
          { match: `\\b(as)\\s+(${ID})`, captures: { 1: { name: 'keyword.other.as.vdm' }, 2: { name: 'entity.name.namespace.vdm' } } },
          ...[...byScope].map(([scope, ws]) => ({ name: scope, match: words(ws) })),
        ],
      },
      'block-def': {
        match: `\\b(block)\\s+(${ID})(?=\\()`,
        captures: { 1: { name: 'storage.type.block.vdm' }, 2: { name: 'entity.name.function.vdm' } },
      },
      'model-def': {
        match: `\\b(model)\\s+(${ID})`,
        captures: { 1: { name: 'storage.type.model.vdm' }, 2: { name: 'entity.name.type.vdm' } },
      },
      // `input x : video[b, c=4](classes: 10)` and `output y : video[...] = ...`
      declaration: {
        begin: `\\b(input|output)\\s+(${ID})\\s*(:)\\s*(${ID})?(\\[)`,
        beginCaptures: {
          1: { name: 'storage.type.vdm' }, 2: { name: 'variable.other.definition.vdm' },
          3: { name: 'punctuation.separator.colon.vdm' }, 4: { patterns: [{ include: '#input-kind' }] },
          5: { name: 'punctuation.section.brackets.begin.vdm' },
        },
        end: '\\]', endCaptures: { 0: { name: 'punctuation.section.brackets.end.vdm' } },
        patterns: [{ include: '#axis-decls' }],
      },
      'input-kind': { patterns: [{ name: 'support.type.input-kind.vdm', match: words(Object.keys(INPUT_KINDS)) }, { name: 'entity.name.type.vdm', match: ID }] },
      // `z: [b, c=d, t, h=h/2] = ...`
      annotation: {
        begin: `(${ID})\\s*(:)\\s*(\\[)`,
        beginCaptures: { 1: { name: 'variable.other.vdm' }, 2: { name: 'punctuation.separator.colon.vdm' }, 3: { name: 'punctuation.section.brackets.begin.vdm' } },
        end: '\\]', endCaptures: { 0: { name: 'punctuation.section.brackets.end.vdm' } },
        patterns: [{ include: '#axis-decls' }],
      },
      'axis-decls': {
        patterns: [
          { include: '#comments' },
          { match: `(?<=[\\[,])\\s*(${ID})`, captures: { 1: { name: axisName } } },
          { include: '#expression' },
        ],
      },
      diffusion: {
        begin: '\\b(diffusion)\\s*(\\{)',
        beginCaptures: { 1: { name: 'storage.type.diffusion.vdm' }, 2: { name: 'punctuation.section.braces.begin.vdm' } },
        end: '\\}', endCaptures: { 0: { name: 'punctuation.section.braces.end.vdm' } },
        patterns: [
          { include: '#comments' },
          { match: `^\\s*(${words(DIFFUSION_ENTRIES)})`, captures: { 1: { name: 'keyword.other.diffusion-entry.vdm' } } },
          { include: '#expression' },
        ],
      },
      expression: {
        patterns: [
          { include: '#comments' },
          { include: '#strings' },
          { include: '#numbers' },
          { include: '#keywords' },
          { include: '#call' },
          { include: '#options' },
          { include: '#tuple' },
          { include: '#index' },
          { name: 'keyword.operator.vdm', match: '\\*\\*|==|!=|<=|>=|\\.\\.|[-+*/%<>=]' },
          { name: 'punctuation.separator.comma.vdm', match: ',' },
          { name: 'punctuation.separator.colon.vdm', match: ':' },
        ],
      },
      // A call: the "(" touches the name. Primitives, compile-time functions and standard-library
      // blocks are support.function; other blocks entity.name.function.
      call: {
        begin: `\\b(${ID})(\\()`,
        beginCaptures: { 1: { patterns: [{ include: '#function-name' }] }, 2: { name: 'punctuation.section.parens.begin.vdm' } },
        end: '\\)', endCaptures: { 0: { name: 'punctuation.section.parens.end.vdm' } },
        patterns: [{ include: '#named-arg' }, { include: '#expression' }],
      },
      'function-name': {
        patterns: [
          { name: 'support.function.primitive.vdm', match: words(primitives) },
          { name: 'support.function.builtin.vdm', match: words(builtins) },
          { name: 'support.function.std.vdm', match: words(std) },
          { name: 'entity.name.function.call.vdm', match: ID },
        ],
      },
      'named-arg': {
        match: `\\b(${ID})\\s*(:)`,
        captures: { 1: { name: 'variable.parameter.vdm' }, 2: { name: 'punctuation.separator.colon.vdm' } },
      },
      // Input options right after the axes: `label[b](classes: 10)`.
      options: {
        begin: '(?<=\\])(\\()',
        beginCaptures: { 1: { name: 'punctuation.section.parens.begin.vdm' } },
        end: '\\)', endCaptures: { 0: { name: 'punctuation.section.parens.end.vdm' } },
        patterns: [{ include: '#named-arg' }, { include: '#expression' }],
      },
      // Tuples and parentheses; in a named tuple the keys are axis names: `(t: 1, h: 2, w: 2)`.
      tuple: {
        begin: '\\(',
        beginCaptures: { 0: { name: 'punctuation.section.parens.begin.vdm' } },
        end: '\\)', endCaptures: { 0: { name: 'punctuation.section.parens.end.vdm' } },
        patterns: [
          { match: `\\b(${ID})\\s*(:)`, captures: { 1: { name: axisName }, 2: { name: 'punctuation.separator.colon.vdm' } } },
          { include: '#expression' },
        ],
      },
      index: {
        begin: '\\[',
        beginCaptures: { 0: { name: 'punctuation.section.brackets.begin.vdm' } },
        end: '\\]', endCaptures: { 0: { name: 'punctuation.section.brackets.end.vdm' } },
        patterns: [{ include: '#expression' }],
      },
    },
  };
}

export const grammarText = (): string => JSON.stringify(buildGrammar(), null, 2) + '\n';

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = grammarText();
  for (const file of GRAMMAR_FILES) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
