// Counter-based random numbers: every stream is keyed by (seed, key...), so sample i of a dataset
// is the same whatever was drawn before it, in whatever order or batch size (exact resume).

/** 32-bit finaliser of MurmurHash3: a bijection that spreads every input bit over the output. */
function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Hash of a list of non-negative integers (each up to 2^53, split into two 32-bit words). */
export function hashKey(words: readonly number[]): number {
  let h = 0x6a09e667;
  for (const w of words) {
    if (!Number.isSafeInteger(w) || w < 0) throw new RangeError(`random key ${w} is not a non-negative integer`);
    h = fmix32(h ^ fmix32((w >>> 0) + 0x9e3779b9));
    h = fmix32(h ^ fmix32(Math.floor(w / 2 ** 32) + 0x7f4a7c15));
  }
  return h;
}

/** splitmix32-style generator started from a hashed key. */
export class Rng {
  private state: number;

  constructor(...key: number[]) {
    this.state = hashKey(key);
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    return fmix32(this.state);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 2 ** 32;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }
}

/** A permutation of 0..n-1 (Fisher–Yates) determined by the key. */
export function permutation(n: number, ...key: number[]): Uint32Array {
  const rng = new Rng(...key);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
