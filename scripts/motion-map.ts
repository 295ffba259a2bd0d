// Writes the motion maps of the built-in moving shapes, as `vdm train` fills a motion input
// (runtime/data/synthetic.ts motionMap), for `vdm sample --motion FILE`: to sample "the motion of
// clip i" of the training data, or to start a hand-made map from one.
//   npx tsx scripts/motion-map.ts OUT.safetensors|OUT.json [--t 8 --h 16 --w 16] [--seed 0]
//     [--index 0] [--n 1] [--classes K] [--objects 1]
// --n 1 writes [2, t, h, w] (every sample); --n N writes [N, 2, t, h, w] for clips index .. index+N-1.
// --seed, --classes and --objects must be the run's (a label input's classes change the clips drawn).
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { motionMap, syntheticSample } from '../src/runtime/data/synthetic.ts';
import { writeSafetensors } from '../src/runtime/safetensors.ts';

export interface MotionMapOptions {
  readonly t: number;
  readonly h: number;
  readonly w: number;
  readonly seed?: number;
  readonly index?: number;
  readonly n?: number;
  readonly classes?: number;
  readonly objects?: number;
}

/** The maps of clips index .. index + n − 1, [n, 2, t, h, w] flattened, and that shape ([2, t, h, w] for n = 1). */
export function motionMaps(o: MotionMapOptions): { shape: number[]; data: Float32Array } {
  const n = o.n ?? 1;
  const shape = { c: 3, t: o.t, h: o.h, w: o.w };
  const per = 2 * o.t * o.h * o.w;
  const data = new Float32Array(n * per);
  for (let j = 0; j < n; j++) {
    const sample = syntheticSample(o.seed ?? 0, (o.index ?? 0) + j, shape, { classes: o.classes, objects: o.objects });
    data.set(motionMap(sample, shape), j * per);
  }
  return { shape: n === 1 ? [2, o.t, o.h, o.w] : [n, 2, o.t, o.h, o.w], data };
}

/** Writes the maps as one F32 tensor `motion` (.safetensors) or nested arrays (.json). */
export function writeMotionMaps(file: string, o: MotionMapOptions): number[] {
  const { shape, data } = motionMaps(o);
  if (file.toLowerCase().endsWith('.json')) {
    const nest = (at: number, k: number): unknown => {
      if (k === shape.length) return data[at];
      const stride = shape.slice(k + 1).reduce((p, z) => p * z, 1);
      return Array.from({ length: shape[k] }, (_, i) => nest(at + i * stride, k + 1));
    };
    fs.writeFileSync(file, JSON.stringify(nest(0, 0)));
  } else {
    writeSafetensors(file, { motion: { dtype: 'F32', shape, data } });
  }
  return shape;
}

function main(argv: readonly string[]): number {
  const [file, ...rest] = argv;
  const o: Record<string, number> = { t: 8, h: 16, w: 16 };
  const names = ['t', 'h', 'w', 'seed', 'index', 'n', 'classes', 'objects'];
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i].replace(/^--/, '');
    const v = Number(rest[i + 1]);
    if (!names.includes(name) || !Number.isSafeInteger(v) || v < (name === 'seed' || name === 'index' ? 0 : 1)) {
      process.stderr.write(`motion-map: ${rest[i]} ${rest[i + 1] ?? ''}: expected one of ${names.map((x) => `--${x}`).join(', ')} with a whole number\n`);
      return 2;
    }
    o[name] = v;
  }
  if (!file || file.startsWith('--')) {
    process.stderr.write('usage: npx tsx scripts/motion-map.ts OUT.safetensors|OUT.json [--t 8 --h 16 --w 16] [--seed 0] [--index 0] [--n 1] [--classes K] [--objects 1]\n');
    return 2;
  }
  const shape = writeMotionMaps(file, o as unknown as MotionMapOptions);
  process.stdout.write(`${file}: motion maps [${shape.join(', ')}] of clips ${o.index ?? 0}..${(o.index ?? 0) + (o.n ?? 1) - 1} (seed ${o.seed ?? 0})\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
