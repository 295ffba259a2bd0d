// Loads grammar/vdm.ohm. Compiling the grammar text takes ohm about half a second, so the
// compiled form (ohm's "recipe") is cached in the temp folder, keyed by a hash of the grammar
// text and the ohm version; a missing or damaged cache just means compiling again.
import * as ohm from 'ohm-js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const GRAMMAR_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../grammar/vdm.ohm');

const makeRecipe = (ohm as unknown as { makeRecipe(recipe: unknown): ohm.Grammar }).makeRecipe;
let cached: ohm.Grammar | null = null;

export function vdmGrammar(): ohm.Grammar {
  if (cached) return cached;
  const text = fs.readFileSync(GRAMMAR_PATH, 'utf8');
  const key = crypto.createHash('sha256').update(ohm.version).update('\0').update(text).digest('hex').slice(0, 16);
  const cacheFile = path.join(os.tmpdir(), `vdm-grammar-${key}.json`);
  try {
    cached = makeRecipe(JSON.parse(fs.readFileSync(cacheFile, 'utf8')));
    return cached;
  } catch {
    // No usable cache: compile below.
  }
  cached = ohm.grammar(text);
  try {
    const temp = `${cacheFile}.${process.pid}.tmp`;
    fs.writeFileSync(temp, (cached as unknown as { toRecipe(): string }).toRecipe());
    fs.renameSync(temp, cacheFile); // atomic, so a concurrent reader never sees half a file
  } catch {
    // A read-only temp folder only costs speed.
  }
  return cached;
}
