// The kinds of model input, their axes, dtype and options.
import type { DType } from '../ir/values.ts';

export interface InputKind {
  readonly axes: readonly string[];
  readonly dtype: DType;
  /** Option name -> whether it must be given. */
  readonly options: Readonly<Record<string, boolean>>;
  /** Axes with a fixed size. */
  readonly fixed?: Readonly<Record<string, number>>;
}

export const INPUT_KINDS: Readonly<Record<string, InputKind>> = {
  video: { axes: ['b', 'c', 't', 'h', 'w'], dtype: 'f32', options: {} },
  image: { axes: ['b', 'c', 'h', 'w'], dtype: 'f32', options: {} },
  timestep: { axes: ['b'], dtype: 'f32', options: {} },
  label: { axes: ['b'], dtype: 'i32', options: { classes: true, null: false } },
  text: { axes: ['b', 'l', 'c'], dtype: 'f32', options: {} },
  trajectory: { axes: ['b', 't', 'n', 'c'], dtype: 'f32', options: {}, fixed: { c: 2 } },
  scalar: { axes: ['b'], dtype: 'f32', options: { range: false } },
  // per pixel and frame a displacement (dx, dy) in pixels per frame; t, h, w are the video's (VDM048)
  motion: { axes: ['b', 'c', 't', 'h', 'w'], dtype: 'f32', options: {}, fixed: { c: 2 } },
};

/** Kinds whose axes other than b and c must have the sizes of the model's (first) video input's. */
export const VIDEO_SIZED_KINDS: readonly string[] = ['motion'];
