// The conditioning inputs of `vdm sample`, at the sampling batch, from the flags:
//   label       --class K (else sample j gets j mod classes)
//   text        --caption TEXT (embedded as vdm train embeds captions) or --text-embedding FILE
//               (a safetensors file with one float tensor [l, c] or [1, l, c])
//   image       --image FILE.png: decoded and converted as training data is (data/pixels.ts: cover-
//               resize and centre-crop to the input's h×w, channels from RGB, [-1, 1])
//   scalar      --attr NAME=VALUE, within the input's range
//   trajectory  --trajectory FILE.json: [t, n, 2] points in [0, 1]^2 for every sample, or [N, t, n, 2]
//   motion      --motion FILE: [2, t, h, w] displacements (dx, dy) in pixels per frame for every
//               sample, or [N, 2, t, h, w]; FILE.safetensors (one F32 tensor) or FILE.json (nested arrays)
// Several inputs of one kind are named (--image first=a.png); a bare value fills the only one.
// Under classifier-free guidance the unconditional half gets what guidance dropout trained
// (train-loop.ts, data/conditions.ts): the null class and zero text; images, scalars and
// trajectories and motion maps are the same in both halves. A scalar has no default: training draws it at random
// (synthetic data) or reads it from labels.csv, so there is no value a model saw as "no speed".
// Every problem is one SampleSetupError naming the flag (and file), thrown before anything is written.
import fs from 'node:fs';
import { PNG } from 'pngjs';
import type { Graph, GraphInput } from '../compiler/ir/graph.ts';
import { wordEmbedding } from './data/conditions.ts';
import { resizeCrop, writeFrame } from './data/pixels.ts';
import { readSafetensors } from './safetensors.ts';

/** A flag, checkpoint or conditioning input that makes sampling impossible as asked. */
export class SampleSetupError extends Error {
  override name = 'SampleSetupError';
}

/** The flags that fill conditioning inputs (raw: `[NAME=]VALUE` is resolved against the model's inputs). */
export interface ConditionFlags {
  /** the class of every sample; null: sample j gets class j mod classes */
  readonly classId: number | null;
  /** the caption a text input is embedded from */
  readonly caption: string | null;
  /** --image [NAME=]FILE.png */
  readonly images: readonly string[];
  /** --text-embedding [NAME=]FILE.safetensors */
  readonly textEmbeddings: readonly string[];
  /** --attr [NAME=]VALUE */
  readonly attrs: readonly string[];
  /** --trajectory [NAME=]FILE.json */
  readonly trajectories: readonly string[];
  /** --motion [NAME=]FILE.safetensors or FILE.json */
  readonly motions: readonly string[];
}

/** The model's batch when sampling n: 2n under guidance (conditional, then unconditional). */
export const modelBatchOf = (s: { readonly n: number; readonly guidance: number | null }) => (s.guidance === null ? s.n : 2 * s.n);

export interface SampleConditions {
  /** every model input besides the noisy one and the timestep, at the model's batch */
  readonly inputs: ReadonlyMap<string, Float32Array | Int32Array>;
  /** the class of each sample, when the model takes one */
  readonly labels: Int32Array | null;
  /** things to tell the user (an image resized to the input's size) */
  readonly notes: readonly string[];
}

const FILLED = ['label', 'text', 'image', 'scalar', 'trajectory', 'motion'];
const describe = (i: GraphInput) => `'${i.name}' (${i.kind})`;
const sizes = (i: GraphInput) => i.axes.map(([, z]) => z);
const axesText = (i: GraphInput, from = 1) => `[${i.axes.slice(from).map(([a, z]) => `${a}=${z}`).join(', ')}]`;
const why = (e: unknown) => ((e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e)));

/** What to pass for an input of each kind, for the message about a missing one. */
function flagFor(i: GraphInput, only: boolean): string {
  const name = only ? '' : `${i.name}=`;
  switch (i.kind) {
    case 'text': return `--caption "TEXT" (embedded as vdm train embeds its captions) or --text-embedding ${name}FILE.safetensors ([l, c] = ${axesText(i)})`;
    case 'image': return `--image ${name}FILE.png (resized to ${axesText(i, 2)} if it is another size)`;
    case 'trajectory': return `--trajectory ${name}FILE.json (${axesText(i)}: per frame, n (x, y) points in [0, 1])`;
    case 'motion': return `--motion ${name}FILE.safetensors or FILE.json (${axesText(i)}: per frame and pixel the displacement (dx, dy) to the next frame, in pixels)`;
    default: {
      const r = rangeOf(i);
      return `--attr ${i.name}=VALUE${r ? ` (from ${r[0]} to ${r[1]})` : ''}`;
    }
  }
}

function rangeOf(i: GraphInput): [number, number] | null {
  const r = i.options.range;
  return Array.isArray(r) && r.length === 2 ? [Number(r[0]), Number(r[1])] : null;
}

/**
 * Assigns each `[NAME=]VALUE` of `flag` to an input of `kind`: NAME= names one (a file whose
 * whole name exists is taken as a file even with an `=` in it); a bare value fills the only one.
 */
function assign(graph: Graph, flag: string, kind: string, inputs: readonly GraphInput[], given: readonly string[], isFile: boolean): Map<GraphInput, string> {
  const out = new Map<GraphInput, string>();
  const names = inputs.map((i) => `'${i.name}'`).join(', ');
  for (const raw of given) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(raw);
    let input: GraphInput | undefined;
    let value = raw;
    if (m && (inputs.some((i) => i.name === m[1]) || !(isFile && fs.existsSync(raw)))) {
      input = inputs.find((i) => i.name === m[1]);
      value = m[2];
      if (!input) {
        throw new SampleSetupError(inputs.length
          ? `${flag} ${raw}: model ${graph.model} has no ${kind} input '${m[1]}' (its ${kind} input${inputs.length > 1 ? 's' : ''}: ${names})`
          : `${flag}: model ${graph.model} takes no ${kind} input`);
      }
    } else if (inputs.length === 0) {
      throw new SampleSetupError(`${flag}: model ${graph.model} takes no ${kind} input`);
    } else if (inputs.length > 1) {
      throw new SampleSetupError(`${flag} ${raw}: model ${graph.model} has ${inputs.length} ${kind} inputs (${names}): name one, e.g. ${flag} ${inputs[0].name}=${raw}`);
    } else {
      input = inputs[0];
    }
    if (out.has(input)) throw new SampleSetupError(`${flag}: input '${input.name}' is given twice`);
    if (value === '') throw new SampleSetupError(`${flag} ${raw}: give a ${isFile ? 'file' : 'value'} after the =`);
    out.set(input, value);
  }
  return out;
}

/**
 * The conditioning inputs of `graph` (checked at the sampling batch) for the flags. Throws
 * SampleSetupError for an input no flag fills, a flag no input takes, or a file that does not fit.
 */
export function fillConditions(graph: Graph, s: ConditionFlags & { readonly n: number; readonly guidance: number | null }): SampleConditions {
  const d = graph.diffusion!;
  const noisy = graph.inputs.find((i) => i.name === d.noisy_input)!;
  const time = graph.inputs.find((i) => i.kind === 'timestep');
  if (!time) throw new SampleSetupError(`model ${graph.model} has no timestep input: the denoiser must see t`);
  const rest = graph.inputs.filter((i) => i !== noisy && i !== time);
  const of = (kind: string) => rest.filter((i) => i.kind === kind);
  const labelInputs = of('label');
  const textInputs = of('text');
  const unfillable = [...rest.filter((i) => !FILLED.includes(i.kind)), ...labelInputs.slice(1)];
  if (unfillable.length) {
    throw new SampleSetupError(`model ${graph.model} takes ${unfillable.map(describe).join(', ')}, which vdm sample cannot fill yet `
      + '(it fills one class label, text, image, scalar, trajectory and motion inputs)');
  }
  const B = modelBatchOf(s);
  const label = labelInputs[0];
  const guided = s.guidance !== null;
  for (const i of rest) {
    const z = sizes(i);
    const ok = z[0] === B && (i.kind === 'label' || i.kind === 'scalar' ? z.length === 1 : i.kind === 'text' ? z.length === 3
      : i.kind === 'image' ? z.length === 4 : i.kind === 'motion' ? z.length === 5 && z[1] === 2 : z.length === 4 && z[3] === 2);
    if (!ok) {
      const want = { label: '[b]', scalar: '[b]', text: '[b, l, c]', image: '[b, c, h, w]', trajectory: '[b, t, n, 2]', motion: '[b, 2, t, h, w]' }[i.kind];
      throw new SampleSetupError(`input ${describe(i)} has ${i.axes.map(([a, z2]) => `${a}=${z2}`).join(', ')}; vdm sample fills it as ${want}, one per sample`);
    }
  }
  if (s.classId !== null && !label) throw new SampleSetupError(`--class: model ${graph.model} takes no class label`);
  if (s.caption !== null && textInputs.length === 0) throw new SampleSetupError(`--caption: model ${graph.model} takes no text input`);
  if (guided && !(label?.options.null === true) && textInputs.length === 0) {
    throw new SampleSetupError(`guidance needs a condition to drop: model ${graph.model} has ${label ? `input ${describe(label)} without a null class (null: true)` : 'no class label or text input'}; `
      + 'sample with --guidance none');
  }

  // Which flag fills which input, and what is left unfilled: all before a file is read.
  const images = assign(graph, '--image', 'image', of('image'), s.images, true);
  const embeddings = assign(graph, '--text-embedding', 'text', textInputs, s.textEmbeddings, true);
  const attrs = assign(graph, '--attr', 'scalar', of('scalar'), s.attrs, false);
  const tracks = assign(graph, '--trajectory', 'trajectory', of('trajectory'), s.trajectories, true);
  const motions = assign(graph, '--motion', 'motion', of('motion'), s.motions, true);
  let captioned: GraphInput | null = null;
  if (s.caption !== null) {
    const open = textInputs.filter((i) => !embeddings.has(i));
    if (open.length !== 1) {
      throw new SampleSetupError(open.length === 0
        ? `--caption: every text input of model ${graph.model} is given by --text-embedding; pass one or the other`
        : `--caption fills one text input, and model ${graph.model} has ${open.length} (${open.map((i) => `'${i.name}'`).join(', ')}): give them with --text-embedding NAME=FILE.safetensors`);
    }
    captioned = open[0];
  }
  const given = (i: GraphInput) => i.kind === 'label' || images.has(i) || embeddings.has(i) || attrs.has(i) || tracks.has(i) || motions.has(i) || i === captioned;
  const missing = rest.filter((i) => !given(i));
  if (missing.length === 1) {
    throw new SampleSetupError(`model ${graph.model} takes ${missing[0].kind} input '${missing[0].name}': pass ${flagFor(missing[0], of(missing[0].kind).length === 1)}`);
  }
  if (missing.length > 1) {
    throw new SampleSetupError(`model ${graph.model} takes conditioning inputs no flag fills:\n${missing.map((i) => `  ${i.kind} input '${i.name}': pass ${flagFor(i, of(i.kind).length === 1)}`).join('\n')}`);
  }

  const inputs = new Map<string, Float32Array | Int32Array>();
  const notes: string[] = [];
  let labels: Int32Array | null = null;
  if (label) {
    const classes = Number(label.options.classes);
    if (s.classId !== null && !(s.classId >= 0 && s.classId < classes)) {
      throw new SampleSetupError(`--class ${s.classId} is not a class of model ${graph.model}: input '${label.name}' has classes 0 to ${classes - 1}`);
    }
    labels = Int32Array.from({ length: s.n }, (_, j) => s.classId ?? j % classes);
    const values = new Int32Array(B);
    values.set(labels);
    // unconditional: the null class; a label without one stays (the text is what is dropped)
    if (guided) values.set(label.options.null === true ? new Int32Array(s.n).fill(classes) : labels, s.n);
    inputs.set(label.name, values);
  }
  // Text: the unconditional half stays zero, as guidance dropout zeroes it in training.
  if (captioned) inputs.set(captioned.name, captionEmbedding(captioned, s.caption!, s.n));
  for (const [i, file] of embeddings) inputs.set(i.name, textEmbedding(i, file, s.n));
  // Images, scalars, trajectories and motion are never dropped in training: the same in both halves.
  for (const [i, file] of images) inputs.set(i.name, imageCondition(i, file, notes));
  for (const [i, value] of attrs) inputs.set(i.name, scalarCondition(i, value, notes));
  for (const [i, file] of tracks) inputs.set(i.name, trajectoryCondition(i, file, s.n));
  for (const [i, file] of motions) inputs.set(i.name, motionCondition(i, file, s.n));
  return { inputs, labels, notes };
}

function captionEmbedding(text: GraphInput, caption: string, n: number): Float32Array {
  const [b, l, c] = sizes(text);
  const values = new Float32Array(b * l * c);
  const words = caption.split(/\s+/).filter(Boolean).slice(0, l);
  for (let j = 0; j < n; j++) words.forEach((word, k) => values.set(wordEmbedding(word, c), (j * l + k) * c));
  return values;
}

/** One float tensor [l, c] or [1, l, c], the same for every sample. */
function textEmbedding(text: GraphInput, file: string, n: number): Float32Array {
  const [b, l, c] = sizes(text);
  const where = `--text-embedding ${file}`;
  const want = `input '${text.name}' needs one F32 tensor [${l}, ${c}] (or [1, ${l}, ${c}]): l=${l} token embeddings of c=${c}`;
  const fits = (shape: readonly number[]) => (shape[0] === 1 && shape.length === 3 ? shape.slice(1) : shape).join() === [l, c].join();
  const t = oneF32Tensor(file, where, text.name, want, fits, '');
  const values = new Float32Array(b * l * c);
  for (let j = 0; j < n; j++) values.set(t.data, j * l * c);
  return values;
}

/**
 * The one F32 tensor of a safetensors file (or the one named `input` among several), of a shape
 * `fits` accepts, every value finite; else one SampleSetupError saying what `want`s.
 */
function oneF32Tensor(file: string, where: string, input: string, want: string, fits: (shape: readonly number[]) => boolean, unreadableHint: string): { shape: number[]; data: Float32Array } {
  let tensors;
  try {
    tensors = readSafetensors(file).tensors;
  } catch (e) {
    throw new SampleSetupError(`${where}: cannot be read as safetensors (${why(e)})${unreadableHint}`);
  }
  const names = Object.keys(tensors);
  const name = names.length === 1 ? names[0] : names.find((k) => k === input);
  if (name === undefined) throw new SampleSetupError(`${where}: holds ${names.length} tensors${names.length ? ` (${names.slice(0, 5).join(', ')})` : ''}; ${want}`);
  const t = tensors[name];
  if (!(t.data instanceof Float32Array)) throw new SampleSetupError(`${where}: tensor '${name}' is ${t.dtype}; ${want}${/F32/.test(want) ? '' : ', F32'}`);
  if (!fits(t.shape)) throw new SampleSetupError(`${where}: tensor '${name}' is [${t.shape.join(', ')}]; ${want}`);
  const bad = t.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new SampleSetupError(`${where}: tensor '${name}' has a non-finite value at ${bad}`);
  return { shape: [...t.shape], data: t.data };
}

/** A PNG as training reads a frame: cover-resize, centre-crop, channels from RGB, [-1, 1]; every sample. */
function imageCondition(image: GraphInput, file: string, notes: string[]): Float32Array {
  const [b, c, h, w] = sizes(image);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new SampleSetupError(`--image ${file}: cannot be read (${why(e)})`);
  }
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (e) {
    throw new SampleSetupError(`--image ${file}: is not a readable PNG (${e instanceof Error ? e.message : String(e)})`);
  }
  if (png.width !== w || png.height !== h) {
    const crop = png.width * h !== png.height * w ? ', centre-cropped to its aspect' : '';
    notes.push(`--image ${file} is ${png.width}x${png.height}: resized to ${w}x${h} for input '${image.name}'${crop}, as vdm train resizes frames`);
  }
  const rgb = resizeCrop({ width: png.width, height: png.height, channels: 4, data: png.data }, h, w);
  const values = new Float32Array(b * c * h * w);
  for (let j = 0; j < b; j++) writeFrame(rgb, values, j, 0, { c, t: 1, h, w });
  return values;
}

function scalarCondition(scalar: GraphInput, text: string, notes: string[]): Float32Array {
  const v = Number(text);
  const r = rangeOf(scalar);
  const range = r ? `from ${r[0]} to ${r[1]}` : '';
  if (text.trim() === '' || !Number.isFinite(v)) throw new SampleSetupError(`--attr ${scalar.name}=${text}: the value must be a number${range ? ` ${range}` : ''}`);
  if (r && !(v >= r[0] && v <= r[1])) throw new SampleSetupError(`--attr ${scalar.name}=${text} is out of range: input '${scalar.name}' takes values ${range}`);
  if (!r && !(v >= 0 && v <= 1)) notes.push(`input '${scalar.name}' declares no range, and vdm train fills it with values in [0, 1): ${v} is outside what it trained on`);
  return new Float32Array(sizes(scalar)[0]).fill(v);
}

/** [t, n, 2] for every sample, or [N, t, n, 2] one per sample; points in [0, 1]. */
function trajectoryCondition(traj: GraphInput, file: string, n: number): Float32Array {
  const [b, t, points] = sizes(traj);
  const where = `--trajectory ${file}`;
  const want = `input '${traj.name}' needs [t=${t}, n=${points}, 2] (t frames of n (x, y) points in [0, 1]), or one per sample: [${n}, ${t}, ${points}, 2]`;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new SampleSetupError(`${where}: cannot be read (${why(e)})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new SampleSetupError(`${where}: is not valid JSON (${e instanceof Error ? e.message : String(e)}); ${want}`);
  }
  let depth = 0;
  for (let x: unknown = data; Array.isArray(x); x = x[0]) depth++;
  const shape = depth === 4 ? [n, t, points, 2] : [t, points, 2];
  const flat: number[] = [];
  const walk = (x: unknown, k: number, at: string): void => {
    if (k === shape.length) {
      if (typeof x !== 'number' || !(x >= 0 && x <= 1)) throw new SampleSetupError(`${where}: ${at} is ${JSON.stringify(x)}, not a coordinate in [0, 1]; ${want}`);
      flat.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[k]) {
      throw new SampleSetupError(`${where}: ${at || 'the top level'} ${Array.isArray(x) ? `has ${x.length} entries, not ${shape[k]}` : `is ${JSON.stringify(x)}, not an array of ${shape[k]}`}; ${want}`);
    }
    x.forEach((y, i) => walk(y, k + 1, `${at}[${i}]`));
  };
  walk(data, 0, '');
  const per = t * points * 2;
  const values = new Float32Array(b * per);
  for (let j = 0; j < b; j++) values.set(depth === 4 ? flat.slice((j % n) * per, (j % n + 1) * per) : flat, j * per);
  return values;
}

/**
 * A motion map [2, t, h, w] for every sample, or [N, 2, t, h, w] one per sample (a leading 1 is
 * every sample too): displacements (dx, dy) in pixels per frame, any finite value. FILE.json holds
 * nested arrays; any other name is read as safetensors with one F32 tensor (or one named as the input).
 */
function motionCondition(motion: GraphInput, file: string, n: number): Float32Array {
  const [b, , t, h, w] = sizes(motion);
  const where = `--motion ${file}`;
  const want = `input '${motion.name}' needs [2, t=${t}, h=${h}, w=${w}] (per frame and pixel the displacement (dx, dy) to the next frame, in pixels), `
    + `or one per sample: [${n}, 2, ${t}, ${h}, ${w}]`;
  const per = 2 * t * h * w;
  const fits = (shape: readonly number[]) => (shape.length === 5 && (shape[0] === n || shape[0] === 1) ? shape.slice(1) : shape).join() === [2, t, h, w].join();
  let values: ArrayLike<number>;
  let shape: readonly number[];
  if (file.toLowerCase().endsWith('.json')) {
    let data: unknown;
    try {
      data = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new SampleSetupError((e as NodeJS.ErrnoException).code ? `${where}: cannot be read (${why(e)})`
        : `${where}: is not valid JSON (${e instanceof Error ? e.message : String(e)}); ${want}`);
    }
    // the shape read off the first entry at each depth, then every entry held to it
    const found: number[] = [];
    for (let x: unknown = data; Array.isArray(x); x = x[0]) found.push(x.length);
    if (!fits(found)) throw new SampleSetupError(`${where}: is [${found.join(', ')}]; ${want}`);
    shape = found;
    const flat: number[] = [];
    const walk = (x: unknown, k: number, at: string): void => {
      if (k === shape.length) {
        if (typeof x !== 'number' || !Number.isFinite(x)) throw new SampleSetupError(`${where}: ${at} is ${JSON.stringify(x)}, not a number; ${want}`);
        flat.push(x);
        return;
      }
      if (!Array.isArray(x) || x.length !== shape[k]) {
        throw new SampleSetupError(`${where}: ${at} ${Array.isArray(x) ? `has ${x.length} entries, not ${shape[k]}` : `is ${JSON.stringify(x)}, not an array of ${shape[k]}`}; ${want}`);
      }
      x.forEach((y, i) => walk(y, k + 1, `${at}[${i}]`));
    };
    walk(data, 0, '');
    values = flat;
  } else {
    const tensor = oneF32Tensor(file, where, motion.name, want, fits, '; give a .safetensors file with one F32 tensor, or a .json file');
    shape = tensor.shape;
    values = tensor.data;
  }
  const each = shape.length === 5 && shape[0] === n && n > 1;
  const out = new Float32Array(b * per);
  const all = Float32Array.from(values);
  for (let j = 0; j < b; j++) out.set(each ? all.subarray((j % n) * per, (j % n + 1) * per) : all.subarray(0, per), j * per);
  return out;
}
