// Name maps between vdm's dotted parameter paths and the names of another implementation's state
// dict. A map is a list of rules, each a pair of patterns over dotted names: `{n}` stands for one
// segment, `{n*}` for one or more; the first rule whose pattern matches a name rewrites it, and a
// name no rule matches stays as it is. `ignore` names tensors of the other side that vdm computes
// itself (a fixed position table), which conversion lists instead of refusing.
//
// A user's map is a JSON file:
//   { "rules": [ { "vdm": "blocks.{n}.ada.{p*}", "torch": "blocks.{n}.adaLN_modulation.1.{p*}" } ],
//     "ignore": [ { "torch": "pos_embed", "why": "a fixed sin-cos table" } ] }
import fs from 'node:fs';

export class NameMapError extends Error {
  override name = 'NameMapError';
}

export interface NameRule {
  readonly vdm: string;
  readonly torch: string;
}

export interface IgnoredName {
  readonly torch: string;
  readonly why: string;
}

export interface NameMap {
  readonly name: string;
  readonly rules: readonly NameRule[];
  readonly ignore: readonly IgnoredName[];
}

/** The names of the official DiT implementation (facebookresearch/DiT, models.py). */
const DIT: NameMap = {
  name: 'dit',
  rules: [
    { vdm: 't_embedder.fc1.{p*}', torch: 't_embedder.mlp.0.{p*}' },
    { vdm: 't_embedder.fc2.{p*}', torch: 't_embedder.mlp.2.{p*}' },
    { vdm: 'blocks.{n}.ada.{p*}', torch: 'blocks.{n}.adaLN_modulation.1.{p*}' },
    { vdm: 'final_layer.ada.{p*}', torch: 'final_layer.adaLN_modulation.1.{p*}' },
  ],
  ignore: [{ torch: 'pos_embed', why: 'the fixed 2D sin-cos position table, which vdm computes (sincos)' }],
};

/** The maps `--map NAME` selects. */
export const BUILTIN_MAPS: Readonly<Record<string, NameMap>> = { dit: DIT };

/** The identity: vdm's own names. */
export const IDENTITY_MAP: NameMap = { name: 'vdm', rules: [], ignore: [] };

interface Compiled {
  readonly re: RegExp;
  readonly names: readonly string[];
}

const compiledCache = new Map<string, Compiled>();

/** A pattern as a regular expression over a whole name; its placeholders in order. */
function compile(pattern: string): Compiled {
  const hit = compiledCache.get(pattern);
  if (hit) return hit;
  const names: string[] = [];
  let re = '';
  let last = 0;
  for (const m of pattern.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}/g)) {
    re += pattern.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    re += m[2] ? '(.+)' : '([^.]+)';
    names.push(m[1]);
    last = m.index! + m[0].length;
  }
  re += pattern.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const out = { re: new RegExp(`^${re}$`), names };
  compiledCache.set(pattern, out);
  return out;
}

function rewrite(name: string, from: string, to: string): string | undefined {
  const { re, names } = compile(from);
  const m = re.exec(name);
  if (!m) return undefined;
  const values = new Map(names.map((n, i) => [n, m[i + 1]]));
  return to.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\*?\}/g, (_, n: string) => values.get(n) ?? '');
}

/** vdm's dotted path -> the other side's name. */
export function toTorchName(map: NameMap, path: string): string {
  for (const r of map.rules) {
    const out = rewrite(path, r.vdm, r.torch);
    if (out !== undefined) return out;
  }
  return path;
}

/** The other side's name -> vdm's dotted path. */
export function toVdmName(map: NameMap, name: string): string {
  for (const r of map.rules) {
    const out = rewrite(name, r.torch, r.vdm);
    if (out !== undefined) return out;
  }
  return name;
}

/** Why a tensor of the other side is ignored, or undefined. */
export function ignoredWhy(map: NameMap, name: string): string | undefined {
  return map.ignore.find((i) => compile(i.torch).re.test(name))?.why;
}

/** Checks a map's placeholders: each side of a rule names the same ones. */
function validate(map: NameMap, where: string): NameMap {
  for (const r of map.rules) {
    const a = [...compile(r.vdm).names].sort().join(), b = [...compile(r.torch).names].sort().join();
    if (a !== b) throw new NameMapError(`${where}: rule ${JSON.stringify(r)}: both sides must use the same placeholders ({${a}} vs {${b}})`);
  }
  return map;
}

/** `--map NAME` (built in) or `--map FILE.json` (a user's map); undefined: vdm's own names. */
export function loadNameMap(spec: string | undefined): NameMap {
  if (spec === undefined || spec === '' || spec === 'vdm') return IDENTITY_MAP;
  if (Object.hasOwn(BUILTIN_MAPS, spec)) return BUILTIN_MAPS[spec];
  if (!/\.json$/i.test(spec)) {
    throw new NameMapError(`--map ${spec}: no such built-in map (built in: ${Object.keys(BUILTIN_MAPS).join(', ')}); a map of your own is a .json file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(spec, 'utf8'));
  } catch (e) {
    throw new NameMapError(`--map ${spec}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const bad = (what: string) => new NameMapError(`--map ${spec}: ${what}; expected {"rules": [{"vdm": "a.{n}.b.{p*}", "torch": "a.{n}.c.{p*}"}], "ignore": [{"torch": "name", "why": "..."}]}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const o = json as { rules?: unknown; ignore?: unknown };
  const rules = o.rules ?? [];
  const ignore = o.ignore ?? [];
  if (!Array.isArray(rules) || !rules.every((r) => r && typeof r.vdm === 'string' && typeof r.torch === 'string')) throw bad('"rules" must be a list of {"vdm", "torch"} patterns');
  if (!Array.isArray(ignore) || !ignore.every((r) => r && typeof r.torch === 'string')) throw bad('"ignore" must be a list of {"torch", "why"}');
  return validate({
    name: spec,
    rules: rules.map((r: NameRule) => ({ vdm: r.vdm, torch: r.torch })),
    ignore: ignore.map((r: { torch: string; why?: unknown }) => ({ torch: r.torch, why: typeof r.why === 'string' ? r.why : 'ignored by the map' })),
  }, `--map ${spec}`);
}
