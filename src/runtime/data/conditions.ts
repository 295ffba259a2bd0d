// The conditioning inputs a clip fills besides its label and scalar (docs/language.md, training data):
//   image       the clip's first frame (image-to-video, a style reference)
//   trajectory  [t, n, 2] per sample: n points on a circle of the object's radius around its centre
//               per frame (the centre itself when n = 1), as (x / w, y / h), the first at angle 0
//   text        [l, c] per sample: one embedding row per word of the caption ("red square moving
//               up-left"), rows after the last word zero. A word's row is c normal values drawn
//               from a hash of the word: a fixed stand-in for a text encoder, not a language model.
//   motion      [2, t, h, w] per sample: each object's displacement to the next frame in pixels
//               (dx, dy) at the pixels it covers, the top one where they overlap; the last frame
//               the displacement into it; 0 on the background (synthetic.ts motionMap)
// Only the synthetic data has tracks, captions and motion; a folder fills images alone.
import { hashKey, Rng } from './rng.ts';
import type { ConditionNeed, DataNeeds } from './needs.ts';
import type { Batch } from './types.ts';

/** The conditions that need the synthetic data's facts (a folder cannot fill them). */
export const needsFacts = (needs: Pick<DataNeeds, 'conditions'>) => needs.conditions.filter((c) => c.kind !== 'image');

/**
 * The condition tensors of a batch, by input name. `dropped[j]`: sample j's text is zeroed
 * (classifier-free guidance's unconditional case), as its null class would be.
 */
export function conditionTensors(needs: DataNeeds, batch: Batch, dropped?: (j: number) => boolean): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const need of needs.conditions) {
    if (need.kind === 'image') out.set(need.input, firstFrames(batch, needs.sample.shape));
    else if (!batch.facts) throw new Error(`input '${need.input}' (${need.kind}) needs the synthetic data's tracks, captions and motion`);
    else if (need.kind === 'trajectory') out.set(need.input, trajectories(batch, need));
    else if (need.kind === 'motion') out.set(need.input, motionMaps(batch, need));
    else out.set(need.input, captions(batch, need, dropped));
  }
  return out;
}

function firstFrames(batch: Batch, { c, t, h, w }: DataNeeds['sample']['shape']): Float32Array {
  const frame = h * w;
  const out = new Float32Array(batch.size * c * frame);
  for (let j = 0; j < batch.size; j++) {
    for (let k = 0; k < c; k++) out.set(batch.video.subarray(((j * c + k) * t) * frame, ((j * c + k) * t + 1) * frame), (j * c + k) * frame);
  }
  return out;
}

function trajectories(batch: Batch, need: ConditionNeed): Float32Array {
  const [b, t, n] = need.shape;
  const out = new Float32Array(b * t * n * 2);
  batch.facts!.forEach((f, j) => {
    for (let s = 0; s < t; s++) {
      // the trajectory's frames spread over the clip's when their counts differ
      const frame = t === 1 ? 0 : Math.round((s * (f.track.length - 1)) / (t - 1));
      const [x, y] = f.track[frame];
      for (let k = 0; k < n; k++) {
        const angle = (2 * Math.PI * k) / n;
        const at = ((j * t + s) * n + k) * 2;
        out[at] = n === 1 ? x : x + f.radius[0] * Math.cos(angle);
        out[at + 1] = n === 1 ? y : y + f.radius[1] * Math.sin(angle);
      }
    }
  });
  return out;
}

function motionMaps(batch: Batch, need: ConditionNeed): Float32Array {
  const per = need.shape.slice(1).reduce((p, z) => p * z, 1);
  const out = new Float32Array(need.shape[0] * per);
  batch.facts!.forEach((f, j) => out.set(f.motion(), j * per));
  return out;
}

const wordRows = new Map<string, Float32Array>();

/** A word's embedding row: c standard normal values from the word's hash (Box–Muller). */
export function wordEmbedding(word: string, c: number): Float32Array {
  const key = `${c}:${word}`;
  let row = wordRows.get(key);
  if (!row) {
    const rng = new Rng(hashKey([...word].map((ch) => ch.codePointAt(0)!)), c);
    row = Float32Array.from({ length: c }, () => Math.sqrt(-2 * Math.log(1 - rng.float())) * Math.cos(2 * Math.PI * rng.float()));
    wordRows.set(key, row);
  }
  return row;
}

function captions(batch: Batch, need: ConditionNeed, dropped?: (j: number) => boolean): Float32Array {
  const [b, l, c] = need.shape;
  const out = new Float32Array(b * l * c);
  batch.facts!.forEach((f, j) => {
    if (dropped?.(j)) return;
    f.caption.split(' ').slice(0, l).forEach((word, k) => out.set(wordEmbedding(word, c), (j * l + k) * c));
  });
  return out;
}
