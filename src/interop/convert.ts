// Converting parameters between a vdm checkpoint (dotted paths, vdm's layout) and a PyTorch state
// dict (a name map's names, PyTorch's layout), by rule (layout.ts). A tensor whose shape matches
// only after transposition is refused naming both layouts, never converted by guess; tensors one
// side lacks are listed.
import type { Graph } from '../compiler/ir/graph.ts';
import { emptyRecord, type SafeTensor } from '../runtime/safetensors.ts';
import { torchLayout, torchToVdm, vdmToTorch, type ParamLayout } from './layout.ts';
import { BUILTIN_MAPS, ignoredWhy, mapName, type NameMap, type NameRule } from './name-maps.ts';

export class ConvertError extends Error {
  override name = 'ConvertError';
}

export interface Conversion {
  /** the converted tensors, F32, by the target side's names */
  readonly tensors: Record<string, SafeTensor>;
  /** tensors of the source that no parameter takes (not converted) */
  readonly unmatched: readonly string[];
  /** tensors of the source the map ignores, with why */
  readonly ignored: readonly (readonly [string, string])[];
  /** parameters by rule: how many were transposed, taken as a patch convolution, copied */
  readonly rules: Readonly<Record<string, number>>;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

const RULE_TEXT: Readonly<Record<string, string>> = {
  transpose: 'nn.Linear keeps [out, in], vdm [in, out]',
  'patch-conv': 'a patch embedding is a strided conv [out, C, k...] in PyTorch, patchify + linear [prod(patch) * C, out] in vdm',
};

function floatData(name: string, t: SafeTensor): Float32Array {
  if (t.data instanceof BigInt64Array || t.data instanceof Int32Array) throw new ConvertError(`${name} is ${t.dtype}; parameters must be floating point`);
  return t.data;
}

function listProblems(problems: readonly string[]): string {
  return `  ${problems.slice(0, 12).join('\n  ')}${problems.length > 12 ? `\n  ... and ${problems.length - 12} more` : ''}`;
}

/**
 * What a source tensor's shape says when it is not the expected one: the other layout's shape
 * (refused: converted by rule only), or a plain mismatch.
 */
function shapeProblem(name: string, got: readonly number[], want: readonly number[], other: readonly number[], l: ParamLayout, toVdm: boolean): string {
  const side = toVdm ? 'PyTorch' : 'vdm';
  if (l.rule !== 'same' && got.join() === other.join()) {
    return `${name} is ${shapeText(got)}: ${toVdm ? 'vdm' : 'PyTorch'}'s layout, not ${side}'s ${shapeText(want)} (${RULE_TEXT[l.rule]})`;
  }
  return `${name} is ${shapeText(got)} in the file, ${side}'s layout of ${l.path} is ${shapeText(want)}`;
}

/** The problems, and once the reason a tensor in the other layout is refused. */
function notFitting(what: string, problems: readonly string[], toVdm: boolean): ConvertError {
  const flipped = problems.some((p) => /: (vdm|PyTorch)'s layout, not/.test(p));
  const why = flipped
    ? `\nA weight is converted by the rule its layer gives it, never by its shape; ${toVdm
      ? 'is the file a vdm checkpoint? (--to torch converts one to PyTorch\'s layout)'
      : 'is the file a PyTorch state dict? (--to vdm converts one to vdm\'s layout)'}`
    : '';
  return new ConvertError(`${what}:\n${listProblems(problems)}${why}`);
}

type Features = NonNullable<NameRule['features']>;

/** The groups' sizes for an axis of `len`: a -1 is what the others leave (as in a reshape). */
function groupSizes(len: number, f: Features, name: string): number[] {
  const known = f.groups.filter((g) => g !== -1).reduce((a, b) => a * b, 1);
  const rest = f.groups.includes(-1) ? len / known : 1;
  const sizes = f.groups.map((g) => (g === -1 ? rest : g));
  const G = sizes.reduce((a, b) => a * b, 1);
  if (!Number.isInteger(rest) || len % G) throw new ConvertError(`${name}: its ${f.axis ?? 'last'} axis (${len}) is not ${f.groups.map((g) => (g === -1 ? '*' : g)).join(' x ')} groups of features, as the map reorders it`);
  return sizes;
}

/** Position in vdm's order of each position of the other side's reordered axis (a map's `features`). */
function featureOrder(len: number, f: Features, name: string): Int32Array {
  const groups = groupSizes(len, f, name);
  const G = groups.reduce((a, b) => a * b, 1);
  const rest = len / G;
  const perm = new Int32Array(len);
  const digits = new Array<number>(groups.length);
  for (let other = 0; other < G; other++) {
    let rem = other;
    for (let k = f.order.length - 1; k >= 0; k--) { const g = groups[f.order[k]]; digits[f.order[k]] = rem % g; rem = Math.floor(rem / g); }
    const v = digits.reduce((acc, d, i) => acc * groups[i] + d, 0);
    for (let r = 0; r < rest; r++) perm[other * rest + r] = v * rest + r;
  }
  return perm;
}

/**
 * Reorders one axis of PyTorch-layout data (the last, or the first: a Linear's outputs, its
 * weight's rows and its bias): to the other side's order, or back to vdm's.
 */
function reorderFeatures(data: Float32Array, shape: readonly number[], f: Features, name: string, toOther: boolean): Float32Array {
  const axis = f.axis === 'first' ? 0 : shape.length - 1;
  const len = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const perm = featureOrder(len, f, name);
  const out = new Float32Array(data.length);
  for (let row = 0; row < data.length; row += len * inner) {
    for (let j = 0; j < len; j++) {
      const a = row + j * inner, b = row + perm[j] * inner;
      if (toOther) out.set(data.subarray(b, b + inner), a); else out.set(data.subarray(a, a + inner), b);
    }
  }
  return out;
}

/** The shape of each of k equal parts along the first axis of PyTorch's layout, or why there are none. */
function partShape(l: ParamLayout, k: number, map: NameMap, rule?: NameRule): number[] | string {
  if (rule?.kernel === 'full' && l.fullKernelShape) return [...l.fullKernelShape]; // size-1 axes: the same values
  if (k === 1) return [...l.torchShape];
  if (l.torchShape[0] % k) return `map ${map.name} splits ${l.path} into ${k} parts, but the first axis of its PyTorch layout ${shapeText(l.torchShape)} does not divide by ${k}`;
  return [l.torchShape[0] / k, ...l.torchShape.slice(1)];
}

/** What a part looks like in the other layout: its transpose for a Linear weight, the vdm shape whole. */
const otherShape = (l: ParamLayout, part: readonly number[], k: number) =>
  (k === 1 ? l.vdmShape : l.rule === 'transpose' ? [...part].reverse() : part);

function count(rules: Record<string, number>, key: string): void {
  rules[key] = (rules[key] ?? 0) + 1;
}

/** A PyTorch state dict (names of `map`) -> vdm's parameters by dotted path. */
export function torchToVdmParams(graph: Graph, source: Record<string, SafeTensor>, map: NameMap): Conversion {
  const layouts = torchLayout(graph);
  const tensors = emptyRecord<SafeTensor>();
  const problems: string[] = [];
  const used = new Set<string>();
  const rules: Record<string, number> = {};
  for (const l of layouts) {
    const { names, rule } = mapName(map, l.path, l.node.op);
    const part = partShape(l, names.length, map, rule);
    if (typeof part === 'string') { problems.push(part); continue; }
    const parts: Float32Array[] = [];
    for (const name of names) {
      const t = Object.hasOwn(source, name) ? source[name] : undefined;
      if (!t) { problems.push(`missing ${name} ${shapeText(part)}${name !== l.path ? ` (vdm's ${l.path}${names.length > 1 ? `, part ${parts.length + 1} of ${names.length}` : ''})` : ''}`); break; }
      used.add(name);
      if (t.shape.join() !== part.join()) { problems.push(shapeProblem(name, t.shape, part, otherShape(l, part, names.length), l, true)); break; }
      try {
        parts.push(floatData(name, t));
      } catch (e) {
        if (e instanceof ConvertError) { problems.push(e.message); break; } throw e;
      }
    }
    if (parts.length !== names.length) continue;
    try {
      let data = parts[0];
      if (parts.length > 1) {
        data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        parts.reduce((at, p) => { data.set(p, at); return at + p.length; }, 0);
      }
      if (rule?.features) data = reorderFeatures(data, l.torchShape, rule.features, names[0], false);
      tensors[l.path] = { dtype: 'F32', shape: [...l.vdmShape], data: torchToVdm(l, data) };
      count(rules, l.rule);
      if (names.length > 1) count(rules, 'split');
      if (rule?.features) count(rules, 'reordered');
    } catch (e) {
      if (e instanceof ConvertError) problems.push(e.message); else throw e;
    }
  }
  if (problems.length) {
    const strays = Object.keys(source).filter((n) => !used.has(n) && ignoredWhy(map, n) === undefined).sort();
    if (strays.length && problems.some((p) => p.startsWith('missing '))) {
      problems.push(`the file's ${strays.length} tensor${strays.length === 1 ? '' : 's'} that no parameter takes${map.rules.length ? ` under map ${map.name}` : ''}: ${strays.slice(0, 6).join(', ')}${strays.length > 6 ? ', ...' : ''} (another naming? --map ${Object.keys(BUILTIN_MAPS).filter((m) => m !== map.name).join('|')} or a JSON map)`);
    }
  }
  if (problems.length) throw notFitting(`the state dict does not fit model ${graph.model}${map.rules.length ? ` under map ${map.name}` : ''}`, problems, true);
  const rest = Object.keys(source).filter((n) => !used.has(n)).sort();
  const ignored = rest.flatMap((n) => { const why = ignoredWhy(map, n); return why === undefined ? [] : [[n, why] as const]; });
  const unmatched = rest.filter((n) => ignoredWhy(map, n) === undefined);
  return { tensors, unmatched, ignored, rules };
}

/** vdm's parameters by dotted path -> a PyTorch state dict with the names of `map`. */
export function vdmToTorchParams(graph: Graph, source: Record<string, SafeTensor>, map: NameMap): Conversion {
  const layouts = torchLayout(graph);
  const tensors = emptyRecord<SafeTensor>();
  const problems: string[] = [];
  const used = new Set<string>();
  const rules: Record<string, number> = {};
  for (const l of layouts) {
    const t = Object.hasOwn(source, l.path) ? source[l.path] : undefined;
    if (!t) { problems.push(`missing ${l.path} ${shapeText(l.vdmShape)}`); continue; }
    used.add(l.path);
    if (t.shape.join() !== l.vdmShape.join()) { problems.push(shapeProblem(l.path, t.shape, l.vdmShape, l.torchShape, l, false)); continue; }
    try {
      const { names, rule } = mapName(map, l.path, l.node.op);
      const part = partShape(l, names.length, map, rule);
      if (typeof part === 'string') { problems.push(part); continue; }
      const taken = names.find((n) => Object.hasOwn(tensors, n));
      if (taken) { problems.push(`map ${map.name} gives ${l.path} the name ${taken}, which another parameter has`); continue; }
      let data = vdmToTorch(l, floatData(l.path, t));
      if (rule?.features) data = reorderFeatures(data, l.torchShape, rule.features, names[0], true);
      const size = part.reduce((a, b) => a * b, 1);
      names.forEach((name, i) => { tensors[name] = { dtype: 'F32', shape: [...part], data: data.slice(i * size, (i + 1) * size) }; });
      count(rules, l.rule);
      if (names.length > 1) count(rules, 'split');
      if (rule?.features) count(rules, 'reordered');
    } catch (e) {
      if (e instanceof ConvertError) problems.push(e.message); else throw e;
    }
  }
  if (problems.length) throw notFitting(`the parameters do not fit model ${graph.model}`, problems, false);
  // A training checkpoint's EMA and Adam moments are not parameters of a state dict.
  const known = new Set(layouts.flatMap((l) => [`ema.${l.path}`, `adam.m.${l.path}`, `adam.v.${l.path}`]));
  const unmatched = Object.keys(source).filter((n) => !used.has(n) && !known.has(n)).sort();
  return { tensors, unmatched, ignored: [], rules };
}

/**
 * Which way a file goes when `--to` is not given: a file vdm wrote (metadata `vdm.model`, or a
 * training checkpoint's `vdm.checkpoint`) or one holding every parameter by vdm's path in vdm's
 * shape is vdm's; anything else is PyTorch's.
 */
export function guessDirection(graph: Graph, source: Record<string, SafeTensor>, metadata: Record<string, string>): 'torch' | 'vdm' {
  if (Object.hasOwn(metadata, 'vdm.model') || Object.hasOwn(metadata, 'vdm.checkpoint')) return 'torch';
  const layouts = torchLayout(graph);
  const vdmShaped = layouts.every((l) => Object.hasOwn(source, l.path) && source[l.path].shape.join() === l.vdmShape.join());
  const torchShaped = layouts.every((l) => Object.hasOwn(source, l.path) && source[l.path].shape.join() === l.torchShape.join());
  return vdmShaped && !torchShaped ? 'torch' : 'vdm';
}
