// What a model asks of its training data, read off a checked graph's inputs.
import type { Graph } from '../../compiler/ir/graph.ts';
import type { SampleShape } from './types.ts';

export interface DataNeeds {
  /** The input the clean sample goes into (noised by the trainer), and its size. */
  readonly sample: { readonly input: string; readonly kind: 'video' | 'image'; readonly batch: number; readonly shape: SampleShape };
  readonly label?: { readonly input: string; readonly classes: number; readonly null: boolean };
  readonly scalar?: { readonly input: string; readonly range?: readonly [number, number] };
  /** Inputs filled from the clip (conditions.ts): its first frame, its object's track, its caption, its motion map. */
  readonly conditions: readonly ConditionNeed[];
  /** Inputs the data layer does not fill (a second label or scalar, an image of another size...). */
  readonly other: readonly { readonly input: string; readonly kind: string }[];
}

export interface ConditionNeed {
  readonly input: string;
  readonly kind: 'image' | 'trajectory' | 'text' | 'motion';
  /** the input's sizes in its axis order */
  readonly shape: readonly number[];
}

export function dataNeeds(graph: Pick<Graph, 'inputs' | 'diffusion'> & { readonly model?: string }): DataNeeds {
  const isSample = (k: string) => k === 'video' || k === 'image';
  const sampleInput = graph.inputs.find((i) => i.name === graph.diffusion?.noisy_input && isSample(i.kind))
    ?? graph.inputs.find((i) => i.kind === 'video') ?? graph.inputs.find((i) => i.kind === 'image');
  if (!sampleInput) throw new Error(`${graph.model ? `model ${graph.model}` : 'the model'} has no video or image input to train on`);
  // Axes by position (kinds fix their order: b, c, t, h, w or b, c, h, w), not by name.
  const size = sampleInput.axes.map(([, n]) => n);
  const [b, c, t, h, w] = sampleInput.kind === 'video' ? size : [size[0], size[1], 1, size[2], size[3]];
  let label: DataNeeds['label'];
  let scalar: DataNeeds['scalar'];
  const other: { input: string; kind: string }[] = [];
  const conditions: ConditionNeed[] = [];
  for (const i of graph.inputs) {
    if (i === sampleInput || i.kind === 'timestep') continue;
    if (i.kind === 'label' && !label) {
      label = { input: i.name, classes: Number(i.options.classes), null: i.options.null === true };
    } else if (i.kind === 'scalar' && !scalar) {
      const r = i.options.range;
      scalar = { input: i.name, range: Array.isArray(r) && r.length === 2 ? [Number(r[0]), Number(r[1])] : undefined };
    } else if (isCondition(i.kind, i.axes.map(([, n]) => n), [b, c, t, h, w])) {
      conditions.push({ input: i.name, kind: i.kind, shape: i.axes.map(([, n]) => n) });
    } else {
      other.push({ input: i.name, kind: i.kind });
    }
  }
  return { sample: { input: sampleInput.name, kind: sampleInput.kind as 'video' | 'image', batch: b, shape: { c, t, h, w } }, label, scalar, conditions, other };
}

/**
 * An image the clip's size (its first frame), a per-sample trajectory of (x, y) points, per-sample
 * text, or a motion map [b, 2, t, h, w] of the clip (the checker holds its t, h, w to the video's).
 */
function isCondition(kind: string, shape: readonly number[], [b, c, t, h, w]: readonly number[]): kind is ConditionNeed['kind'] {
  if (kind === 'image') return shape.join() === [b, c, h, w].join();
  if (kind === 'motion') return shape.join() === [b, 2, t, h, w].join();
  if (kind === 'trajectory') return shape.length === 4 && shape[0] === b && shape[3] === 2;
  return kind === 'text' && shape.length === 3 && shape[0] === b;
}
