// Converting parameters between a vdm checkpoint (dotted paths, vdm's layout) and a PyTorch state
// dict (a name map's names, PyTorch's layout), by rule (layout.ts). A tensor whose shape matches
// only after transposition is refused naming both layouts, never converted by guess; tensors one
// side lacks are listed.
import type { Graph } from '../compiler/ir/graph.ts';
import { emptyRecord, type SafeTensor } from '../runtime/safetensors.ts';
import { torchLayout, torchToVdm, vdmToTorch, type ParamLayout } from './layout.ts';
import { ignoredWhy, toTorchName, type NameMap } from './name-maps.ts';

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

/** A PyTorch state dict (names of `map`) -> vdm's parameters by dotted path. */
export function torchToVdmParams(graph: Graph, source: Record<string, SafeTensor>, map: NameMap): Conversion {
  const layouts = torchLayout(graph);
  const tensors = emptyRecord<SafeTensor>();
  const problems: string[] = [];
  const used = new Set<string>();
  const rules: Record<string, number> = {};
  for (const l of layouts) {
    const name = toTorchName(map, l.path);
    const t = Object.hasOwn(source, name) ? source[name] : undefined;
    if (!t) { problems.push(`missing ${name} ${shapeText(l.torchShape)}${name !== l.path ? ` (vdm's ${l.path})` : ''}`); continue; }
    used.add(name);
    if (t.shape.join() !== l.torchShape.join()) { problems.push(shapeProblem(name, t.shape, l.torchShape, l.vdmShape, l, true)); continue; }
    try {
      tensors[l.path] = { dtype: 'F32', shape: [...l.vdmShape], data: torchToVdm(l, floatData(name, t)) };
      rules[l.rule] = (rules[l.rule] ?? 0) + 1;
    } catch (e) {
      if (e instanceof ConvertError) problems.push(e.message); else throw e;
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
      const name = toTorchName(map, l.path);
      if (Object.hasOwn(tensors, name)) { problems.push(`map ${map.name} gives ${l.path} the name ${name}, which another parameter has`); continue; }
      tensors[name] = { dtype: 'F32', shape: [...l.torchShape], data: vdmToTorch(l, floatData(l.path, t)) };
      rules[l.rule] = (rules[l.rule] ?? 0) + 1;
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
