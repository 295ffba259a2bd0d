// What a clip of the built-in moving-shapes data shows, read back from its pixels: per frame the
// object against the background (the median colour of the frame's border), its centroid, its
// colour and how much of its bounding box it fills (square 1, circle π/4, triangle 1/2). From
// them: object speed, trajectory smoothness (mean centroid acceleration) and shape-colour accuracy;
// and how cleanly the object is one shape (its best overlap with a shape drawn as the data draws it).
import { insideShape, RADIUS_RANGE, SYNTHETIC_COLOURS, SYNTHETIC_SHAPES } from '../data/synthetic.ts';
import { clipAt, type Clips } from './clips.ts';

/** A pixel is the object's when a channel differs from the background by more than this (of 2). */
const FOREGROUND = 0.25;
/** Fill ratios of the shapes' bounding boxes, in SYNTHETIC_SHAPES order (square, circle, triangle). */
const FILL = [1, Math.PI / 4, 0.5];
const FILL_TOLERANCE = 0.12;
/** Largest RGB distance (0..255 units) from a palette colour still counted as that colour. */
const COLOUR_TOLERANCE = 60;

export interface FrameObject {
  /** centroid in pixels */
  readonly x: number;
  readonly y: number;
  readonly area: number;
  /** area over the bounding box's */
  readonly fill: number;
  /** mean colour of the object's pixels, 0..255 per channel (c = 1: gray in all three) */
  readonly rgb: readonly [number, number, number];
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** The pixels of frame f of clip s that stand out from the background (the border's median colour), 1 each. */
export function foregroundMask(clips: Clips, s: number, f: number): Uint8Array {
  const { c, h, w } = clips.shape;
  const value = (k: number, x: number, y: number) => clips.data[clipAt(clips, s, k, f) + y * w + x];
  const border: [number, number][] = [];
  for (let x = 0; x < w; x++) border.push([x, 0], [x, h - 1]);
  for (let y = 1; y + 1 < h; y++) border.push([0, y], [w - 1, y]);
  const bg = Array.from({ length: c }, (_, k) => median(border.map(([x, y]) => value(k, x, y))));
  const mask = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    for (let k = 0; k < c; k++) if (Math.abs(value(k, x, y) - bg[k]) > FOREGROUND) { mask[y * w + x] = 1; break; }
  }
  return mask;
}

/** The object of frame f of clip s, or null when no pixel stands out from the background. */
export function frameObject(clips: Clips, s: number, f: number): FrameObject | null {
  const { c, h, w } = clips.shape;
  const mask = foregroundMask(clips, s, f);
  let area = 0, sx = 0, sy = 0;
  let [x0, x1, y0, y1] = [w, -1, h, -1];
  const colour = new Float64Array(c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (!mask[y * w + x]) continue;
    area++; sx += x + 0.5; sy += y + 0.5;
    [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
    for (let k = 0; k < c; k++) colour[k] += clips.data[clipAt(clips, s, k, f) + y * w + x];
  }
  if (area === 0) return null;
  const to255 = (v: number) => ((v / area) + 1) * 127.5;
  const rgb: [number, number, number] = c >= 3 ? [to255(colour[0]), to255(colour[1]), to255(colour[2])] : [to255(colour[0]), to255(colour[0]), to255(colour[0])];
  return { x: sx / area, y: sy / area, area, fill: area / ((x1 - x0 + 1) * (y1 - y0 + 1)), rgb };
}

/** The shape whose fill ratio is nearest, when within tolerance (an index into SYNTHETIC_SHAPES). */
export function shapeOf(o: FrameObject): number | null {
  let best = -1;
  FILL.forEach((f, k) => { if (best < 0 || Math.abs(o.fill - f) < Math.abs(o.fill - FILL[best])) best = k; });
  return Math.abs(o.fill - FILL[best]) <= FILL_TOLERANCE && o.area >= 4 ? best : null;
}

/** The palette colour nearest the object's, when within tolerance (c = 3 only). */
export function colourOf(o: FrameObject): number | null {
  let best = -1, dist = Infinity;
  SYNTHETIC_COLOURS.forEach((p, k) => {
    const d = Math.hypot(p[0] - o.rgb[0], p[1] - o.rgb[1], p[2] - o.rgb[2]);
    if (d < dist) [best, dist] = [k, d];
  });
  return dist <= COLOUR_TOLERANCE ? best : null;
}

/**
 * Mean |centroid[f+1] − 2 centroid[f] + centroid[f−1]| in pixels per frame², over the triples of
 * frames where the object is found in all three; NaN when there are none (t < 3).
 */
export function trajectoryAcceleration(clips: Clips): number {
  let sum = 0, count = 0;
  for (let s = 0; s < clips.shape.n; s++) {
    const track = Array.from({ length: clips.shape.t }, (_, f) => frameObject(clips, s, f));
    for (let f = 1; f + 1 < track.length; f++) {
      const [a, b, c] = [track[f - 1], track[f], track[f + 1]];
      if (!a || !b || !c) continue;
      sum += Math.hypot(c.x - 2 * b.x + a.x, c.y - 2 * b.y + a.y);
      count++;
    }
  }
  return count ? sum / count : NaN;
}

/**
 * Mean |centroid[f+1] − centroid[f]| in pixels per frame, over the pairs of adjacent frames where
 * the object is found in both: how far objects move (0 for still ones); NaN when there are none.
 */
export function objectSpeed(clips: Clips): number {
  let sum = 0, count = 0;
  for (let s = 0; s < clips.shape.n; s++) {
    let prev = frameObject(clips, s, 0);
    for (let f = 1; f < clips.shape.t; f++) {
      const o = frameObject(clips, s, f);
      if (prev && o) {
        sum += Math.hypot(o.x - prev.x, o.y - prev.y);
        count++;
      }
      prev = o;
    }
  }
  return count ? sum / count : NaN;
}

/**
 * The fraction of clips whose object is a recognisable shape (and, with c = 3, a palette colour)
 * on most frames; with `labels` (8 · shape + direction) the shape must also be the label's.
 */
export function shapeColourAccuracy(clips: Clips, labels?: ArrayLike<number>): number {
  const { n, t, c } = clips.shape;
  let good = 0;
  for (let s = 0; s < n; s++) {
    let ok = 0;
    for (let f = 0; f < t; f++) {
      const o = frameObject(clips, s, f);
      const shape = o && shapeOf(o);
      if (shape === null || shape === undefined) continue;
      if (c >= 3 && colourOf(o!) === null) continue;
      if (labels && Math.floor(labels[s] / 8) !== shape) continue;
      ok++;
    }
    if (ok * 2 > t) good++;
  }
  return n ? good / n : NaN;
}


/** Centres tried around the mask's centroid: ±FIT_REACH pixels in steps of 1 / FIT_STEPS. */
const FIT_REACH = 1.5;
const FIT_STEPS = 8;

/**
 * How well a foreground mask (h × w, 1 = object) matches one clean shape as the data draws it: the
 * largest intersection over union with a square, circle or triangle of the data's radii at centres
 * on a 1/8-pixel grid near the mask's centroid. 1: exactly a shape (the data, up to the grid); a
 * ragged or broken blob scores less; an empty mask 0.
 */
export function maskShapeFit(mask: Uint8Array, h: number, w: number): number {
  let area = 0, sx = 0, sy = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (mask[y * w + x]) { area++; sx += x + 0.5; sy += y + 0.5; }
  if (area === 0) return 0;
  const side = Math.min(h, w);
  const [lo, hi] = RADIUS_RANGE.map((u) => Math.max(2, side * u));
  const radii = hi - lo < 1e-9 ? [lo] : Array.from({ length: 5 }, (_, i) => lo + ((hi - lo) * i) / 4);
  let best = 0;
  for (let kind = 0; kind < SYNTHETIC_SHAPES.length; kind++) {
    for (const r of radii) {
      for (let i = -FIT_REACH * FIT_STEPS; i <= FIT_REACH * FIT_STEPS; i++) {
        for (let j = -FIT_REACH * FIT_STEPS; j <= FIT_REACH * FIT_STEPS; j++) {
          const cx = sx / area + j / FIT_STEPS, cy = sy / area + i / FIT_STEPS;
          // only the pixels the shape can cover: the rest of the mask adds to the union alone
          let shape = 0, both = 0;
          for (let y = Math.max(0, Math.floor(cy - r)); y <= Math.min(h - 1, Math.ceil(cy + r)); y++) {
            for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(w - 1, Math.ceil(cx + r)); x++) {
              if (!insideShape(kind, x + 0.5 - cx, y + 0.5 - cy, r)) continue;
              shape++;
              both += mask[y * w + x];
            }
          }
          best = Math.max(best, both / (area + shape - both));
        }
      }
    }
  }
  return best;
}

/** Mean maskShapeFit of every frame's foreground: 1 for clean shapes, lower for ragged ones. */
export function shapeFit(clips: Clips): number {
  const { n, t, h, w } = clips.shape;
  let sum = 0;
  for (let s = 0; s < n; s++) for (let f = 0; f < t; f++) sum += maskShapeFit(foregroundMask(clips, s, f), h, w);
  return n * t ? sum / (n * t) : NaN;
}
