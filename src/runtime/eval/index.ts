// `vdm eval`: samples beside the data they should resemble. Pixel statistics per frame, temporal
// consistency, the Fréchet distance over a fixed random-feature network (frechet.ts), and on the
// built-in moving shapes the object's speed, trajectory smoothness, shape-colour accuracy and shape fit (shapes.ts).
import { frameStats, temporalConsistency, type Clips } from './clips.ts';
import { clipFrechetDistance } from './frechet.ts';
import { objectSpeed, shapeColourAccuracy, shapeFit, trajectoryAcceleration } from './shapes.ts';

export { type ClipShape, type Clips } from './clips.ts';

export interface Compared {
  readonly samples: number;
  readonly data: number;
}

export interface EvalReport {
  readonly clips: Compared;
  /** per frame index: mean and standard deviation of the values */
  readonly frames: readonly { readonly mean: Compared; readonly std: Compared }[];
  readonly temporalConsistency: Compared;
  /** samples against data (0: the same feature statistics) */
  readonly frechet: number;
  /** moving-shapes data only: mean centroid displacement between adjacent frames, px / frame */
  readonly objectSpeed?: Compared;
  /** moving-shapes data only: mean centroid acceleration, px / frame² */
  readonly trajectoryAcceleration?: Compared;
  /** moving-shapes data only: fraction of clips showing a palette-coloured square, circle or triangle (the label's shape when given) */
  readonly shapeColourAccuracy?: Compared;
  /** moving-shapes data only: mean over frames of the object's best IoU with a clean shape (shapes.ts maskShapeFit) */
  readonly shapeFit?: Compared;
}

export interface EvalOptions {
  /** the data is the built-in moving shapes: report the object metrics */
  readonly shapes?: boolean;
  /** class labels (8 · shape + direction) of the samples and of the data, when class-conditional */
  readonly labels?: { readonly samples: ArrayLike<number>; readonly data: ArrayLike<number> };
}

export function evaluateClips(samples: Clips, data: Clips, options: EvalOptions = {}): EvalReport {
  const [a, b] = [samples.shape, data.shape];
  if (a.c !== b.c || a.t !== b.t || a.h !== b.h || a.w !== b.w) {
    throw new RangeError(`samples are [c=${a.c}, t=${a.t}, h=${a.h}, w=${a.w}], the data [c=${b.c}, t=${b.t}, h=${b.h}, w=${b.w}]: compare clips of one shape`);
  }
  const both = <T>(f: (c: Clips) => T): [T, T] => [f(samples), f(data)];
  const pair = (f: (c: Clips) => number): Compared => { const [s, d] = both(f); return { samples: s, data: d }; };
  const [fs, fd] = both(frameStats);
  return {
    clips: { samples: a.n, data: b.n },
    frames: fs.map((s, f) => ({ mean: { samples: s.mean, data: fd[f].mean }, std: { samples: s.std, data: fd[f].std } })),
    temporalConsistency: pair(temporalConsistency),
    frechet: clipFrechetDistance(samples, data),
    ...(options.shapes ? {
      objectSpeed: pair(objectSpeed),
      trajectoryAcceleration: pair(trajectoryAcceleration),
      shapeColourAccuracy: { samples: shapeColourAccuracy(samples, options.labels?.samples), data: shapeColourAccuracy(data, options.labels?.data) },
      shapeFit: pair(shapeFit),
    } : {}),
  };
}
