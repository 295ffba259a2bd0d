// Training checkpoints: one safetensors file per saved step, readable by any safetensors reader
// (PyTorch's `safetensors.torch.load_file` included) and by `vdm run --params`, which takes the
// weights by dotted path and ignores the rest.
//
//   <path>            the weights, f32, named by the parameter's dotted path (blocks.0.attn.qkv.weight)
//   ema.<path>        the exponential moving average of the weights (when kept)
//   adam.m.<path>     Adam's first and second moments (when kept)
//   adam.v.<path>
//   __metadata__      strings only (the format allows nothing else): see META below
//
// A folder holds `step-000300.safetensors` and its predecessors (the last `keep`), `latest.json`
// naming the newest for people and tools, and nothing else of ours. Every file is written
// atomically (temporary file, fsync, rename, fsync of the folder), so a crash leaves the previous
// checkpoint whole; `findLatest` does not trust `latest.json` (a crash may come between the
// checkpoint's rename and the pointer's) but takes the highest step whose file reads back whole.
//
// A checkpoint records the spec it was trained on as the canonical JSON of its checked graph.
// Loading it with another spec is refused with the difference in meaning, as `vdm diff` sees it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Graph, GraphParam } from '../compiler/ir/graph.ts';
import type { Json } from '../compiler/ir/json.ts';
import { diffGraphs, type GraphDiff } from '../compiler/review/diff.ts';
import { human } from '../compiler/review/diff-render.ts';
import {
  ATOMIC_TEMP, readSafetensors, readSafetensorsHeader, SafetensorsError, writeFileAtomic, writeSafetensors, emptyRecord, type SafeTensor,
} from './safetensors.ts';

/** Bumped when the layout of tensors or metadata changes in a way older readers cannot follow. */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** Metadata keys. `format: pt` is the convention Hugging Face loaders look for. */
const META = {
  format: 'format',
  version: 'vdm.checkpoint',
  step: 'vdm.step',
  model: 'vdm.model',
  specHash: 'vdm.spec_sha256',
  spec: 'vdm.spec',
  rng: 'vdm.rng',
  data: 'vdm.data',
  options: 'vdm.options',
  groups: 'vdm.groups',
  tensorsHash: 'vdm.tensors_sha256',
} as const;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** The file is not a whole, readable checkpoint (truncated, damaged, not ours): an older one may do. */
export class CorruptCheckpointError extends CheckpointError {
  override name = 'CorruptCheckpointError';
}

/** The checkpoint was trained on another spec; `changes` lists the differences in meaning. */
export class SpecMismatchError extends CheckpointError {
  override name = 'SpecMismatchError';
  constructor(message: string, readonly changes: readonly string[]) {
    super(message);
  }
}

/** Tensors by parameter path. */
export type ParamTensors = ReadonlyMap<string, Float32Array>;

/** Counter-based RNG state (see codegen/kernels/philox.ts): the seed and any named counters. */
export interface RngState {
  readonly seed: number;
  readonly [counter: string]: number;
}

export interface CheckpointState {
  /** Optimizer steps taken; the checkpoint holds the weights after this many. */
  readonly step: number;
  readonly params: ParamTensors;
  readonly ema?: ParamTensors;
  readonly adam?: { readonly m: ParamTensors; readonly v: ParamTensors };
  readonly rng: RngState;
  /** Where the data loader is (epoch, index, ...): enough to continue without repeating samples. */
  readonly data: Readonly<Record<string, Json>>;
  /** The training options the run was started with (learning rate, schedule, batch, ...). */
  readonly options: Readonly<Record<string, Json>>;
}

export interface LoadedCheckpoint extends CheckpointState {
  readonly file: string;
  readonly formatVersion: number;
  readonly specHash: string;
  /** Things the caller may want to tell the user (none for a checkpoint of the same spec). */
  readonly warnings: readonly string[];
}

// ---------------------------------------------------------------- the spec's identity

/** JSON with object keys sorted at every level: equal values give equal text. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The graph as it matters to trained tensors, as canonical JSON. Left out: the file's path and
 * source spans (moving or reformatting a spec changes neither the model nor its tensors) and
 * initialisations, the `init` of parameters and of node attributes (a resumed run never
 * initialises, so changing one must not lock a run out of its checkpoints).
 */
export function canonicalGraphJson(graph: Graph): string {
  const { file: _file, ...rest } = graph;
  return canonicalJson({
    ...rest,
    nodes: graph.nodes.map(({ span: _span, params, attrs, ...n }) => {
      const { init: _init, ...kept } = attrs;
      return { ...n, attrs: kept, params: params.map(({ init: _pinit, ...p }) => p) };
    }),
  });
}

/** sha256 (hex) of the canonical graph JSON: equal exactly when two specs build the same model. */
export function specHash(graph: Graph): string {
  return crypto.createHash('sha256').update(canonicalGraphJson(graph)).digest('hex');
}

/** A canonical graph read back as a Graph for `diffGraphs` (which reads neither spans nor the file). */
function graphFromCanonical(json: string, file: string): Graph {
  const g = JSON.parse(json) as Omit<Graph, 'file'>;
  const nowhere = { file, line: 0, col: 0, endLine: 0, endCol: 0 };
  return {
    ...g, file,
    nodes: g.nodes.map((n) => ({ ...n, span: nowhere, params: n.params.map((p) => ({ ...p, init: '' })) })),
  };
}

const showJson = (v: Json): string => (v === null ? 'none' : typeof v === 'string' ? v : JSON.stringify(v).replace(/"/g, '').replace(/,/g, ', ').replace(/:/g, ': '));
const showShape = (s: readonly number[] | null) => (s ? `[${s.join(', ')}]` : '-');
const times = (n: number) => (n > 1 ? ` (${n}x)` : '');

/** The differences of a GraphDiff, one short line each, in the order a person would look. */
function changeLines(d: GraphDiff): string[] {
  const value = (what: string, c: { name: string; a: string | null; b: string | null }) =>
    (c.a === null ? `${what} ${c.name} added: ${c.b}` : c.b === null ? `${what} ${c.name} removed (was ${c.a})` : `${what} ${c.name}: ${c.a} -> ${c.b}`);
  return [
    ...(d.a.model === d.b.model ? [] : [`model ${d.a.model} -> ${d.b.model}`]),
    ...d.dims.map((c) => value('dim', c)),
    ...d.inputs.map((c) => value('input', c)),
    ...d.outputs.map((c) => value('output', c)),
    ...d.modules.added.map((m) => `added ${m.path}${times(m.count)}: +${human(m.params)} params`),
    ...d.modules.removed.map((m) => `removed ${m.path}${times(m.count)}: -${human(m.params)} params`),
    ...d.modules.renamed.map((m) => `renamed ${m.from} -> ${m.to}${times(m.count)}`),
    ...d.params.map((p) => (p.a === null ? `added ${p.path}${times(p.count)} ${showShape(p.b)}`
      : p.b === null ? `removed ${p.path}${times(p.count)} ${showShape(p.a)}` : `${p.path}${times(p.count)}: ${showShape(p.a)} -> ${showShape(p.b)}`)),
    ...d.attention.map((c) => `${c.path}${times(c.count)} attention ${c.attr}: ${showJson(c.a)} -> ${showJson(c.b)}`),
    ...d.factorization.map((f) => `${f.op} at ${f.at}: ${f.a.join(' + ')} -> ${f.b.join(' + ')}`),
    ...d.layers.map((c) => `${c.path}${times(c.count)} (${c.op}) ${c.attr}: ${showJson(c.a)} -> ${showJson(c.b)}`),
    ...d.shapes.map((c) => `${c.path}${times(c.count)} (${c.op}) output: ${c.a} -> ${c.b}`),
    ...d.diffusion.map((c) => value('diffusion', c)),
    ...(d.structure ? [d.structure] : []),
  ];
}

/** What changed from the spec a checkpoint was trained on to `current`, as short lines ([] if nothing). */
export function describeSpecChange(trained: Graph, current: Graph): string[] {
  const d = diffGraphs(trained, current, { a: 'checkpoint', b: 'spec' });
  return d.same ? [] : changeLines(d);
}

// ---------------------------------------------------------------- files in a checkpoint folder

const CHECKPOINT_FILE = /^step-(\d+)\.safetensors$/;
export const LATEST_POINTER = 'latest.json';

/** `step-000300.safetensors`: zero-padded so a listing sorts by step (wider past 999999). */
export const checkpointName = (step: number): string => `step-${String(step).padStart(6, '0')}.safetensors`;

/** The checkpoints in a folder, oldest first; temporary files and other names are not listed. */
export function listCheckpoints(dir: string): { step: number; file: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CheckpointError(`${dir}: cannot list checkpoints (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return names.flatMap((n) => {
    const m = CHECKPOINT_FILE.exec(n);
    return m ? [{ step: Number(m[1]), file: path.join(dir, n) }] : [];
  }).sort((a, b) => a.step - b.step);
}

// ---------------------------------------------------------------- save

type Group = 'params' | 'ema' | 'adam';

/** Every tensor of the state, checked against the graph's parameters (names, element counts). */
function stateTensors(graph: Graph, state: CheckpointState): { tensors: Record<string, SafeTensor>; groups: Group[] } {
  const params: GraphParam[] = graph.nodes.flatMap((n) => n.params);
  const tensors = emptyRecord<SafeTensor>(); // keyed by the spec's parameter paths
  const problems: string[] = [];
  const groups: Group[] = ['params'];
  const sets: [string, string, ParamTensors][] = [['', 'weights', state.params]];
  if (state.ema) { groups.push('ema'); sets.push(['ema.', 'ema', state.ema]); }
  if (state.adam) { groups.push('adam'); sets.push(['adam.m.', 'adam.m', state.adam.m], ['adam.v.', 'adam.v', state.adam.v]); }
  for (const [prefix, what, values] of sets) {
    const known = new Set<string>();
    for (const p of params) {
      known.add(p.path);
      const data = values.get(p.path);
      const count = p.shape.reduce((a, b) => a * b, 1);
      if (!data) { problems.push(`${what}: no value for ${p.path} [${p.shape.join(', ')}]`); continue; }
      if (data.length !== count) { problems.push(`${what}: ${p.path} has ${data.length} values, [${p.shape.join(', ')}] needs ${count}`); continue; }
      const name = prefix + p.path;
      // A model with a module named `ema` or `adam` could collide with the optimizer's names.
      if (name in tensors) { problems.push(`tensor name ${name} is used twice (a parameter path collides with the ${what} prefix)`); continue; }
      tensors[name] = { dtype: 'F32', shape: [...p.shape], data };
    }
    for (const k of values.keys()) if (!known.has(k)) problems.push(`${what}: ${k} is not a parameter of model ${graph.model}`);
  }
  if (problems.length) throw new CheckpointError(`cannot save step ${state.step}: the state does not fit model ${graph.model}:\n${listed(problems)}`);
  return { tensors, groups };
}

const listed = (problems: readonly string[], max = 8) =>
  `  ${problems.slice(0, max).join('\n  ')}${problems.length > max ? `\n  ... and ${problems.length - max} more` : ''}`;

/** sha256 of the tensor bytes in file order (sorted by name): catches damage inside the data. */
function tensorsHash(tensors: Record<string, SafeTensor>): string {
  const h = crypto.createHash('sha256');
  for (const name of Object.keys(tensors).sort()) {
    const d = tensors[name].data;
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
}

/** The safetensors metadata of a checkpoint: strings only. */
export function checkpointMetadata(graph: Graph, state: CheckpointState, groups: readonly string[], hashOfTensors: string): Record<string, string> {
  const spec = canonicalGraphJson(graph);
  return {
    [META.format]: 'pt',
    [META.version]: String(CHECKPOINT_FORMAT_VERSION),
    [META.step]: String(state.step),
    [META.model]: graph.model,
    [META.specHash]: crypto.createHash('sha256').update(spec).digest('hex'),
    [META.spec]: spec,
    [META.rng]: canonicalJson(state.rng),
    [META.data]: canonicalJson(state.data),
    [META.options]: canonicalJson(state.options),
    [META.groups]: groups.join(','),
    [META.tensorsHash]: hashOfTensors,
  };
}

export interface SaveOptions {
  /** How many checkpoints to keep, newest first (default 3; at least 1). */
  readonly keep?: number;
}

export interface SavedCheckpoint {
  readonly file: string;
  /** Checkpoints and stray temporary files deleted: older than the last `keep`, or later than this step. */
  readonly removed: readonly string[];
}

/**
 * Saves `state` as `<dir>/step-NNNNNN.safetensors`, points `latest.json` at it, then removes
 * checkpoints beyond the last `keep` and any of a later step: those belong to a run this one
 * resumed before, and would otherwise be taken for the newest on the next resume.
 */
export function saveCheckpoint(dir: string, graph: Graph, state: CheckpointState, options: SaveOptions = {}): SavedCheckpoint {
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw new CheckpointError(`step must be a non-negative integer, got ${state.step}`);
  if (typeof state.rng?.seed !== 'number') throw new CheckpointError('rng.seed must be a number');
  const keep = Math.max(1, options.keep ?? 3);
  const { tensors, groups } = stateTensors(graph, state);
  const metadata = checkpointMetadata(graph, state, groups, tensorsHash(tensors));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, checkpointName(state.step));
  try {
    writeSafetensors(file, tensors, metadata);
  } catch (e) {
    throw new CheckpointError((e as Error).message);
  }
  const pointer = { step: state.step, file: path.basename(file), model: graph.model, spec_sha256: metadata[META.specHash] };
  try {
    writeFileAtomic(path.join(dir, LATEST_POINTER), [new TextEncoder().encode(`${JSON.stringify(pointer, null, 2)}\n`)]);
  } catch (e) {
    throw new CheckpointError(`${path.join(dir, LATEST_POINTER)}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const removed: string[] = [];
  const older = listCheckpoints(dir).filter((c) => c.step < state.step);
  const stale = [...older.slice(0, Math.max(0, older.length - (keep - 1))), ...listCheckpoints(dir).filter((c) => c.step > state.step)];
  for (const c of stale) { fs.rmSync(c.file, { force: true }); removed.push(c.file); }
  removed.push(...removeStaleTemps(dir));
  return { file, removed };
}

/** Temporary files left by writers that died (their process is gone): a crashed save's debris. */
function removeStaleTemps(dir: string): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync(dir)) {
    const m = ATOMIC_TEMP.exec(n);
    if (!m || !(CHECKPOINT_FILE.test(m[1]) || m[1] === LATEST_POINTER)) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(dir, n), { force: true });
    out.push(path.join(dir, n));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

// ---------------------------------------------------------------- find and load

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Reads a checkpoint's header and metadata (not its data) and checks that they are whole and
 * ours. Throws CorruptCheckpointError otherwise.
 */
export function readCheckpointHeader(file: string): { step: number; formatVersion: number; metadata: Record<string, string>; tensors: Record<string, { dtype: string; shape: number[] }> } {
  let header;
  try {
    header = readSafetensorsHeader(file);
  } catch (e) {
    throw new CorruptCheckpointError(e instanceof SafetensorsError ? `unreadable checkpoint: ${e.message}` : `${file}: unreadable checkpoint (${reason(e)})`);
  }
  const { metadata } = header;
  const missing = Object.values(META).filter((k) => k !== META.format && !(k in metadata));
  if (missing.length) {
    throw new CorruptCheckpointError(`${file}: not a vdm training checkpoint (its metadata lacks ${missing.join(', ')})`);
  }
  const formatVersion = Number(metadata[META.version]);
  if (!Number.isSafeInteger(formatVersion) || formatVersion < 1) throw new CorruptCheckpointError(`${file}: checkpoint format version '${metadata[META.version]}' is not a version`);
  if (formatVersion > CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(`${file}: written by a newer vdm (checkpoint format ${formatVersion}; this one reads up to ${CHECKPOINT_FORMAT_VERSION}); upgrade vdm to resume it`);
  }
  const step = Number(metadata[META.step]);
  if (!Number.isSafeInteger(step) || step < 0) throw new CorruptCheckpointError(`${file}: step '${metadata[META.step]}' is not a step number`);
  return { step, formatVersion, metadata, tensors: header.tensors };
}

export interface FoundCheckpoint {
  readonly file: string;
  readonly step: number;
  /** Newer checkpoints that could not be read, with the reason: the caller should say so. */
  readonly skipped: readonly { readonly file: string; readonly reason: string }[];
}

/**
 * The newest checkpoint in `dir` whose header reads back whole (for --resume), or null when there
 * is none. Unreadable newer ones (a truncated copy, a damaged disk) are passed over and listed in
 * `skipped`, and reported through `warn` when given.
 */
export function findLatest(dir: string, warn?: (message: string) => void): FoundCheckpoint | null {
  const skipped: { file: string; reason: string }[] = [];
  for (const c of listCheckpoints(dir).reverse()) {
    try {
      const h = readCheckpointHeader(c.file);
      if (h.step !== c.step) throw new CorruptCheckpointError(`${c.file}: holds step ${h.step}, not ${c.step} as its name says`);
    } catch (e) {
      if (!(e instanceof CorruptCheckpointError)) throw e;
      skipped.push({ file: c.file, reason: e.message });
      warn?.(`skipping ${path.basename(c.file)}: ${e.message}`);
      continue;
    }
    if (skipped.length) warn?.(`resuming from the previous checkpoint, ${path.basename(c.file)}`);
    return { file: c.file, step: c.step, skipped };
  }
  return null;
}

function parseJsonField<T>(file: string, metadata: Record<string, string>, key: string): T {
  try {
    return JSON.parse(metadata[key]) as T;
  } catch (e) {
    throw new CorruptCheckpointError(`${file}: metadata ${key} is not valid JSON (${reason(e)})`);
  }
}

/**
 * Loads a checkpoint for `graph`. Refuses one of another spec (SpecMismatchError naming the
 * differences), a file that is not whole (CorruptCheckpointError), and one whose tensors do not
 * match the graph's parameters by name and shape (CheckpointError listing them).
 */
export function loadCheckpoint(file: string, graph: Graph): LoadedCheckpoint {
  // The header first: a spec mismatch is reported without reading gigabytes of data.
  const { step, formatVersion, metadata } = readCheckpointHeader(file);
  const warnings: string[] = [];
  const storedHash = metadata[META.specHash];
  const currentHash = specHash(graph);
  if (storedHash !== currentHash) {
    let trained: Graph;
    try {
      trained = graphFromCanonical(metadata[META.spec], file);
    } catch (e) {
      throw new CorruptCheckpointError(`${file}: the stored spec is not valid graph JSON (${reason(e)})`);
    }
    const changes = describeSpecChange(trained, graph);
    if (changes.length) {
      throw new SpecMismatchError(
        `${file} was trained on a different spec than ${graph.file}:\n${listed(changes, 6)}\n` +
        'train into a new folder with --out, or pass the spec this checkpoint was trained on', changes);
    }
    // Same meaning by every measure of `vdm diff`, yet another hash: the graph's JSON gained or
    // changed a field that does not alter the model. The tensor check below still guards the load.
    warnings.push(`${path.basename(file)}: spec hash ${storedHash.slice(0, 12)} differs from ${currentHash.slice(0, 12)} but the specs build the same model; resuming`);
  }

  let st;
  try {
    st = readSafetensors(file);
  } catch (e) {
    throw new CorruptCheckpointError(e instanceof SafetensorsError ? `unreadable checkpoint: ${e.message}` : `${file}: unreadable checkpoint (${reason(e)})`);
  }
  const groups = metadata[META.groups].split(',').filter(Boolean);
  const prefixes: [string, string][] = [['', 'weights']];
  if (groups.includes('ema')) prefixes.push(['ema.', 'ema']);
  if (groups.includes('adam')) prefixes.push(['adam.m.', 'adam.m'], ['adam.v.', 'adam.v']);
  const problems: string[] = [];
  const sets = new Map<string, Map<string, Float32Array>>(prefixes.map(([, what]) => [what, new Map()]));
  const expected = new Set<string>();
  for (const p of graph.nodes.flatMap((n) => n.params)) {
    for (const [prefix, what] of prefixes) {
      const name = prefix + p.path;
      expected.add(name);
      const t = st.tensors[name];
      if (!t) { problems.push(`missing ${name} [${p.shape.join(', ')}]`); continue; }
      if (t.dtype !== 'F32') { problems.push(`${name} is ${t.dtype}; checkpoints hold F32`); continue; }
      if (t.shape.join() !== p.shape.join()) { problems.push(`${name} is [${t.shape.join(', ')}] in the checkpoint, the model needs [${p.shape.join(', ')}]`); continue; }
      sets.get(what)!.set(p.path, t.data as Float32Array);
    }
  }
  for (const name of Object.keys(st.tensors)) if (!expected.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length) throw new CheckpointError(`${file} does not fit model ${graph.model}:\n${listed(problems)}`);
  if (tensorsHash(st.tensors) !== metadata[META.tensorsHash]) {
    throw new CorruptCheckpointError(`${file}: the tensor data is damaged (its sha256 differs from the one recorded when it was saved)`);
  }
  const rng = parseJsonField<RngState>(file, metadata, META.rng);
  if (typeof rng?.seed !== 'number') throw new CorruptCheckpointError(`${file}: metadata ${META.rng} has no numeric seed`);
  return {
    file, step, formatVersion, specHash: storedHash, warnings,
    params: sets.get('weights')!,
    ema: sets.get('ema'),
    adam: sets.has('adam.m') ? { m: sets.get('adam.m')!, v: sets.get('adam.v')! } : undefined,
    rng,
    data: parseJsonField(file, metadata, META.data),
    options: parseJsonField(file, metadata, META.options),
  };
}

/**
 * --resume: loads the newest checkpoint in `dir` that is whole, passing over damaged ones (with a
 * warning); null when the folder has none. A spec mismatch is not passed over: it is the user's to fix.
 */
export function resumeLatest(dir: string, graph: Graph, warn?: (message: string) => void): LoadedCheckpoint | null {
  for (const c of listCheckpoints(dir).reverse()) {
    try {
      const loaded = loadCheckpoint(c.file, graph);
      for (const w of loaded.warnings) warn?.(w);
      return loaded;
    } catch (e) {
      if (!(e instanceof CorruptCheckpointError)) throw e;
      warn?.(`skipping ${path.basename(c.file)}: ${e.message}; trying the previous checkpoint`);
    }
  }
  return null;
}
