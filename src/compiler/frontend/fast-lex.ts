// The lexer of fast-parse.ts: one linear pass over the text into tokens (names, keywords,
// numbers, strings, operators), comments and whitespace skipped as grammar/vdm.ohm skips them.

export const KEYWORDS = new Set(['import', 'block', 'model', 'diffusion', 'dims', 'input', 'output', 'let', 'for', 'in', 'repeat', 'as',
  'if', 'then', 'else', 'assert', 'return', 'and', 'or', 'not', 'true', 'false']);
/** Keywords an expression may start with: ohm tries each on a name that begins with it. */
export const EXPRESSION_WORDS = ['if', 'not', 'true', 'false'];
const OPERATORS = ['**', '==', '!=', '<=', '>=', '..', '+', '-', '*', '/', '%', '<', '>', '=', '(', ')', '[', ']', '{', '}', ',', ':'];

export type Kind = 'id' | 'kw' | 'num' | 'str' | 'op' | 'eof' | 'bad';
export interface Token { readonly kind: Kind; readonly text: string; readonly start: number; readonly end: number }


const isAsciiLetter = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
/** ohm's letter is any Unicode letter; digits are 0-9 only. */
const isIdentStart = (c: string) => isAsciiLetter(c) || c === '_' || (c > '\x7f' && /\p{L}/u.test(c));
const isIdentPart = (c: string) => isIdentStart(c) || (c >= '0' && c <= '9');
const isDigit = (code: number) => code >= 48 && code <= 57;

/** Tokens of the text; comments and every character up to U+0020 are space, as in ohm. */
export function lex(text: string): Token[] {
  const tokens: Token[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const code = text.charCodeAt(i);
    if (code <= 32) {
      i++;
      continue;
    }
    if (code === 47 /* / */ && text.charCodeAt(i + 1) === 47) {
      const nl = text.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl;
      continue;
    }
    if (code === 47 && text.charCodeAt(i + 1) === 42 /* * */) {
      const close = text.indexOf('*/', i + 2);
      if (close >= 0) {
        i = close + 2;
        continue;
      }
      // Unterminated: ohm sees a "/" here, which nothing accepts.
    }
    const start = i;
    if (isDigit(code)) {
      while (i < n && isDigit(text.charCodeAt(i))) i++;
      if (text[i] === '.' && isDigit(text.charCodeAt(i + 1))) {
        i++;
        while (i < n && isDigit(text.charCodeAt(i))) i++;
      }
      if (text[i] === 'e' || text[i] === 'E') {
        let j = i + 1;
        if (text[j] === '+' || text[j] === '-') j++;
        if (isDigit(text.charCodeAt(j))) {
          i = j;
          while (i < n && isDigit(text.charCodeAt(i))) i++;
        }
      }
      tokens.push({ kind: 'num', text: text.slice(start, i), start, end: i });
      continue;
    }
    const ch = String.fromCodePoint(text.codePointAt(i)!);
    if (isIdentStart(ch)) {
      i += ch.length;
      while (i < n) {
        const c = String.fromCodePoint(text.codePointAt(i)!);
        if (!isIdentPart(c)) break;
        i += c.length;
      }
      const word = text.slice(start, i);
      tokens.push({ kind: KEYWORDS.has(word) ? 'kw' : 'id', text: word, start, end: i });
      continue;
    }
    if (code === 34 /* " */) {
      i++;
      let closed = false;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 92 /* \ */) {
          if (i + 1 >= n) break;
          i += text.codePointAt(i + 1)! > 0xffff ? 3 : 2;
          continue;
        }
        if (c === 10) break;
        i++;
        if (c === 34) {
          closed = true;
          break;
        }
      }
      if (!closed) {
        tokens.push({ kind: 'bad', text: '"', start, end: start + 1 });
        break;
      }
      tokens.push({ kind: 'str', text: text.slice(start, i), start, end: i });
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (!op) {
      tokens.push({ kind: 'bad', text: ch, start, end: start + ch.length });
      break;
    }
    i += op.length;
    tokens.push({ kind: 'op', text: op, start, end: i });
  }
  tokens.push({ kind: 'eof', text: '', start: n, end: n });
  return tokens;
}
