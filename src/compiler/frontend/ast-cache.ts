// Parsing with ohm costs tens of milliseconds per kilobyte, most of a check of a small spec, and
// every spec re-reads the same library files. Parsed trees are therefore kept, in memory and as
// JSON in the temp folder, keyed by a hash of the grammar and the file text: a changed file or
// grammar simply misses. Files with syntax errors are parsed every time (rare, and cheap to redo).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileAst, ParseResult } from './ast.ts';
import { reviveItems, serializeItems } from './ast-json.ts';
import { grammarKey } from './grammar.ts';
import { parseSource } from './parse.ts';
import type { SourceFile } from '../ir/source.ts';

/** Bumped whenever the AST's shape or its encoding changes. */
const FORMAT = 2;
const memory = new Map<string, string>();

function cacheDir(): string {
  return path.join(os.tmpdir(), 'vdm-ast-cache');
}

function keyOf(text: string): string {
  return crypto.createHash('sha256').update(`${FORMAT}\0${grammarKey()}\0`).update(text).digest('hex').slice(0, 32);
}

/** At most this many files stay on disk (mutated or edited specs would pile up otherwise). */
const DISK_ENTRIES = 300;
const DISK_KEEP = 200;

function readDisk(key: string): string | null {
  const file = path.join(cacheDir(), `${key}.json`);
  try {
    const json = fs.readFileSync(file, 'utf8');
    const now = new Date();
    fs.utimesSync(file, now, now); // recently used: pruned last
    return json;
  } catch {
    return null;
  }
}

/** Drops the least recently used entries once there are too many. */
function prune(dir: string): void {
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  if (names.length <= DISK_ENTRIES) return;
  const aged = names.map((n) => {
    try {
      return { n, t: fs.statSync(path.join(dir, n)).mtimeMs };
    } catch {
      return { n, t: 0 };
    }
  }).sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, aged.length - DISK_KEEP)) fs.rmSync(path.join(dir, n), { force: true });
}

function writeDisk(key: string, json: string): void {
  try {
    fs.mkdirSync(cacheDir(), { recursive: true });
    const file = path.join(cacheDir(), `${key}.json`);
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, json);
    fs.renameSync(temp, file);
    prune(cacheDir());
  } catch {
    // A read-only temp folder only costs speed.
  }
}

export function parseCached(source: SourceFile): ParseResult {
  const key = keyOf(source.text);
  const json = memory.get(key) ?? readDisk(key);
  if (json !== null) {
    try {
      const items = reviveItems(json, source);
      memory.set(key, json);
      return { ok: true, ast: Object.freeze({ source, items: Object.freeze(items) }) as FileAst };
    } catch {
      // A damaged cache entry: parse again below.
    }
  }
  const parsed = parseSource(source);
  if (parsed.ok) {
    const fresh = serializeItems(parsed.ast.items);
    memory.set(key, fresh);
    writeDisk(key, fresh);
  }
  return parsed;
}
