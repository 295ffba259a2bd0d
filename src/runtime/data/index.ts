// Training data: the built-in synthetic clips or a folder of the user's videos, behind one interface.
import { DataError } from './errors.ts';
import { folderDataset } from './folder.ts';
import { syntheticDataset } from './synthetic.ts';
import type { DatasetOptions, SampleShape, VideoDataset } from './types.ts';

export { DataError, MissingToolError } from './errors.ts';
export { dataNeeds, type DataNeeds } from './needs.ts';
export { SYNTHETIC_CLASSES, SYNTHETIC_CLASS_NAMES } from './synthetic.ts';
export type { Batch, DatasetOptions, SampleShape, VideoDataset } from './types.ts';

/** `source` is `synthetic` or a folder path. */
export async function openDataset(source: 'synthetic' | string, shape: SampleShape, options: DatasetOptions = {}): Promise<VideoDataset> {
  for (const [k, v] of Object.entries(shape)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`sample ${k} = ${v} is not a positive integer`);
  }
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed ${seed} is not a non-negative integer`);
  const classes = options.label?.classes;
  if (classes !== undefined && (!Number.isSafeInteger(classes) || classes < 1)) throw new RangeError(`label classes ${classes} is not a positive integer`);
  if (source === 'synthetic') return syntheticDataset(shape, options);
  if (options.size !== undefined || options.objects !== undefined) {
    throw new DataError(source, 'is a folder, and `size`/`objects` apply to the synthetic dataset only', 'leave them out', false);
  }
  return folderDataset(source, shape, options);
}
