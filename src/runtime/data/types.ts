// The data layer's common shapes: what a model's sample looks like and what a dataset hands out.

/** One sample's size; images are videos with t = 1. */
export interface SampleShape {
  readonly c: number;
  readonly t: number;
  readonly h: number;
  readonly w: number;
}

export interface Batch {
  /** Samples in this batch (b). */
  readonly size: number;
  /** [b, c, t, h, w] row-major, values in [-1, 1]. */
  readonly video: Float32Array;
  /** [b] class labels, when the dataset was opened with `label`. */
  readonly label?: Int32Array;
  /** [b] scalar condition (speed), when the dataset was opened with `scalar`. */
  readonly scalar?: Float32Array;
  /** Per sample, what the synthetic data knows beyond its pixels (folders: none). */
  readonly facts?: readonly SampleFacts[];
}

/** A synthetic clip's caption, its labelled object's track and its motion: the conditions drawn from them. */
export interface SampleFacts {
  /** colour, shape and heading, e.g. "red square moving up-left" */
  readonly caption: string;
  /** the object's centre per frame as (x / w, y / h) */
  readonly track: readonly (readonly [number, number])[];
  /** its radius over the clip's width and height */
  readonly radius: readonly [number, number];
  /** every object's displacement per pixel and frame, [2, t, h, w] (synthetic.ts motionMap), made when asked */
  readonly motion: () => Float32Array;
}

export interface VideoDataset {
  readonly shape: SampleShape;
  /** Distinct samples in one epoch; null for an endless stream. */
  readonly size: number | null;
  /**
   * Batch `index` holds the samples at positions index·batchSize .. (index+1)·batchSize − 1 of
   * the dataset's seeded order, so it is the same whatever was requested before (exact resume).
   */
  batch(index: number, batchSize: number): Promise<Batch>;
  /** Items dropped under `skipBad` so far (labels at open, decoding as batches are read). */
  readonly skipped: number;
  /** One message per dropped item, for the CLI to print. */
  readonly problems: readonly string[];
}

export interface DatasetOptions {
  /** Seeds the synthetic samples and the per-epoch shuffle of a folder. Default 0. */
  readonly seed?: number;
  /** Fill Batch.label: the model's label input has this many classes. */
  readonly label?: { readonly classes: number };
  /** Fill Batch.scalar: the model's scalar input, optionally with its declared range. */
  readonly scalar?: { readonly range?: readonly [number, number] };
  /** Skip (and count) bad items instead of throwing a DataError. */
  readonly skipBad?: boolean;
  /** Synthetic: cycle through this many distinct samples (default: endless). */
  readonly size?: number;
  /** Synthetic: moving shapes per clip (default 1); the first one decides label and speed. */
  readonly objects?: number;
  /** Folder: take every n-th frame (default 1). */
  readonly frameStride?: number;
  /** Folder: the ffmpeg executable for .mp4/.webm (default `ffmpeg` on PATH). */
  readonly ffmpeg?: string;
}

/** Checks a batch request; positions must stay exact integers. */
export function checkBatchRequest(index: number, batchSize: number): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`batch index ${index} is not a non-negative integer`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size ${batchSize} is not a positive integer`);
  if (!Number.isSafeInteger(index * batchSize + batchSize)) throw new RangeError(`batch ${index} of size ${batchSize} is past the last exact position`);
}
