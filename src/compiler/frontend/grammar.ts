// Loads grammar/vdm.ohm. Compiling the grammar text takes ohm about half a second, so the
// compiled form (ohm's "recipe") is cached in the user's cache folder (user-cache.ts), keyed by a
// hash of the grammar text and the ohm version; a missing or damaged entry means compiling again.
import type * as ohm from 'ohm-js';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEntry, writeEntry } from './user-cache.ts';

export const GRAMMAR_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../grammar/vdm.ohm');

type Ohm = typeof ohm & { makeRecipe(recipe: unknown): ohm.Grammar };
// ohm is loaded on first use: a check whose files all come from the parse cache never needs it.
let ohmModule: Ohm | null = null;
const ohmLib = (): Ohm => (ohmModule ??= createRequire(import.meta.url)('ohm-js') as Ohm);
/** Read from the installed package (its exports hide package.json from require). */
function ohmVersion(): string {
  try {
    const main = createRequire(import.meta.url).resolve('ohm-js');
    const pkg = path.join(main.slice(0, main.lastIndexOf(`${path.sep}node_modules${path.sep}`)), 'node_modules', 'ohm-js', 'package.json');
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return ohmLib().version; // unusual layouts: ask the library itself
  }
}

let cached: ohm.Grammar | null = null;
let cachedKey: string | null = null;

/** A hash of the grammar text and the ohm version: anything derived from parsing is valid under it. */
export function grammarKey(): string {
  cachedKey ??= crypto.createHash('sha256').update(ohmVersion()).update('\0').update(fs.readFileSync(GRAMMAR_PATH, 'utf8'))
    .digest('hex').slice(0, 16);
  return cachedKey;
}

export function vdmGrammar(): ohm.Grammar {
  if (cached) return cached;
  const text = fs.readFileSync(GRAMMAR_PATH, 'utf8');
  const key = `grammar-${grammarKey()}`;
  const recipe = readEntry('grammar', key);
  if (recipe !== null) {
    try {
      cached = ohmLib().makeRecipe(JSON.parse(recipe));
      return cached;
    } catch {
      // No usable cache: compile below.
    }
  }
  cached = ohmLib().grammar(text);
  writeEntry('grammar', key, (cached as unknown as { toRecipe(): string }).toRecipe());
  return cached;
}
