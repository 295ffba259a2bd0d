// `vdm convert`'s files: reads a checkpoint (safetensors, or .pt/.pth through Python with torch),
// converts it one way or the other (convert.ts) and writes the result (safetensors, or .pt/.pth).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Graph } from '../compiler/ir/graph.ts';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../runtime/safetensors.ts';
import { ConvertError, guessDirection, torchToVdmParams, vdmToTorchParams, type Conversion } from './convert.ts';
import type { NameMap } from './name-maps.ts';
import { ptToSafetensors, safetensorsToPt } from './python.ts';

export const isPt = (file: string) => /\.(pt|pth|bin|ckpt)$/i.test(file);

export interface ConvertFileOptions {
  readonly input: string;
  readonly output: string;
  readonly map: NameMap;
  /** the side to write; undefined: guessed from the input (guessDirection) */
  readonly to?: 'torch' | 'vdm';
  /** convert a vdm training checkpoint's EMA weights (ema.<path>) instead of its raw weights */
  readonly ema?: boolean;
}

export interface ConvertFileResult extends Conversion {
  readonly to: 'torch' | 'vdm';
  /** whether `to` was guessed */
  readonly guessed: boolean;
  /** the source is a vdm training checkpoint with EMA weights, and the raw weights were converted */
  readonly emaNote: boolean;
  /** the entry of a .pt checkpoint the state dict came from ('' for the top level) */
  readonly entry: string;
  readonly count: number;
  readonly values: number;
  readonly seconds: number;
}

/** Reads a checkpoint's tensors and metadata, whichever of the two formats it is in. */
export function readCheckpointTensors(file: string): { tensors: Record<string, SafeTensor>; metadata: Record<string, string>; entry: string } {
  if (!isPt(file)) return { ...readSafetensors(file), entry: '' };
  const pt = ptToSafetensors(file);
  try {
    return { ...readSafetensors(pt.file), entry: pt.entry };
  } finally {
    pt.cleanup();
  }
}

export function convertFile(graph: Graph, options: ConvertFileOptions): ConvertFileResult {
  const start = performance.now();
  const read = readCheckpointTensors(options.input);
  const { metadata, entry } = read;
  let source = read.tensors;
  if (options.ema) {
    const ema = Object.keys(source).filter((k) => k.startsWith('ema.'));
    if (!ema.length) throw new ConvertError(`--ema: ${options.input} holds no EMA weights (ema.<path>); a vdm train checkpoint keeps them unless trained with --no-ema`);
    source = Object.fromEntries(ema.map((k) => [k.slice(4), source[k]]));
  }
  const to = options.to ?? guessDirection(graph, source, metadata);
  if (options.ema && to !== 'torch') throw new ConvertError('--ema takes the EMA weights of a vdm checkpoint to PyTorch: use it with --to torch');
  const conversion = to === 'vdm' ? torchToVdmParams(graph, source, options.map) : vdmToTorchParams(graph, source, options.map);
  const meta: Record<string, string> = to === 'vdm'
    ? { format: 'pt', 'vdm.model': graph.model, 'vdm.converted_from': path.basename(options.input), 'vdm.map': options.map.name }
    : { format: 'pt', 'vdm.torch_of': graph.model, 'vdm.map': options.map.name };
  if (isPt(options.output)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-pt-'));
    try {
      const tmp = path.join(dir, 'state.safetensors');
      writeSafetensors(tmp, conversion.tensors, meta);
      safetensorsToPt(tmp, options.output);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    writeSafetensors(options.output, conversion.tensors, meta);
  }
  const all = Object.values(conversion.tensors);
  const emaNote = !options.ema && to === 'torch' && Object.keys(source).some((k) => k.startsWith('ema.'));
  return {
    ...conversion, to, emaNote, guessed: options.to === undefined, entry,
    count: all.length, values: all.reduce((n, t) => n + t.data.length, 0),
    seconds: (performance.now() - start) / 1000,
  };
}
