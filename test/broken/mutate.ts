// Token-level mutations of .vdm sources for the checker's fuzz test. Mutants stay close to real
// specs (most tokens survive), so they reach deep into elaboration instead of stopping at the parser.

/** The seeded generator of the reference evaluation: the same seed replays the same mutants. */
export { prng } from '../../src/compiler/reference/evaluate.ts';

export interface Token { text: string; kind: 'space' | 'comment' | 'string' | 'number' | 'ident' | 'punct' }

const LEXEME = new RegExp([
  '(?<space>\\s+)',
  '(?<comment>//[^\\n]*|/\\*[\\s\\S]*?\\*/)',
  '(?<string>"(?:\\\\.|[^"\\\\\\n])*"?)',
  '(?<number>\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)',
  '(?<ident>[A-Za-z_][A-Za-z0-9_]*)',
  '(?<punct>\\.\\.|\\*\\*|==|!=|<=|>=|[\\s\\S])',
].join('|'), 'gy');

/** Splits a source into tokens whose texts concatenate back to the source exactly. */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  LEXEME.lastIndex = 0;
  for (let m = LEXEME.exec(source); m; m = LEXEME.exec(source)) {
    const kind = Object.entries(m.groups!).find(([, v]) => v !== undefined)![0] as Token['kind'];
    tokens.push({ text: m[0], kind });
  }
  return tokens;
}

const NUMBERS = ['0', '-1', '1', '2', '3', '7', '1000000000', '2147483648', '1099511627776', '1e300', '0.5', '2.5', '1e-9', '99999', '2 ** 40'];
const NOISE = ['(', ')', '[', ']', '{', '}', ',', ':', '=', '"', '/*', '*/', '//', '..', '-', '*', '**', '@', '#', '\\', '\n', ' ', 'é', '\u0000', 'if', 'repeat', 'return', 'model', 'block'];

type Mutation = (tokens: Token[], rand: () => number) => string;

const pick = <T>(xs: T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)];
const solid = (tokens: Token[]) => tokens.map((t, i) => i).filter((i) => tokens[i].kind !== 'space');

const MUTATIONS: Record<string, Mutation> = {
  delete(tokens, rand) {
    const i = pick(solid(tokens), rand);
    tokens[i] = { text: '', kind: 'space' };
    return `delete token ${i}`;
  },
  duplicate(tokens, rand) {
    const i = pick(solid(tokens), rand);
    tokens.splice(i, 0, { ...tokens[i] }, { text: ' ', kind: 'space' });
    return `duplicate token ${i}`;
  },
  swap(tokens, rand) {
    const ids = solid(tokens);
    const i = pick(ids, rand), j = pick(ids, rand);
    [tokens[i], tokens[j]] = [tokens[j], tokens[i]];
    return `swap tokens ${i} and ${j}`;
  },
  number(tokens, rand) {
    const ids = tokens.map((t, i) => i).filter((i) => tokens[i].kind === 'number');
    if (ids.length === 0) return 'no number to change';
    const i = pick(ids, rand);
    tokens[i] = { text: pick(NUMBERS, rand), kind: 'number' };
    return `number ${i} -> ${tokens[i].text}`;
  },
  identifier(tokens, rand) {
    const ids = tokens.map((t, i) => i).filter((i) => tokens[i].kind === 'ident');
    if (ids.length === 0) return 'no identifier to change';
    const i = pick(ids, rand);
    tokens[i] = { ...tokens[pick(ids, rand)] };
    return `identifier ${i} -> ${tokens[i].text}`;
  },
  cut(tokens, rand) {
    const i = Math.floor(rand() * tokens.length);
    tokens.length = i;
    return `cut at token ${i}`;
  },
  insert(tokens, rand) {
    const i = Math.floor(rand() * (tokens.length + 1));
    const text = pick(NOISE, rand);
    tokens.splice(i, 0, { text, kind: 'punct' });
    return `insert ${JSON.stringify(text)} at token ${i}`;
  },
};

// Mutations that keep the syntax valid reach elaboration, where the interesting failures live;
// the others mostly exercise the parser. Weights keep both kinds frequent.
const OPERATORS = ['+', '-', '*', '/', '%', '**', '==', '<', '..'];
const STRINGS = ['""', '"same"', '"valid"', '"avg"', '"max"', '"nearest"', '"linear"', '"normal"', '"zeros"', '"\\"'];

Object.assign(MUTATIONS, {
  operator(tokens: Token[], rand: () => number) {
    const ids = tokens.map((t, i) => i).filter((i) => OPERATORS.includes(tokens[i].text));
    if (ids.length === 0) return 'no operator to change';
    const i = pick(ids, rand);
    tokens[i] = { text: pick(OPERATORS, rand), kind: 'punct' };
    return `operator ${i} -> ${tokens[i].text}`;
  },
  literal(tokens: Token[], rand: () => number) {
    const ids = tokens.map((t, i) => i).filter((i) => tokens[i].kind === 'string' || /^(true|false)$/.test(tokens[i].text));
    if (ids.length === 0) return 'no literal to change';
    const i = pick(ids, rand);
    tokens[i] = { text: pick([...STRINGS, 'true', 'false', '0'], rand), kind: 'string' };
    return `literal ${i} -> ${tokens[i].text}`;
  },
} satisfies Record<string, Mutation>);

const WEIGHTS: Record<string, number> = {
  delete: 2, duplicate: 1, swap: 1, cut: 1, insert: 2, number: 5, identifier: 5, operator: 2, literal: 2, line: 4,
};

/** Whole-line edits (delete, duplicate or move a statement) usually keep the syntax valid. */
function lineMutation(source: string, rand: () => number): { source: string; step: string } {
  const lines = source.split('\n');
  const i = Math.floor(rand() * lines.length);
  const j = Math.floor(rand() * lines.length);
  const kind = pick(['delete', 'duplicate', 'move'], rand);
  if (kind === 'delete') lines.splice(i, 1);
  else if (kind === 'duplicate') lines.splice(j, 0, lines[i]);
  else lines.splice(j, 0, ...lines.splice(i, 1));
  return { source: lines.join('\n'), step: `line ${kind} ${i + 1}${kind === 'delete' ? '' : ` -> ${j + 1}`}` };
}

function pickWeighted(rand: () => number): string {
  const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
  let r = rand() * total;
  for (const [name, w] of Object.entries(WEIGHTS)) if ((r -= w) < 0) return name;
  return 'number';
}

/** Applies 1-3 random mutations; returns the mutant and a description for failure reports. */
export function mutate(source: string, rand: () => number): { source: string; steps: string[] } {
  const steps: string[] = [];
  const count = 1 + Math.floor(rand() * 3);
  let text = source;
  for (let k = 0; k < count && text.length > 0; k++) {
    const name = pickWeighted(rand);
    if (name === 'line') {
      const m = lineMutation(text, rand);
      text = m.source;
      steps.push(m.step);
      continue;
    }
    const tokens = tokenize(text);
    steps.push(MUTATIONS[name](tokens, rand));
    text = tokens.map((t) => t.text).join('');
  }
  return { source: text, steps };
}
