// Parsing costs more than reading a parsed tree back, and every spec re-reads the same library
// files. Parsed trees are therefore kept, in memory and as JSON in the user's own cache folder
// (user-cache.ts), keyed by a hash of the tool (the version of vdm, the grammar, ohm, and the
// parser's own sources) and of the file text: a changed file, grammar or parser simply misses.
// An entry read back is checked twice: its digest (user-cache.ts), then every name, number, string
// and operator in the tree against the text its span points at, so an edited entry is ignored
// and rewritten. Files with syntax errors are parsed every time (rare, and cheap to redo).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileAst, Item, ParseResult } from './ast.ts';
import { reviveItems, serializeItems } from './ast-json.ts';
import { grammarKey } from './grammar.ts';
import { parseSource, unescapeString } from './parse.ts';
import type { SourceFile, Span } from '../ir/source.ts';
import { pruneEntries, readEntry, writeEntry } from './user-cache.ts';

/** Bumped whenever the AST's shape or its encoding changes. */
const FORMAT = 3;
const SUB = 'ast';
const memory = new Map<string, string>();
/** Trees kept in memory at most (a long-lived process checking many texts would grow without end). */
const MEMORY_ENTRIES = 256;

function remember(key: string, json: string): void {
  memory.delete(key);
  memory.set(key, json);
  if (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value!);
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** Sources whose change changes the trees the parser builds. */
const PARSER_SOURCES = ['parse.ts', 'fast-parse.ts', 'fast-lex.ts', 'ast.ts', 'ast-json.ts', 'ast-cache.ts'];

let toolKey: string | null = null;

/** The version of vdm and a hash of the grammar, ohm and the parser's sources. */
function tool(): string {
  if (toolKey) return toolKey;
  const h = crypto.createHash('sha256').update(`${FORMAT}\0${grammarKey()}\0`);
  try {
    h.update(JSON.parse(fs.readFileSync(path.resolve(here, '../../../package.json'), 'utf8')).version ?? '');
  } catch {
    h.update('unknown version');
  }
  // Under dist/ the sources are the compiled .js files.
  for (const f of PARSER_SOURCES) {
    const file = [f, f.replace(/\.ts$/, '.js')].map((n) => path.join(here, n)).find((n) => fs.existsSync(n));
    h.update('\0').update(file ? fs.readFileSync(file) : `missing ${f}`);
  }
  toolKey = h.digest('hex');
  return toolKey;
}

/** The cache key of a file's text (tests find an entry by it). */
export function keyOf(text: string): string {
  return crypto.createHash('sha256').update(`${tool()}\0`).update(text).digest('hex').slice(0, 40);
}

/** At most this many entries stay on disk (mutated or edited specs would pile up otherwise). */
const DISK_ENTRIES = 300;
const DISK_KEEP = 200;

/**
 * Whether every leaf of the tree agrees with the text its span covers: names, numbers, strings,
 * booleans, operators and import paths. A tree revived from an edited entry fails here.
 */
export function agreesWithSource(items: readonly Item[], source: SourceFile): boolean {
  const text = source.text;
  const slice = (s: Span) => text.slice(s.start, s.end);
  const isSpan = (s: unknown): s is Span => typeof s === 'object' && s !== null && typeof (s as Span).start === 'number'
    && typeof (s as Span).end === 'number' && (s as Span).start >= 0 && (s as Span).start <= (s as Span).end && (s as Span).end <= text.length;
  const stack: unknown[] = [...items];
  while (stack.length) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    if (Array.isArray(node)) {
      stack.push(...node);
      continue;
    }
    const o = node as Record<string, unknown>;
    for (const k of ['span', 'pathSpan', 'opSpan']) if (k in o && !isSpan(o[k])) return false;
    const s = o.span as Span | undefined;
    switch (o.type) {
      case 'number': if (!s || Number(slice(s)) !== o.value) return false; break;
      case 'ident': if (!s || slice(s) !== o.name) return false; break;
      case 'bool': if (!s || (slice(s) === 'true') !== o.value) return false; break;
      case 'string': if (!s || unescapeString(slice(s).slice(1, -1)) !== o.value) return false; break;
      case 'binary': if (slice(o.opSpan as Span) !== o.op) return false; break;
      case 'import': if (unescapeString(slice(o.pathSpan as Span).slice(1, -1)) !== o.path) return false; break;
      default:
        // A name: `{ name, span }` with a string name.
        if (o.type === undefined && typeof o.name === 'string' && s && slice(s) !== o.name) return false;
    }
    for (const [k, v] of Object.entries(o)) if (k !== 'span' && k !== 'pathSpan' && k !== 'opSpan' && typeof v === 'object') stack.push(v);
  }
  return true;
}

function revive(json: string, source: SourceFile): Item[] | null {
  try {
    const items = reviveItems(json, source);
    return Array.isArray(items) && agreesWithSource(items, source) ? items : null;
  } catch {
    return null;
  }
}

/** Forgets the trees kept in memory (tests: the next parse reads the disk cache). */
export function forgetParsedTrees(): void {
  memory.clear();
}

export function parseCached(source: SourceFile): ParseResult {
  const key = keyOf(source.text);
  const known = memory.get(key);
  const json = known ?? readEntry(SUB, key);
  if (json !== null && json !== undefined) {
    const items = known !== undefined ? reviveItems(json, source) : revive(json, source);
    if (items) {
      remember(key, json);
      return { ok: true, ast: Object.freeze({ source, items: Object.freeze(items) }) as FileAst };
    }
    // An entry that does not match its file: parse again below, and write it afresh.
  }
  const parsed = parseSource(source);
  if (parsed.ok) {
    const fresh = serializeItems(parsed.ast.items);
    remember(key, fresh);
    writeEntry(SUB, key, fresh);
    pruneEntries(SUB, DISK_ENTRIES, DISK_KEEP);
  }
  return parsed;
}
