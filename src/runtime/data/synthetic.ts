// The built-in dataset: shapes moving with constant velocity on a plain background, bouncing off
// the frame edges. Sample i is a pure function of (seed, i), so it does not depend on the batch
// size or on what was drawn before it.
//
// Class labels (for `label` inputs): label = 8 · shape + direction, with
//   shape     0 square, 1 circle, 2 triangle (pointing up)
//   direction the initial heading, d · 45° counter-clockwise from "right" on screen:
//             0 right, 1 up-right, 2 up, 3 up-left, 4 left, 5 down-left, 6 down, 7 down-right
// so 0 = square right, 7 = square down-right, 8 = circle right, 23 = triangle down-right. A spec
// with fewer classes gets labels 0 .. classes − 1 only. With t = 1 the direction is not visible.
//
// Scalar (for `scalar` inputs): the speed, u ∈ [0, 1) uniform, mapped linearly onto the input's
// range (lo + u · (hi − lo)) when it declares one, else u itself. In pixels per frame the speed is
// (0.5 + 1.5 u) · max(1, min(h, w) / 16).
import { Rng } from './rng.ts';
import { writeFrame } from './pixels.ts';
import { checkBatchRequest, type Batch, type DatasetOptions, type SampleFacts, type SampleShape, type VideoDataset } from './types.ts';

export const SYNTHETIC_SHAPES = ['square', 'circle', 'triangle'] as const;
export const SYNTHETIC_DIRECTIONS = ['right', 'up-right', 'up', 'up-left', 'left', 'down-left', 'down', 'down-right'] as const;
export const SYNTHETIC_CLASSES = SYNTHETIC_SHAPES.length * SYNTHETIC_DIRECTIONS.length;
export const SYNTHETIC_CLASS_NAMES: readonly string[] = SYNTHETIC_SHAPES.flatMap((s) => SYNTHETIC_DIRECTIONS.map((d) => `${s} ${d}`));

type Rgb = readonly [number, number, number];
// Bright shapes over dark backgrounds: luma differs by at least ~80/255, so c = 1 shows them too.
export const SYNTHETIC_COLOURS: readonly Rgb[] = [
  [255, 60, 60], [60, 220, 60], [80, 130, 255], [240, 220, 40], [40, 220, 230], [230, 70, 230], [245, 245, 245], [255, 150, 30],
];
export const SYNTHETIC_COLOUR_NAMES = ['red', 'green', 'blue', 'yellow', 'cyan', 'magenta', 'white', 'orange'] as const;
const BACKGROUNDS: readonly Rgb[] = [[0, 0, 0], [30, 30, 30], [10, 15, 50], [10, 40, 20]];

/** An object's r as a fraction of the frame's shorter side (at least 2 pixels). */
export const RADIUS_RANGE = [0.16, 0.24] as const;

export interface SyntheticObject {
  /** Index into SYNTHETIC_SHAPES. */
  readonly shape: number;
  /** Index into SYNTHETIC_DIRECTIONS. */
  readonly direction: number;
  /** Pixels per frame. */
  readonly speed: number;
  /** Half the side (square, triangle) or the radius (circle), in pixels. */
  readonly r: number;
  /** Centre at frame 0, in pixels from the top-left corner. */
  readonly x0: number;
  readonly y0: number;
  readonly colour: Rgb;
}

export interface SyntheticSample {
  readonly label: number;
  /** The first object's speed as u ∈ [0, 1). */
  readonly speed01: number;
  readonly background: Rgb;
  /** Drawn last to first: the first (the labelled one) is on top. */
  readonly objects: readonly SyntheticObject[];
}

/** The parameters of sample `index`. */
export function syntheticSample(seed: number, index: number, shape: SampleShape, options: { classes?: number; objects?: number } = {}): SyntheticSample {
  const rng = new Rng(seed, index);
  const side = Math.min(shape.h, shape.w);
  const unit = Math.max(1, side / 16);
  const background = BACKGROUNDS[rng.int(BACKGROUNDS.length)];
  const classes = Math.min(options.classes ?? SYNTHETIC_CLASSES, SYNTHETIC_CLASSES);
  let label = 0, speed01 = 0;
  const objects: SyntheticObject[] = [];
  for (let i = 0; i < (options.objects ?? 1); i++) {
    const l = rng.int(i === 0 ? classes : SYNTHETIC_CLASSES);
    const u = rng.float();
    const r = Math.max(2, side * rng.range(...RADIUS_RANGE));
    const x0 = rng.range(r, shape.w - r);
    const y0 = rng.range(r, shape.h - r);
    const colour = SYNTHETIC_COLOURS[rng.int(SYNTHETIC_COLOURS.length)];
    if (i === 0) [label, speed01] = [l, u];
    objects.push({ shape: Math.floor(l / 8), direction: l % 8, speed: (0.5 + 1.5 * u) * unit, r, x0, y0, colour });
  }
  return { label, speed01, background, objects };
}

/** Reflects p into [lo, hi] as a ball bouncing between two walls would be. */
function bounce(p: number, lo: number, hi: number): number {
  const span = hi - lo;
  if (span <= 0) return (lo + hi) / 2;
  const q = (((p - lo) % (2 * span)) + 2 * span) % (2 * span);
  return lo + (q <= span ? q : 2 * span - q);
}

// Unit headings of SYNTHETIC_DIRECTIONS on screen (y grows downwards).
const D = Math.SQRT1_2;
const HEADINGS: readonly (readonly [number, number])[] = [[1, 0], [D, -D], [0, -1], [-D, -D], [-1, 0], [-D, D], [0, 1], [D, D]];

/** Velocity before any bounce, in pixels per frame. */
export function velocity(o: SyntheticObject): [number, number] {
  const [x, y] = HEADINGS[o.direction];
  return [x * o.speed, y * o.speed];
}

/** Centre of an object at frame f. */
export function objectCentre(o: SyntheticObject, f: number, shape: SampleShape): [number, number] {
  const [vx, vy] = velocity(o);
  return [bounce(o.x0 + vx * f, o.r, shape.w - o.r), bounce(o.y0 + vy * f, o.r, shape.h - o.r)];
}

/** Whether the point (dx, dy) from a shape's centre is inside it (kind: an index into SYNTHETIC_SHAPES). */
export function insideShape(kind: number, dx: number, dy: number, r: number): boolean {
  if (kind === 0) return Math.abs(dx) <= r && Math.abs(dy) <= r;
  if (kind === 1) return dx * dx + dy * dy <= r * r;
  return dy >= -r && dy <= r && Math.abs(dx) <= (dy + r) / 2;
}

/** The caption and track of a sample's first (labelled) object, and the motion map of all of them. */
export function sampleFacts(sample: SyntheticSample, shape: SampleShape): SampleFacts {
  const o = sample.objects[0];
  const colour = SYNTHETIC_COLOUR_NAMES[SYNTHETIC_COLOURS.indexOf(o.colour)];
  return {
    caption: `${colour} ${SYNTHETIC_SHAPES[o.shape]} moving ${SYNTHETIC_DIRECTIONS[o.direction]}`,
    track: Array.from({ length: shape.t }, (_, f) => {
      const [x, y] = objectCentre(o, f, shape);
      return [x / shape.w, y / shape.h] as const;
    }),
    radius: [o.r / shape.w, o.r / shape.h],
    motion: () => motionMap(sample, shape),
  };
}

/**
 * Calls `paint(o, p)` for every pixel p = y · w + x each object covers at frame f, the objects
 * last to first, so the first one's calls come last: what a pixel gets last is what is on top.
 * The renderer and the motion map both draw through it, so they agree pixel for pixel.
 */
function paintObjects(sample: SyntheticSample, f: number, shape: SampleShape, paint: (o: SyntheticObject, p: number) => void): void {
  const { h, w } = shape;
  for (let i = sample.objects.length - 1; i >= 0; i--) {
    const o = sample.objects[i];
    const [cx, cy] = objectCentre(o, f, shape);
    const x0 = Math.max(0, Math.floor(cx - o.r)), x1 = Math.min(w - 1, Math.ceil(cx + o.r));
    const y0 = Math.max(0, Math.floor(cy - o.r)), y1 = Math.min(h - 1, Math.ceil(cy + o.r));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (insideShape(o.shape, x + 0.5 - cx, y + 0.5 - cy, o.r)) paint(o, y * w + x);
      }
    }
  }
}

/** Renders a sample as element s of a [b, c, t, h, w] batch. */
export function renderSynthetic(sample: SyntheticSample, shape: SampleShape, out: Float32Array, s: number): void {
  const { t, h, w } = shape;
  const rgb = new Float32Array(h * w * 3);
  for (let f = 0; f < t; f++) {
    for (let p = 0; p < h * w; p++) rgb.set(sample.background, p * 3);
    paintObjects(sample, f, shape, (o, p) => rgb.set(o.colour, p * 3));
    writeFrame(rgb, out, s, f, shape);
  }
}

/**
 * The motion map of a sample, [2, t, h, w]: at frame f, each pixel an object covers (the top one,
 * as drawn) holds that object's displacement in pixels, centre(f + 1) − centre(f) as (dx, dy), x
 * right and y down, so a bounce between the frames shows as the distance actually travelled. The
 * last frame holds the displacement into it, centre(f) − centre(f − 1) (with t = 1: none), so a
 * moving object never looks still. The background is 0.
 */
export function motionMap(sample: SyntheticSample, shape: SampleShape): Float32Array {
  const { t, h, w } = shape;
  const frame = h * w;
  const out = new Float32Array(2 * t * frame);
  if (t === 1) return out;
  for (let f = 0; f < t; f++) {
    const [from, to] = f < t - 1 ? [f, f + 1] : [f - 1, f];
    const moves = new Map(sample.objects.map((o) => {
      const [x0, y0] = objectCentre(o, from, shape), [x1, y1] = objectCentre(o, to, shape);
      return [o, [x1 - x0, y1 - y0]] as const;
    }));
    paintObjects(sample, f, shape, (o, p) => {
      const [dx, dy] = moves.get(o)!;
      out[f * frame + p] = dx;
      out[(t + f) * frame + p] = dy;
    });
  }
  return out;
}

export function syntheticDataset(shape: SampleShape, options: DatasetOptions = {}): VideoDataset {
  const seed = options.seed ?? 0;
  const size = options.size ?? null;
  const range = options.scalar?.range;
  const sampleOptions = { classes: options.label?.classes, objects: options.objects };
  return {
    shape,
    size,
    skipped: 0,
    problems: [],
    async batch(index: number, batchSize: number): Promise<Batch> {
      checkBatchRequest(index, batchSize);
      const video = new Float32Array(batchSize * shape.c * shape.t * shape.h * shape.w);
      const label = options.label ? new Int32Array(batchSize) : undefined;
      const scalar = options.scalar ? new Float32Array(batchSize) : undefined;
      const facts: SampleFacts[] = [];
      for (let j = 0; j < batchSize; j++) {
        const position = index * batchSize + j;
        const sample = syntheticSample(seed, size === null ? position : position % size, shape, sampleOptions);
        renderSynthetic(sample, shape, video, j);
        if (label) label[j] = sample.label;
        if (scalar) scalar[j] = range ? range[0] + sample.speed01 * (range[1] - range[0]) : sample.speed01;
        facts.push(sampleFacts(sample, shape));
      }
      return { size: batchSize, video, label, scalar, facts };
    },
  };
}
