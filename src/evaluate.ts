// The pipeline's evaluation (`vdm eval`): evalSpec(checkpoint, { spec, data }) = the checkpoint and
// its spec (specOfCheckpoint) -> n clips of the data it trained on -> sampleSpec, or a samples file
// `vdm sample` wrote -> evaluateClips (runtime/eval). Beside pipeline.ts, whose steps it strings.
import fs from 'node:fs';
import path from 'node:path';
import type { Diagnostic } from './compiler/ir/diagnostics.ts';
import { checkpointName } from './runtime/checkpoint.ts';
import { dataNeeds, openDataset, type VideoDataset } from './runtime/data/index.ts';
import { evaluateClips, type Clips, type EvalReport } from './runtime/eval/index.ts';
import { openGpu, type Gpu } from './runtime/gpu.ts';
import { readSafetensors } from './runtime/safetensors.ts';
import { locateCheckpoint, sampleLayout, SampleSetupError, type SampleSettings } from './runtime/sample-run.ts';
import type { WrittenSamples } from './runtime/video-out.ts';
import { PipelineError, sampleSpec, specOfCheckpoint, type SampleSpecHooks } from './pipeline.ts';

/** An evaluation that cannot run as asked: a bad --n, a samples file that does not fit the checkpoint. */
export class EvalSetupError extends PipelineError {}

export const DEFAULT_EVAL = { n: 16, seed: 0 } as const;

export interface EvalSpecOptions {
  /** the spec the checkpoint was trained on */
  readonly spec?: string;
  /** the folder imports must stay in */
  readonly root?: string;
  /** 'synthetic' (the built-in moving shapes; default) or a folder of clips */
  readonly data?: string;
  /** clips on each side (default 16; with `samples`, every one the file holds) */
  readonly n?: number;
  /** seeds the sampling noise and the synthetic clips (default 0) */
  readonly seed?: number;
  /** a samples.safetensors `vdm sample` wrote: evaluate those instead of sampling */
  readonly samples?: string;
  /** sampling settings besides n and seed (default: the spec's sampler) */
  readonly settings?: Partial<Omit<SampleSettings, 'n' | 'seed'>>;
  /** where the sampled clips are written (default: <checkpoint folder>/eval/step-NNNNNN) */
  readonly out?: string;
  /** opens the adapter (default: the process-wide openGpu) */
  readonly gpu?: () => Promise<Gpu>;
  /** also write an MP4 of the samples when ffmpeg is installed (default true) */
  readonly mp4?: boolean;
}

export interface EvalResult {
  readonly model: string;
  readonly checkpoint: string;
  readonly step: number;
  /** the size of one clip, on both sides */
  readonly clip: { readonly c: number; readonly t: number; readonly h: number; readonly w: number };
  /** sampled now (the settings and where the files went), or read from a file */
  readonly samples:
    | { readonly from: 'sampled'; readonly settings: SampleSettings; readonly weights: 'ema' | 'weights'; readonly out: string; readonly files: WrittenSamples; readonly seconds: number }
    | { readonly from: 'file'; readonly file: string };
  /** 'synthetic' or the folder, the seed of the synthetic clips */
  readonly data: { readonly source: string; readonly seed: number };
  readonly report: EvalReport;
}

export type EvalSpecResult =
  | { readonly ok: true; readonly result: EvalResult }
  | { readonly ok: false; readonly file: string; readonly diagnostics: readonly Diagnostic[] };

/** The samples of a samples.safetensors that fit `layout` (the checkpoint's clip size), the first n of them. */
function readSamplesFile(file: string, model: string, layout: { c: number; t: number; h: number; w: number; shape: readonly number[] }, n: number | undefined):
  { clips: Clips; labels: Int32Array | null } {
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw new EvalSetupError(`--samples ${file}: no such file (name the samples.safetensors \`vdm sample\` wrote)`);
  const st = readSafetensors(file);
  const t = st.tensors.samples;
  if (!t || t.data instanceof BigInt64Array || t.data instanceof Int32Array) throw new EvalSetupError(`--samples ${file} holds no floating-point tensor 'samples': name the samples.safetensors \`vdm sample\` wrote`);
  const stored = st.metadata['vdm.model'];
  if (stored && stored !== model) throw new EvalSetupError(`--samples ${file} holds samples of model ${stored}, the checkpoint is of model ${model}`);
  if (t.shape.slice(1).join() !== layout.shape.slice(1).join()) {
    throw new EvalSetupError(`--samples ${file} holds samples [${t.shape.join(', ')}], the checkpoint's model makes [n, ${layout.shape.slice(1).join(', ')}]`);
  }
  const have = t.shape[0];
  if (n !== undefined && n > have) throw new EvalSetupError(`--n ${n}: ${file} holds ${have} sample${have === 1 ? '' : 's'}; pass --n ${have} or fewer`);
  const count = n ?? have;
  const size = layout.c * layout.t * layout.h * layout.w;
  const l = st.tensors.labels;
  const labels = l && l.data instanceof Int32Array && l.data.length === have ? l.data.slice(0, count) : null;
  return { clips: { shape: { n: count, c: layout.c, t: layout.t, h: layout.h, w: layout.w }, data: Float32Array.from(t.data.subarray(0, count * size)) }, labels };
}

/**
 * `vdm eval`: samples n clips from a checkpoint (or reads a samples.safetensors `vdm sample` wrote),
 * draws n clips of the data the model trained on (the built-in moving shapes at the checkpoint's
 * dims, or a folder) and compares them (runtime/eval: per-frame statistics, temporal consistency,
 * the Fréchet distance over a fixed random 3D-conv network, and on the moving shapes trajectory
 * smoothness and shape-colour accuracy). The spec's problems come back as diagnostics; what cannot
 * be done as asked throws EvalSetupError, SampleSetupError, SpecMismatchError / CheckpointError,
 * DataError, NoAdapterError or UnsampleableError, all but the last two before the GPU is opened.
 */
export async function evalSpec(source: string, options: EvalSpecOptions, hooks: SampleSpecHooks = {}): Promise<EvalSpecResult> {
  const { n, seed = DEFAULT_EVAL.seed, data: dataSource = 'synthetic' } = options;
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= 1)) throw new EvalSetupError(`--n must be a whole number of at least 1, got ${n}`);
  if (!(Number.isSafeInteger(seed) && seed >= 0)) throw new EvalSetupError(`--seed must be an integer from 0 to 2^53 - 1, got ${seed}`);
  const ckpt = locateCheckpoint(source, hooks.note);
  if (!options.spec) throw new SampleSetupError(`${ckpt.file} holds model ${ckpt.model} but not the spec file it was written from: name it with --spec FILE.vdm`);
  const found = specOfCheckpoint(ckpt, options.spec, options.root, 'vdm eval');
  if (!found.ok) return found;
  const graph = found.model.graph;
  const layout = sampleLayout(graph, 1);
  const clip = { c: layout.c, t: layout.t, h: layout.h, w: layout.w };
  const fromFile = options.samples !== undefined ? readSamplesFile(options.samples, graph.model, layout, n) : null;
  const count = fromFile?.clips.shape.n ?? n ?? DEFAULT_EVAL.n;

  // The data, before the GPU: a folder that cannot be read is reported without sampling first.
  const synthetic = dataSource === 'synthetic';
  const label = synthetic ? dataNeeds(graph).label : undefined;
  let dataset: VideoDataset;
  try {
    dataset = await openDataset(dataSource, clip, { seed, ...(label ? { label: { classes: label.classes } } : {}) });
  } catch (e) {
    if (e instanceof RangeError) throw new EvalSetupError(e.message);
    throw e;
  }
  for (const p of dataset.problems) hooks.note?.(p);
  const dataCount = Math.min(count, dataset.size ?? count);
  if (dataCount < count) hooks.note?.(`${dataSource} holds ${dataCount} clip${dataCount === 1 ? '' : 's'}: comparing ${count} samples with ${dataCount} clips`);
  const batch = await dataset.batch(0, dataCount);
  const data: Clips = { shape: { n: dataCount, ...clip }, data: batch.video };

  let samples: Clips, sampleLabels: Int32Array | null, from: EvalResult['samples'];
  if (fromFile) {
    ({ clips: samples, labels: sampleLabels } = fromFile);
    from = { from: 'file', file: options.samples! };
  } else {
    const out = options.out ?? path.join(ckpt.dir, 'eval', checkpointName(ckpt.step).replace(/\.safetensors$/, ''));
    const r = await sampleSpec(ckpt.file, { spec: options.spec, root: options.root, out, gpu: options.gpu, mp4: options.mp4, settings: { ...options.settings, n: count, seed } }, hooks);
    if (!r.ok) return r;
    samples = { shape: { n: count, ...clip }, data: r.result.samples };
    sampleLabels = r.result.labels;
    from = { from: 'sampled', settings: r.result.settings, weights: r.result.weights, out: r.result.out, files: r.result.files, seconds: r.result.seconds };
  }
  const labels = synthetic && sampleLabels && batch.label ? { samples: sampleLabels, data: batch.label } : undefined;
  const report = evaluateClips(samples, data, { shapes: synthetic, labels });
  return { ok: true, result: { model: graph.model, checkpoint: ckpt.file, step: ckpt.step, clip, samples: from, data: { source: dataSource, seed }, report } };
}
