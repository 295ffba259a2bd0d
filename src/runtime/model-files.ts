// A model's inputs and parameters as files: reading inputs by name (`vdm run --inputs`) and the
// list of parameters with their initialisers (`vdm info --params`).
import { fansOf } from '../compiler/reference/evaluate.ts';
import { paramLeaf, type Graph } from '../compiler/ir/graph.ts';
import type { NamedTensor } from '../compiler/ir/named-tensor.ts';
import { readSafetensors } from './safetensors.ts';

/** An inputs file that does not fit the model; the message is one line. */
export class InputsFileError extends Error {
  override name = 'InputsFileError';
}

/**
 * Inputs by name from a safetensors file (`vdm run --inputs`): every input of the model, row-major
 * in its declared axis order, finite, a label an integer class. Missing, extra or misshapen tensors
 * are an InputsFileError of one line naming them.
 */
export function readInputs(graph: Graph, file: string): Map<string, NamedTensor> {
  const st = readSafetensors(file);
  const problems: string[] = [];
  const out = new Map<string, NamedTensor>();
  const known = new Set(graph.inputs.map((i) => i.name));
  const dimsText = (axes: readonly (readonly [string, number])[]) => `[${axes.map(([n, s]) => `${n}=${s}`).join(', ')}]`;
  for (const input of graph.inputs) {
    const t = Object.hasOwn(st.tensors, input.name) ? st.tensors[input.name] : undefined;
    const shape = input.axes.map(([, s]) => s);
    if (!t) { problems.push(`missing input '${input.name}' (${input.kind} ${dimsText(input.axes)})`); continue; }
    if (t.shape.join() !== shape.join()) {
      problems.push(`input '${input.name}' is [${t.shape.join(', ')}] in the file, model ${graph.model} needs ${dimsText(input.axes)}`);
      continue;
    }
    const data = t.data instanceof BigInt64Array ? Float64Array.from(t.data, Number) : Float64Array.from(t.data);
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) { problems.push(`input '${input.name}' holds a non-finite value (index ${bad})`); continue; }
    if (input.kind === 'label') {
      const classes = Number(input.options.classes) + (input.options.null ? 1 : 0);
      const wrong = data.findIndex((v) => !Number.isInteger(v) || v < 0 || v >= classes);
      if (wrong >= 0) { problems.push(`input '${input.name}' holds ${data[wrong]} (index ${wrong}); a label is an integer in [0, ${classes})`); continue; }
    }
    out.set(input.name, { axes: input.axes, data });
  }
  const extra = Object.keys(st.tensors).filter((k) => !known.has(k)).sort();
  if (extra.length) {
    problems.push(`${file} has ${extra.length === 1 ? 'tensor' : 'tensors'} ${extra.slice(0, 4).map((k) => `'${k}'`).join(', ')}${extra.length > 4 ? `, ... (${extra.length} in all)` : ''}, `
      + `which ${extra.length === 1 ? 'is no input' : 'are no inputs'} of model ${graph.model} (its inputs: ${graph.inputs.map((i) => i.name).join(', ')})`);
  }
  if (problems.length) throw new InputsFileError(`--inputs ${file}: ${problems.join('; ')}`);
  return out;
}

export interface ParameterInfo {
  readonly path: string;
  readonly op: string;
  readonly shape: readonly number[];
  readonly count: number;
  /** the init the spec gives it (default, xavier_uniform, normal, scaled_normal, zeros, ones) */
  readonly init: string;
  /** the distribution it is drawn from, e.g. `uniform ±0.0510 (1/sqrt(384))` */
  readonly distribution: string;
}

/** Every parameter of the model in graph order, with its initialiser (`vdm info --params`). */
export function parameterList(graph: Graph): ParameterInfo[] {
  return graph.nodes.flatMap((node) => node.params.map((p) => {
    const [fanIn, fanOut] = fansOf(node.op, paramLeaf(node, p), p.shape);
    const f = (v: number) => v.toPrecision(3);
    const distribution = p.init === 'default' ? `uniform ±${f(1 / Math.sqrt(fanIn))} (1/sqrt(${fanIn}))`
      : p.init === 'xavier_uniform' ? `uniform ±${f(Math.sqrt(6 / (fanIn + fanOut)))} (sqrt(6/(${fanIn}+${fanOut})))`
        : p.init === 'normal' ? 'normal, std 0.02'
          : p.init === 'scaled_normal' ? `normal, std ${f(1 / Math.sqrt(fanIn))} (1/sqrt(${fanIn}))`
          : p.init === 'zeros' ? '0' : p.init === 'ones' ? '1' : p.init;
    return { path: p.path, op: node.op, shape: p.shape, count: p.shape.reduce((a, b) => a * b, 1), init: p.init, distribution };
  }));
}

