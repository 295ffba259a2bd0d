// The pipeline from a spec to a forward pass on an adapter, one typed step at a time:
//   checkSpec(file, { dims }) -> lowerModel(checked, { target | adapter, layout, fuse })
//     -> planModel(lowered) -> load(gpu, planned, { params, inputs }) -> run()
// and to a training run: trainSpec(file, { out, settings }) = checkSpec -> prepareTraining
// (checkpoint, data) -> open the GPU -> lowerForTraining -> train (runtime/train-loop.ts),
// and to samples: sampleSpec(checkpoint or run folder, { spec, settings }) = locate the checkpoint
// -> checkSpec at its dims -> loadCheckpoint -> checkSpec at the sampling batch -> lowerForSampling
// -> runSampling (runtime/sample-run.ts) -> writeSamples (runtime/video-out.ts),
// and to an evaluation (evaluate.ts's evalSpec, which strings these steps); a forward pass is fed
// and inspected from files by readInputsFile, initialParams / writeParamsFile and inspectModel.
// Each step's result carries the earlier ones (file, graph, lowered graph, memory plan), so a
// caller keeps one value. Bad input never ends in a stack trace: a spec's problems come back as
// diagnostics, what the kernel library cannot lower yet and values that do not fit the model as a
// PipelineError. The CLI, the benchmarks and the tests all go through here.
import fs from 'node:fs';
import path from 'node:path';
import { lowerGraph, type LoweredGraph, type ValueLayout } from './codegen/lower.ts';
import { lowerTraining, trainingMemory, TrainingError, type TrainingMemory, type TrainingProgram } from './codegen/training.ts';
import type { AdapterTraits } from './codegen/kernels/kernel.ts';
import { planMemory, plannedMemory, type MemoryPlan, type PlannedMemory } from './codegen/plan-memory.ts';
import { compiledFiles, type CompiledFiles } from './codegen/program-files.ts';
import { TARGET_TRAITS, type Target } from './codegen/targets.ts';
import { checkSpec, type CheckedModel, type SpecOptions } from './spec-check.ts';
import type { Diagnostic } from './compiler/ir/diagnostics.ts';
import type { Graph } from './compiler/ir/graph.ts';
import { relayout, type NamedTensor } from './compiler/ir/named-tensor.ts';
import { openGpu, type Gpu } from './runtime/gpu.ts';
import { loadLowered, runLowered, type GraphRun } from './runtime/run-graph.ts';
import { readSafetensors, writeSafetensors } from './runtime/safetensors.ts';
import { paramTensors } from './runtime/dump.ts';
import { initParams, liveParams } from './compiler/reference/evaluate.ts';
import { InputsFileError, readInputs } from './runtime/model-files.ts';
import { replaceFolder } from './runtime/files.ts';
import { nothingToDo, prepareTraining, train, type PreparedTraining, type TrainHooks, type TrainOptions, type TrainResult } from './runtime/train-loop.ts';
import { lowerSampling, SamplingError, type SamplingProgram } from './codegen/sampling.ts';
import { checkpointName, loadCheckpoint, SpecMismatchError, type LoadedCheckpoint } from './runtime/checkpoint.ts';
import {
  locateCheckpoint, modelBatchOf, resolveSampleSettings, runSampling, sampleConditions, sampleLayout, SampleSetupError,
  type LocatedCheckpoint, type SampleProgressOptions, type SampleSettings,
} from './runtime/sample-run.ts';
import { writeSamples, type WrittenSamples } from './runtime/video-out.ts';

export * from './spec-check.ts';
export { TARGETS, TARGET_TRAITS, isTarget, type Target } from './codegen/targets.ts';
export type { CompiledFiles, ValueLayout };
export { parameterList, type ParameterInfo } from './runtime/model-files.ts';
export { tuningStats, type TuningStats } from './runtime/tuning.ts';

/** A problem with what was handed to a step (not with the spec's text, which gives diagnostics). */
export class PipelineError extends Error {}

/** The kernel library cannot lower a node of this model yet; the spec itself is fine. */
export class LoweringError extends PipelineError {
  constructor(readonly model: string, readonly reason: string) {
    super(`cannot lower model ${model} yet: ${reason}`);
  }
}

export interface LowerOptions {
  /** a named target (kernels without an adapter, reproducible) ... */
  readonly target?: Target;
  /** ... or the traits of the adapter the program will run on (an opened Gpu has them) */
  readonly adapter?: AdapterTraits;
  /** the axis order of node values (default: each node's own) */
  readonly layout?: ValueLayout;
  /** fuse elementwise chains into one kernel (default: true) */
  readonly fuse?: boolean;
}

export interface LoweredModel extends CheckedModel {
  readonly lowered: LoweredGraph;
  /** the named target it was lowered for; absent when lowered for an adapter's own traits */
  readonly target?: Target;
}

/** Lowers the model onto kernels for a target or an adapter; LoweringError for what the kernels cannot do yet. */
export function lowerModel(model: CheckedModel, options: LowerOptions & { readonly target: Target }): LoweredModel & { readonly target: Target };
export function lowerModel(model: CheckedModel, options?: LowerOptions): LoweredModel;
export function lowerModel(model: CheckedModel, options: LowerOptions = {}): LoweredModel {
  if (options.target && options.adapter) throw new PipelineError('lowerModel: give a target or an adapter, not both');
  const traits = options.target ? TARGET_TRAITS[options.target] : options.adapter;
  let lowered: LoweredGraph;
  try {
    lowered = lowerGraph(model.graph, traits, options.layout ?? 'node', options.fuse ?? true);
  } catch (err) {
    throw new LoweringError(model.graph.model, err instanceof Error ? err.message : String(err));
  }
  return { file: model.file, graph: model.graph, lowered, ...(options.target ? { target: options.target } : {}) };
}

export interface PlannedModel extends LoweredModel {
  readonly plan: MemoryPlan;
}

/** Node values and scratch whose lifetimes do not overlap share slots (codegen/plan-memory.ts). */
export function planModel<M extends LoweredModel>(model: M): M & PlannedModel {
  return { ...model, plan: planMemory(model.lowered) };
}

/** The kernel files and program.json of a model planned for a named target (codegen/program-files.ts). */
export function programFiles(model: PlannedModel & { readonly target: Target }): CompiledFiles {
  return compiledFiles(model.graph, model.lowered, model.plan, model.target);
}

/**
 * Writes compiled files as the folder `dir`, swapped in whole (runtime/files.ts): a non-empty folder
 * `vdm compile` did not write is refused unless `force`; problems are FileErrors.
 */
export function writeProgramFolder(dir: string, compiled: CompiledFiles, options: { readonly force?: boolean } = {}): void {
  replaceFolder(dir, compiled.files, { force: options.force, by: 'vdm compile' });
}

/** Distinct kernels of a lowered model (what the adapter compiles). */
export const kernelCount = (model: LoweredModel): number => new Set(model.lowered.steps.map((s) => s.spec.key)).size;

export interface ReadParamsOptions {
  /** accept NaN and infinite values (default: refused, naming the tensor) */
  readonly allowNonfinite?: boolean;
}

export interface ParamsFile {
  /** every parameter of the model, by dotted path */
  readonly params: Map<string, Float64Array>;
  /** tensors of the file that are no parameter of the model (a checkpoint's EMA and Adam moments aside) */
  readonly unused: readonly string[];
}

/**
 * Parameters by dotted path from a safetensors file: every one the model has, with its shape and
 * finite values (unless allowNonfinite); the tensors the model does not use are listed.
 */
export function readParamsFile(graph: Graph, file: string, options: ReadParamsOptions = {}): ParamsFile {
  const st = readSafetensors(file);
  const out = new Map<string, Float64Array>();
  const problems: string[] = [];
  const params = graph.nodes.flatMap((n) => n.params);
  for (const p of params) {
    const t = Object.hasOwn(st.tensors, p.path) ? st.tensors[p.path] : undefined;
    if (!t) { problems.push(`missing ${p.path} [${p.shape}]`); continue; }
    if (t.shape.join() !== p.shape.join()) { problems.push(`${p.path} is [${t.shape}] in the file, the model needs [${p.shape}]`); continue; }
    if (t.data instanceof BigInt64Array) { problems.push(`${p.path} is ${t.dtype}; parameters must be floating point`); continue; }
    const values = Float64Array.from(t.data);
    if (!options.allowNonfinite) {
      let nan = 0, inf = 0, first = -1;
      values.forEach((v, i) => {
        if (Number.isNaN(v)) nan++; else if (!Number.isFinite(v)) inf++; else return;
        if (first < 0) first = i;
      });
      if (nan + inf) {
        problems.push(`${p.path} holds ${[nan ? `${nan} NaN` : '', inf ? `${inf} infinite` : ''].filter(Boolean).join(' and ')} `
          + `value${nan + inf === 1 ? '' : 's'} (the first at index ${first}); --allow-nonfinite runs with them anyway`);
        continue;
      }
    }
    out.set(p.path, values);
  }
  if (problems.length) throw new PipelineError(`${file} does not fit model ${graph.model}:\n${listed(problems)}`);
  const known = new Set(params.flatMap((p) => [p.path, `ema.${p.path}`, `adam.m.${p.path}`, `adam.v.${p.path}`]));
  return { params: out, unused: Object.keys(st.tensors).filter((name) => !known.has(name)).sort() };
}

/** The parameters of `readParamsFile`, without the list of unused tensors. */
export function readParams(graph: Graph, file: string, options: ReadParamsOptions = {}): Map<string, Float64Array> {
  return readParamsFile(graph, file, options).params;
}

const listed = (problems: readonly string[]) =>
  `  ${problems.slice(0, 8).join('\n  ')}${problems.length > 8 ? `\n  ... and ${problems.length - 8} more` : ''}`;

export interface ModelValues {
  /** parameter path -> values, in the shape the graph gives it (float32 values upload without a copy) */
  readonly params: ReadonlyMap<string, Float64Array | Float32Array>;
  /** input name -> value, in any axis order */
  readonly inputs: ReadonlyMap<string, NamedTensor>;
}

export interface LoadedModel {
  readonly model: PlannedModel;
  /** Runs `repeat` forward passes (default 1); outputs in the axis order the model declares. */
  run(options?: { readonly repeat?: number; readonly profile?: boolean }): Promise<GraphRun>;
  release(): void;
  /** bytes of device memory its buffers occupy (forwardMemoryOf's total) */
  readonly deviceBytes: number;
}

/** Uploads the parameters and inputs once; each run then only records, submits and reads back. */
export function load(gpu: Gpu, model: PlannedModel, values: ModelValues): LoadedModel {
  const problems: string[] = [];
  for (const name of model.lowered.inputs.keys()) if (!values.inputs.has(name)) problems.push(`no value for input '${name}'`);
  for (const [path, buffer] of model.lowered.params) {
    const data = values.params.get(path);
    const elements = model.lowered.buffers.get(buffer)!.elements;
    if (!data) problems.push(`no value for parameter '${path}'`);
    else if (data.length !== elements) problems.push(`parameter '${path}' has ${data.length} values, the model needs ${elements}`);
  }
  if (problems.length) throw new PipelineError(`the values do not fit model ${model.graph.model}:\n${listed(problems)}`);
  const loaded = loadLowered(gpu, model.lowered, values.inputs, values.params, { plan: model.plan });
  // Buffers may hold a value in another axis order (channels-last); callers see the declared one.
  const declared = new Map(model.graph.outputs.map((o) => [o.name, model.graph.nodes[o.node].axes]));
  const inDeclaredOrder = (name: string, t: NamedTensor): NamedTensor => {
    const axes = declared.get(name)!;
    return axes.every(([n], i) => t.axes[i]?.[0] === n) && axes.length === t.axes.length ? t : relayout(t, axes);
  };
  return {
    model,
    async run(options = {}) {
      const result = await loaded.run(options);
      return { ...result, outputs: new Map([...result.outputs].map(([name, t]) => [name, inDeclaredOrder(name, t)])) };
    },
    release: () => loaded.release(),
    get deviceBytes() { return loaded.deviceBytes; },
  };
}

/** A forward pass's planned device memory (what load allocates) and its dispatches, for a target. */
export function forwardMemoryOf(model: CheckedModel, target: Target = 'software'): { readonly memory: PlannedMemory; readonly dispatches: number } {
  const planned = planModel(lowerModel(model, { target }));
  return { memory: plannedMemory(planned.lowered, planned.plan), dispatches: planned.lowered.steps.length };
}

// ---------------------------------------------------------------- inputs, initial parameters, inspection

/**
 * Inputs by name from a safetensors file (`vdm run --inputs`, runtime/model-files.ts): every input
 * of the model, row-major in its declared axis order; a missing, extra or misshapen tensor is a
 * PipelineError of one line naming it.
 */
export function readInputsFile(graph: Graph, file: string): Map<string, NamedTensor> {
  try {
    return readInputs(graph, file);
  } catch (err) {
    if (err instanceof InputsFileError) throw new PipelineError(err.message);
    throw err;
  }
}

export interface InitialParamsOptions {
  readonly seed?: number;
  /**
   * move every entry a constant init set (zeros, ones) by up to ±0.2 (liveParams), so no
   * zero-initialised layer (adaLN-Zero, a final layer) switches a path off: what checks use
   */
  readonly perturb?: boolean;
}

/** The seeded initial parameters (`vdm init`, `vdm run` without --params), perturbed on request. */
export function initialParams(graph: Graph, options: InitialParamsOptions = {}): Map<string, Float64Array> {
  return options.perturb ? liveParams(graph, options.seed ?? 0) : initParams(graph, options.seed ?? 0);
}

/**
 * The seeded initial parameters as float32, the values initialParams rounds to on upload, drawn
 * without a float64 copy: what a forward pass on the GPU needs (`vdm run`), in half the memory.
 */
export function initialParams32(graph: Graph, seed = 0): Map<string, Float32Array> {
  return initParams(graph, seed, true);
}

/** Writes parameters as `--params` reads them and checkpoints hold them: F32, by dotted path. */
export function writeParamsFile(file: string, graph: Graph, params: ReadonlyMap<string, ArrayLike<number>>, metadata: Record<string, string> = {}): void {
  writeSafetensors(file, paramTensors(graph, params), { format: 'pt', 'vdm.model': graph.model, ...metadata });
}

export interface InspectedRun {
  /** every node's value by node id, over the node's axes in graph order */
  readonly values: readonly NamedTensor[];
  /** outputs in the axis order the model declares */
  readonly outputs: ReadonlyMap<string, NamedTensor>;
  readonly dispatches: number;
}

/**
 * One forward pass that keeps every node's value (`vdm run --dump`, `--compare`): lowered without
 * fusion and without a memory plan, so each node has a buffer of its own to read back.
 */
export async function inspectModel(gpu: Gpu, model: CheckedModel, values: ModelValues): Promise<InspectedRun> {
  const { lowered } = lowerModel(model, { adapter: gpu, fuse: false });
  const run = await runLowered(gpu, lowered, values.inputs, values.params, { everyNode: true });
  const { graph } = model;
  const nodeValues = graph.nodes.map((node): NamedTensor => {
    if (node.op === 'input') return relayout(values.inputs.get(String(node.attrs.name))!, node.axes);
    const v = lowered.values[node.id];
    const data = run.values.get(v.buffer);
    if (!data) throw new PipelineError(`node ${node.id} (${node.path}) has no value to read back`);
    return relayout({ axes: v.axes, data }, node.axes);
  });
  const outputs = new Map(graph.outputs.map((o) => [o.name, nodeValues[o.node]]));
  return { values: nodeValues, outputs, dispatches: lowered.steps.length };
}

// ---------------------------------------------------------------- training

/** The model cannot be trained (yet): no diffusion section, a loss term or primitive without GPU backward. */
export class UntrainableError extends PipelineError {}

/**
 * The training step of a checked model for the adapter `gpu` (codegen/training.ts). What it cannot
 * train is an UntrainableError: TrainingError's reasons as they are, and a primitive without a GPU
 * backward rule (or a node the kernels cannot lower) as "cannot train model X yet: ...".
 */
export function lowerForTraining(model: CheckedModel, gpu: Gpu, options: { readonly ema?: boolean; readonly recompute?: boolean } = {}): TrainingProgram {
  try {
    return lowerTraining(model.graph, { adapter: gpu, ema: options.ema, recompute: options.recompute });
  } catch (err) {
    if (err instanceof TrainingError) throw new UntrainableError(err.message);
    throw new UntrainableError(`cannot train model ${model.graph.model} yet: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export interface TrainSpecOptions extends SpecOptions, TrainOptions {
  /** opens the adapter (default: the process-wide openGpu) */
  readonly gpu?: () => Promise<Gpu>;
  /** recompute each block's forward before its backward: less memory, about one more forward pass */
  readonly recompute?: boolean;
}

/** What a run is about to do, once everything is checked and compiled (for a header line). */
export interface TrainStart {
  readonly prepared: PreparedTraining;
  readonly program: TrainingProgram;
  readonly gpu: Gpu;
  readonly parameters: number;
}

export interface TrainSpecHooks extends TrainHooks {
  /** Called before the first step. */
  readonly start?: (info: TrainStart) => void;
  /** Notes from preparing: settings taken from the checkpoint, overrides, skipped files. */
  readonly note?: (message: string) => void;
}

export type TrainSpecResult =
  | { readonly ok: true; readonly model: CheckedModel; readonly result: TrainResult }
  | { readonly ok: false; readonly diagnostics: readonly Diagnostic[] };

/**
 * Trains the model of `file`: its problems come back as diagnostics; a run that cannot start
 * throws TrainSetupError, SpecMismatchError / CheckpointError, DataError, NoAdapterError or
 * UntrainableError (all found before the first step, most before the GPU is opened), one that
 * diverges DivergedError.
 */
export async function trainSpec(file: string, options: TrainSpecOptions, hooks: TrainSpecHooks = {}): Promise<TrainSpecResult> {
  const checked = checkSpec(file, { dims: options.dims, root: options.root, purpose: options.purpose ?? 'vdm train' });
  if (!checked.ok) return checked;
  const prepared = await prepareTraining(checked.model.graph, options);
  for (const n of prepared.notes) hooks.note?.(n);
  const done = nothingToDo(prepared);
  if (done) return { ok: true, model: checked.model, result: done };
  const gpu = await (options.gpu ?? openGpu)();
  const program = lowerForTraining(checked.model, gpu, { ema: prepared.settings.ema, recompute: options.recompute });
  hooks.start?.({ prepared, program, gpu, parameters: program.arena.reduce((n, e) => n + e.length, 0) });
  const result = await train(gpu, program, prepared, hooks);
  return { ok: true, model: checked.model, result };
}

/** A training step's planned device memory and its dispatch count. */
export interface TrainingFootprint {
  readonly memory: TrainingMemory;
  readonly dispatches: number;
}

export type TrainingMemoryReport =
  | { readonly ok: true; readonly batch: number; readonly kept: TrainingFootprint; readonly recompute: TrainingFootprint }
  | { readonly ok: false; readonly message: string };

/**
 * The peak device memory of one training step of a checked model (`vdm info --train`), keeping
 * every block's values and with `--recompute`; no GPU needed.
 */
export function trainingMemoryOf(model: CheckedModel, target: Target = 'software'): TrainingMemoryReport {
  try {
    const footprint = (recompute: boolean) => {
      const program = lowerTraining(model.graph, { adapter: TARGET_TRAITS[target], recompute });
      return { program, memory: trainingMemory(program), dispatches: program.lowered.steps.length };
    };
    const kept = footprint(false), recompute = footprint(true);
    return { ok: true, batch: kept.program.batch, kept: { memory: kept.memory, dispatches: kept.dispatches }, recompute: { memory: recompute.memory, dispatches: recompute.dispatches } };
  } catch (err) {
    if (err instanceof TrainingError || (err instanceof Error && /no GPU backward rule/.test(err.message))) return { ok: false, message: err.message };
    throw err;
  }
}

// ---------------------------------------------------------------- sampling

/** The model cannot be sampled (yet): its output does not fit its noisy input, a node the kernels cannot lower. */
export class UnsampleableError extends PipelineError {}

/** The sampling program of a model checked at its sampling batch (codegen/sampling.ts), for the adapter `gpu`. */
export function lowerForSampling(model: CheckedModel, adapter: AdapterTraits, s: Pick<SampleSettings, 'sampler' | 'steps' | 'eta' | 'guidance' | 'clip' | 'keepFirst'>): SamplingProgram {
  try {
    return lowerSampling(model.graph, { adapter, sampler: s.sampler, steps: s.steps, eta: s.eta, guidance: s.guidance, clip: s.clip, keepFirst: s.keepFirst });
  } catch (err) {
    if (err instanceof SamplingError) throw new UnsampleableError(err.message);
    throw new UnsampleableError(`cannot sample model ${model.graph.model} yet: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export interface SampleSpecOptions {
  /** the spec the checkpoint was trained on (checkpoints store its graph, not its file) */
  readonly spec?: string;
  /** the folder imports must stay in */
  readonly root?: string;
  /** flags given; the rest from the spec's sampler and guidance, else the defaults */
  readonly settings?: Partial<SampleSettings>;
  /** the folder for the files (default: <checkpoint folder>/samples/step-NNNNNN) */
  readonly out?: string;
  /** opens the adapter (default: the process-wide openGpu) */
  readonly gpu?: () => Promise<Gpu>;
  /** also write an MP4 when ffmpeg is installed (default true) */
  readonly mp4?: boolean;
}

/** What sampling is about to do, once everything is checked and compiled (for a header line). */
export interface SampleStart {
  readonly checkpoint: LocatedCheckpoint;
  readonly settings: SampleSettings;
  /** 'ema': the checkpoint's EMA weights; 'weights': its raw weights */
  readonly weights: 'ema' | 'weights';
  readonly program: SamplingProgram;
  readonly gpu: Gpu;
}

export interface SampleSpecHooks extends SampleProgressOptions {
  readonly start?: (info: SampleStart) => void;
  /** Things to tell the user: a damaged newer checkpoint passed over, no EMA, no ffmpeg. */
  readonly note?: (message: string) => void;
}

export interface SampleResult {
  readonly model: string;
  readonly checkpoint: string;
  readonly step: number;
  readonly weights: 'ema' | 'weights';
  readonly settings: SampleSettings;
  /** the n samples in the noisy input's layout, and their classes when the model takes one */
  readonly samples: Float32Array;
  readonly shape: readonly number[];
  readonly labels: Int32Array | null;
  readonly out: string;
  readonly files: WrittenSamples;
  /** seconds of the loop, and of its first step alone (which compiles the kernels) */
  readonly seconds: number;
  readonly firstStepSeconds: number;
}

export type SampleSpecResult =
  | { readonly ok: true; readonly result: SampleResult }
  | { readonly ok: false; readonly file: string; readonly diagnostics: readonly Diagnostic[] };

/**
 * The model of `spec` at the dims the checkpoint was trained at (--batch, --dim; else as written,
 * so that loadCheckpoint names what differs) and the checkpoint loaded for it; a checkpoint of
 * another spec is a SpecMismatchError that says to pass the right --spec.
 */
export function specOfCheckpoint(ckpt: LocatedCheckpoint, spec: string, root: string | undefined, purpose: string):
  | { readonly ok: true; readonly model: CheckedModel; readonly loaded: LoadedCheckpoint }
  | { readonly ok: false; readonly file: string; readonly diagnostics: readonly Diagnostic[] } {
  const at = (dims?: Readonly<Record<string, number>>) => checkSpec(spec, { dims, root, purpose });
  let trained = at(ckpt.dims);
  if (!trained.ok) trained = at();
  if (!trained.ok) return { ok: false, file: spec, diagnostics: trained.diagnostics };
  try {
    return { ok: true, model: trained.model, loaded: loadCheckpoint(ckpt.file, trained.model.graph) };
  } catch (e) {
    if (!(e instanceof SpecMismatchError)) throw e;
    const shown = e.changes.slice(0, 6).map((c) => `  ${c}`).join('\n') + (e.changes.length > 6 ? `\n  ... and ${e.changes.length - 6} more` : '');
    throw new SpecMismatchError(`${ckpt.file} was trained on a different spec than ${spec}:\n${shown}\npass the spec it was trained on with --spec`, e.changes);
  }
}

/**
 * Samples from a checkpoint (a file, or a run folder's newest) of the model of `options.spec` and
 * writes a GIF, a PNG grid, the tensors and an MP4. The spec's problems come back as diagnostics;
 * what cannot be done as asked throws SampleSetupError, SpecMismatchError / CheckpointError,
 * NoAdapterError or UnsampleableError, all before the GPU is opened except the last.
 */
export async function sampleSpec(source: string, options: SampleSpecOptions, hooks: SampleSpecHooks = {}): Promise<SampleSpecResult> {
  const ckpt = locateCheckpoint(source, hooks.note);
  if (!options.spec) throw new SampleSetupError(`${ckpt.file} holds model ${ckpt.model} but not the spec file it was written from: name it with --spec FILE.vdm`);
  const spec = options.spec;
  const at = (dims?: Readonly<Record<string, number>>) => checkSpec(spec, { dims, root: options.root, purpose: 'vdm sample' });
  const found = specOfCheckpoint(ckpt, spec, options.root, 'vdm sample');
  if (!found.ok) return found;
  const { model: trained, loaded } = found;
  for (const w of loaded.warnings) hooks.note?.(w);
  const settings = resolveSampleSettings(trained.graph, options.settings ?? {});
  const weights = settings.ema && loaded.ema ? 'ema' : 'weights';
  if (settings.ema && !loaded.ema) hooks.note?.(`${path.basename(ckpt.file)} has no EMA weights (trained with --no-ema): sampling with its weights`);
  const params = weights === 'ema' ? loaded.ema! : loaded.params;

  const checked = at({ ...trained.graph.dims, b: modelBatchOf(settings) });
  if (!checked.ok) return { ok: false, file: spec, diagnostics: checked.diagnostics };
  const graph = checked.model.graph;
  for (const p of graph.nodes.flatMap((n) => n.params)) {
    if (params.get(p.path)?.length !== p.shape.reduce((a, b) => a * b, 1)) throw new SampleSetupError(`parameter ${p.path} [${p.shape}] changes with the batch size, so model ${graph.model} cannot sample ${settings.n} at a time: pass --n ${trained.graph.dims.b}`);
  }
  const conditions = sampleConditions(graph, settings);
  for (const n of conditions.notes) hooks.note?.(n);
  const layout = sampleLayout(graph, settings.n);
  const out = options.out ?? path.join(ckpt.dir, 'samples', checkpointName(ckpt.step).replace(/\.safetensors$/, ''));
  if (fs.statSync(out, { throwIfNoEntry: false })?.isFile()) throw new SampleSetupError(`--out ${out} is a file; name a folder for the samples`);

  const gpu = await (options.gpu ?? openGpu)();
  const program = lowerForSampling(checked.model, gpu, settings);
  hooks.start?.({ checkpoint: ckpt, settings, weights, program, gpu });
  const run = await runSampling(gpu, program, params, conditions, settings.seed, hooks);
  const metadata: Record<string, string> = {
    'vdm.model': graph.model, 'vdm.checkpoint': path.basename(ckpt.file), 'vdm.step': String(ckpt.step), 'vdm.weights': weights,
    'vdm.axes': graph.inputs.find((i) => i.name === graph.diffusion!.noisy_input)!.axes.map(([a]) => a).join(','),
    'vdm.sampler': settings.sampler, 'vdm.steps': String(settings.steps), 'vdm.eta': String(settings.eta),
    'vdm.guidance': settings.guidance === null ? 'none' : String(settings.guidance), 'vdm.clip': String(settings.clip), 'vdm.seed': String(settings.seed),
    'vdm.timesteps': program.timesteps.join(','),
    ...(settings.caption !== null ? { 'vdm.caption': settings.caption } : {}),
    ...(settings.classId !== null ? { 'vdm.class': String(settings.classId) } : {}),
    // What the samples were conditioned on, as given on the command line.
    ...(settings.images.length ? { 'vdm.image': settings.images.join(';') } : {}),
    ...(settings.textEmbeddings.length ? { 'vdm.text_embedding': settings.textEmbeddings.join(';') } : {}),
    ...(settings.attrs.length ? { 'vdm.attr': settings.attrs.join(';') } : {}),
    ...(settings.trajectories.length ? { 'vdm.trajectory': settings.trajectories.join(';') } : {}),
    ...(settings.motions.length ? { 'vdm.motion': settings.motions.join(';') } : {}),
    ...(program.keepFirst ? { 'vdm.keep_first': program.keepFirst.input } : {}),
  };
  let files: WrittenSamples;
  try {
    files = writeSamples(out, { ...layout, data: run.samples }, { fps: settings.fps, labels: conditions.labels, metadata, mp4: options.mp4 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw new SampleSetupError(`--out ${out}: cannot write there (${code})`);
    throw e;
  }
  for (const n of files.notes) hooks.note?.(n);
  return {
    ok: true,
    result: {
      model: graph.model, checkpoint: ckpt.file, step: ckpt.step, weights, settings, samples: run.samples, shape: layout.shape,
      labels: conditions.labels, out, files, seconds: run.seconds, firstStepSeconds: run.firstStepSeconds,
    },
  };
}
