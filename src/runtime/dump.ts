// `vdm run --dump DIR`: a forward pass written out whole, readable by any safetensors reader and
// by vdm itself (`--inputs`, `--params`, `--compare`):
//   DIR/values.safetensors    every node's value, named by the spec's dotted names (nodeNames)
//   DIR/outputs.safetensors   the outputs by name (what `--out` writes)
//   DIR/inputs.safetensors    the inputs by name (what `--inputs` reads)
//   DIR/params.safetensors    the parameters by dotted path (what `--params` reads)
// Each tensor is row-major in its node's declared axis order; the metadata `vdm.axes` holds the
// axis names of every tensor (JSON), `vdm.ops` each value's primitive.
import fs from 'node:fs';
import path from 'node:path';
import type { Graph } from '../compiler/ir/graph.ts';
import { relayout, type NamedTensor } from '../compiler/ir/named-tensor.ts';
import { FileError, fileProblem } from './files.ts';
import { emptyRecord, writeSafetensors, type SafeTensor } from './safetensors.ts';
import { nodeNames } from './compare.ts';

export const DUMP_FILES = ['values.safetensors', 'outputs.safetensors', 'inputs.safetensors', 'params.safetensors'] as const;

/** A named tensor as F32 (or I32 for integer values), row-major in `axes`. */
export function safeTensorOf(t: NamedTensor, axes: NamedTensor['axes'] = t.axes, dtype: 'f32' | 'i32' = 'f32'): SafeTensor {
  const data = relayout(t, axes).data;
  return { dtype: dtype === 'i32' ? 'I32' : 'F32', shape: axes.map(([, s]) => s), data: dtype === 'i32' ? Int32Array.from(data) : Float32Array.from(data) };
}

/** Parameters by dotted path as F32 tensors in their graph shapes (what `--params` and checkpoints hold). */
export function paramTensors(graph: Graph, params: ReadonlyMap<string, ArrayLike<number>>): Record<string, SafeTensor> {
  const out = emptyRecord<SafeTensor>();
  for (const p of graph.nodes.flatMap((n) => n.params)) {
    const v = params.get(p.path);
    if (!v) throw new Error(`paramTensors: no value for parameter '${p.path}'`);
    out[p.path] = { dtype: 'F32', shape: [...p.shape], data: Float32Array.from(v) };
  }
  return out;
}

/**
 * Makes `dir` (and its parents) ready for a dump before the run: a FileError when it is a file or
 * cannot be created or written.
 */
export function prepareDumpFolder(dir: string): void {
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (stat && !stat.isDirectory()) throw new FileError(`--dump ${dir}: it is a file: name a folder`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    throw new FileError(`--dump ${dir}: ${fileProblem(err) ?? String(err)}`);
  }
}

export interface DumpContents {
  /** every node's value by node id (undefined: none, which is written as nothing) */
  readonly values: readonly (NamedTensor | undefined)[];
  readonly outputs: ReadonlyMap<string, NamedTensor>;
  readonly inputs: ReadonlyMap<string, NamedTensor>;
  readonly params: ReadonlyMap<string, ArrayLike<number>>;
}

/** Writes the four files of a dump into `dir`; returns their paths and the number of node values. */
export function writeDump(dir: string, graph: Graph, contents: DumpContents, metadata: Record<string, string> = {}): { files: string[]; nodes: number } {
  const names = nodeNames(graph);
  const values = emptyRecord<SafeTensor>();
  const axes = emptyRecord<string[]>();
  const ops = emptyRecord<string>();
  for (const node of graph.nodes) {
    const v = contents.values[node.id];
    if (!v) continue;
    values[names[node.id]] = safeTensorOf(v, node.axes, node.dtype);
    axes[names[node.id]] = node.axes.map(([n]) => n);
    ops[names[node.id]] = node.op;
  }
  const outputs = emptyRecord<SafeTensor>();
  const outputAxes = emptyRecord<string[]>();
  for (const o of graph.outputs) {
    const node = graph.nodes[o.node];
    outputs[o.name] = safeTensorOf(contents.outputs.get(o.name)!, node.axes, node.dtype);
    outputAxes[o.name] = node.axes.map(([n]) => n);
  }
  const inputs = emptyRecord<SafeTensor>();
  const inputAxes = emptyRecord<string[]>();
  for (const i of graph.inputs) {
    inputs[i.name] = safeTensorOf(contents.inputs.get(i.name)!, i.axes, i.dtype);
    inputAxes[i.name] = i.axes.map(([n]) => n);
  }
  const meta = { 'vdm.model': graph.model, ...metadata };
  const files = DUMP_FILES.map((f) => path.join(dir, f));
  writeSafetensors(files[0], values, { ...meta, 'vdm.axes': JSON.stringify(axes), 'vdm.ops': JSON.stringify(ops) });
  writeSafetensors(files[1], outputs, { ...meta, 'vdm.axes': JSON.stringify(outputAxes) });
  writeSafetensors(files[2], inputs, { ...meta, 'vdm.axes': JSON.stringify(inputAxes) });
  writeSafetensors(files[3], paramTensors(graph, contents.params), meta);
  return { files, nodes: Object.keys(values).length };
}
