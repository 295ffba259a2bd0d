// The training benchmark's comparison point: the same denoisers written by hand in TensorFlow.js
// (no vdm code between the spec and the ops), trained with tf.variableGrads and an AdamW update
// written like vdm's optimizer kernel (codegen/kernels/optimizer.ts). Parameters are named by
// vdm's dotted paths and shaped as vdm lays them out (linear weights [in, out], qkv columns
// q | k | v with heads of consecutive channels), so vdm's initial values load unchanged and the
// parameter lists can be compared name by name.
import { createRequire } from 'node:module';
import type { Tf } from './tfjs.ts';

type Tensor = import('@tensorflow/tfjs-core').Tensor;
type Variable = import('@tensorflow/tfjs-core').Variable;
type Scalar = import('@tensorflow/tfjs-core').Scalar;

export interface TfModel {
  /** parameter path -> shape, in declaration order */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  /** x [b, c, t, h, w] (noisy), s [b] (float timesteps), labels [b] int32 when the model has them -> prediction like x */
  forward(vars: ReadonlyMap<string, Tensor>, x: Tensor, s: Tensor, labels?: Tensor): Tensor;
}

/** DiT with adaLN-Zero blocks (std/dit.vdm): `pos` lists the sin-cos tables added after the patch embedding. */
export interface DitConfig {
  readonly c: number;
  readonly dims: { readonly t: number; readonly h: number; readonly w: number };
  readonly d: number;
  readonly depth: number;
  readonly heads: number;
  readonly patch: { readonly t: number; readonly h: number; readonly w: number };
  readonly out: number;
  readonly pos: readonly ('hw' | 't')[];
  /** label rows (classes + the null row), absent: no class embedder */
  readonly labelRows?: number;
  readonly freq?: number;
  readonly mlpRatio?: number;
}

/** A per-pixel MLP denoiser: timestep MLP added to a channel embedding, residual tanh-GELU MLPs. */
export interface MlpConfig {
  readonly c: number;
  readonly d: number;
  readonly freq: number;
  readonly blocks: number;
  readonly ratio: number;
}

/**
 * Registers tfjs-core's gradient functions, which only the @tensorflow/tfjs umbrella package
 * registers (not installed here). Core's ES modules use extensionless imports Node cannot load, so
 * esbuild (tsx's bundler) bundles dist/register_all_gradients.js once; the copy of core inside the
 * bundle shares the engine and the gradient registry through tfjs's globals.
 */
export async function registerGradients(): Promise<void> {
  const esbuild = await import('esbuild');
  const require = createRequire(import.meta.url);
  const out = await esbuild.build({
    entryPoints: [require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')],
    bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'error',
  });
  await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
}

/**
 * tfjs's webgpu matMul picks a split-K program for products with few output tiles and K >= 2000;
 * with B transposed (as the matMul gradient dA = dy · Bᵀ asks) it returns wrong values on lavapipe
 * (tfjs 4.22: relative error ~1.4 against float64 for [2, 2304] · [384, 2304]ᵀ; the other programs
 * agree to 1e-6). DiT's adaLN projections (6d >= 2000 outputs, b rows) hit it, and their input
 * gradients came out wrong. The training benchmark sets WEBGPU_MATMUL_PROGRAM_TYPE to this value,
 * the packed 32 x 32 program tfjs uses for every larger product, which was also the fastest
 * correct choice there (the small-output program took 2-3x longer per step).
 */
export const MATMUL_PACKED = 3;

const silu = (tf: Tf, x: Tensor) => tf.mul(x, tf.sigmoid(x));

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): tfjs-core has no GELU op.
function geluTanh(tf: Tf, x: Tensor): Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** x [..., in] @ weight [in, out] + bias, over the last axis. */
function linear(tf: Tf, p: ReadonlyMap<string, Tensor>, name: string, x: Tensor): Tensor {
  const w = p.get(`${name}.weight`)!;
  const [k, n] = w.shape as [number, number];
  const y = tf.add(tf.matMul(tf.reshape(x, [-1, k]), w), p.get(`${name}.bias`)!);
  return tf.reshape(y, [...x.shape.slice(0, -1), n]);
}

function layerNorm(tf: Tf, x: Tensor, eps: number): Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
}

/** cos | sin of s · 10000^(-k / half): DiT's timestep frequencies (primitives/sinusoidal.ts). */
function sinusoidal(tf: Tf, s: Tensor, dim: number): Tensor {
  const half = dim / 2;
  const freqs = tf.tensor1d(Float32Array.from({ length: half }, (_, k) => Math.exp((-Math.log(10000) * k) / half)));
  const args = tf.mul(tf.reshape(s, [-1, 1]), tf.reshape(freqs, [1, half]));
  return tf.concat([tf.cos(args), tf.sin(args)], 1);
}

/** The fixed sin-cos table [N, d] over tokens in (t, h, w) order (primitives/sincos.ts's channel blocks). */
export function positionTable(grid: { t: number; h: number; w: number }, d: number, tables: readonly ('hw' | 't')[]): Float32Array {
  const out = new Float64Array(grid.t * grid.h * grid.w * d);
  // one block of `channels` channels: [sin | cos] of pos · 10000^(-j / half)
  const block = (row: number, first: number, channels: number, pos: number) => {
    const half = channels / 2;
    for (let j = 0; j < channels; j++) {
      const arg = pos / 10000 ** ((j % half) / half);
      out[row * d + first + j] += j < half ? Math.sin(arg) : Math.cos(arg);
    }
  };
  for (let t = 0, row = 0; t < grid.t; t++) for (let h = 0; h < grid.h; h++) for (let w = 0; w < grid.w; w++, row++) {
    for (const table of tables) {
      if (table === 't') block(row, 0, d, t);
      else { block(row, 0, d / 2, w); block(row, d / 2, d / 2, h); }
    }
  }
  return Float32Array.from(out);
}

export function ditModel(tf: Tf, cfg: DitConfig): TfModel {
  const { c, d, depth, heads, patch } = cfg;
  const freq = cfg.freq ?? 256;
  const hidden = d * (cfg.mlpRatio ?? 4);
  const grid = { t: cfg.dims.t / patch.t, h: cfg.dims.h / patch.h, w: cfg.dims.w / patch.w };
  const tokens = grid.t * grid.h * grid.w;
  const patchC = patch.t * patch.h * patch.w * c;
  const shapes = new Map<string, number[]>();
  const lin = (name: string, i: number, o: number) => { shapes.set(`${name}.weight`, [i, o]); shapes.set(`${name}.bias`, [o]); };
  // declaration order = the graph's node order (arena order in vdm)
  lin('t_embedder.fc1', freq, d);
  lin('t_embedder.fc2', d, d);
  if (cfg.labelRows) shapes.set('y_embedder.embedding_table.weight', [cfg.labelRows, d]);
  lin('x_embedder.proj', patchC, d);
  for (let i = 0; i < depth; i++) {
    lin(`blocks.${i}.ada`, d, 6 * d);
    lin(`blocks.${i}.attn.qkv`, d, 3 * d);
    lin(`blocks.${i}.attn.proj`, d, d);
    lin(`blocks.${i}.mlp.fc1`, d, hidden);
    lin(`blocks.${i}.mlp.fc2`, hidden, d);
  }
  lin('final_layer.ada', d, 2 * d);
  lin('final_layer.linear', d, cfg.out);
  let pos: Tensor | undefined;
  const dh = d / heads;

  const attention = (p: ReadonlyMap<string, Tensor>, name: string, y: Tensor, b: number) => {
    const qkv = tf.transpose(tf.reshape(linear(tf, p, `${name}.qkv`, y), [b, tokens, 3, heads, dh]), [2, 0, 3, 1, 4]);
    const [q, k, v] = tf.unstack(qkv, 0);
    const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
    const o = tf.matMul(tf.softmax(scores, -1), v); // [b, heads, tokens, dh]
    return linear(tf, p, `${name}.proj`, tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [b, tokens, d]));
  };
  const modulate = (x: Tensor, shift: Tensor, scale: Tensor) => tf.add(tf.mul(x, tf.add(tf.expandDims(scale, 1), 1)), tf.expandDims(shift, 1));

  return {
    shapes,
    forward(p, x, s, labels) {
      const b = x.shape[0];
      // patchify: tokens [b, (T, H, W), (pt, ph, pw, c)], patch offsets outermost, c innermost; in two
      // transposes, as the webgpu backend transposes at most 6 axes: c last, then the offsets inward
      const last = tf.transpose(tf.reshape(x, [b, c, -1]), [0, 2, 1]);
      const rows = tf.reshape(last, [b * grid.t, patch.t, grid.h, patch.h, grid.w, patch.w * c]);
      const patched = tf.transpose(rows, [0, 2, 4, 1, 3, 5]);
      let z = linear(tf, p, 'x_embedder.proj', tf.reshape(patched, [b, tokens, patchC]));
      pos ??= tf.keep(tf.tensor2d(positionTable(grid, d, cfg.pos), [tokens, d]));
      z = tf.add(z, pos);
      let cond = linear(tf, p, 't_embedder.fc2', silu(tf, linear(tf, p, 't_embedder.fc1', sinusoidal(tf, s, freq))));
      if (cfg.labelRows) {
        if (!labels) throw new Error('ditModel: the model has a class embedder: give labels');
        cond = tf.add(cond, tf.gather(p.get('y_embedder.embedding_table.weight')!, labels));
      }
      const sc = silu(tf, cond);
      for (let i = 0; i < depth; i++) {
        const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = tf.split(linear(tf, p, `blocks.${i}.ada`, sc), 6, 1);
        const y = modulate(layerNorm(tf, z, 1e-6), shiftMsa, scaleMsa);
        z = tf.add(z, tf.mul(tf.expandDims(gateMsa, 1), attention(p, `blocks.${i}.attn`, y, b)));
        const y2 = modulate(layerNorm(tf, z, 1e-6), shiftMlp, scaleMlp);
        const mlp = linear(tf, p, `blocks.${i}.mlp.fc2`, geluTanh(tf, linear(tf, p, `blocks.${i}.mlp.fc1`, y2)));
        z = tf.add(z, tf.mul(tf.expandDims(gateMlp, 1), mlp));
      }
      const [shift, scale] = tf.split(linear(tf, p, 'final_layer.ada', sc), 2, 1);
      z = linear(tf, p, 'final_layer.linear', modulate(layerNorm(tf, z, 1e-6), shift, scale));
      // unpatchify: the inverse permutations
      const oc = cfg.out / (patch.t * patch.h * patch.w);
      const grouped = tf.transpose(tf.reshape(z, [b * grid.t, grid.h, grid.w, patch.t, patch.h, patch.w * oc]), [0, 3, 1, 4, 2, 5]);
      const u = tf.transpose(tf.reshape(grouped, [b, -1, oc]), [0, 2, 1]);
      return tf.reshape(u, [b, oc, cfg.dims.t, cfg.dims.h, cfg.dims.w]);
    },
  };
}

export function mlpModel(tf: Tf, cfg: MlpConfig): TfModel {
  const { c, d, freq } = cfg;
  const shapes = new Map<string, number[]>();
  const lin = (name: string, i: number, o: number) => { shapes.set(`${name}.weight`, [i, o]); shapes.set(`${name}.bias`, [o]); };
  lin('t_fc1', freq, d);
  lin('t_fc2', d, d);
  lin('embed', c, d);
  for (let i = 0; i < cfg.blocks; i++) { lin(`blocks.${i}.fc1`, d, cfg.ratio * d); lin(`blocks.${i}.fc2`, cfg.ratio * d, d); }
  lin('out', d, c);
  return {
    shapes,
    forward(p, x, s) {
      const [b, , t, h, w] = x.shape;
      const e = linear(tf, p, 't_fc2', silu(tf, linear(tf, p, 't_fc1', sinusoidal(tf, s, freq))));
      // channels last: [b, (t, h, w), c]
      const rows = tf.reshape(tf.transpose(x, [0, 2, 3, 4, 1]), [b, t * h * w, c]);
      let z = silu(tf, tf.add(linear(tf, p, 'embed', rows), tf.expandDims(e, 1)));
      for (let i = 0; i < cfg.blocks; i++) {
        z = tf.add(z, linear(tf, p, `blocks.${i}.fc2`, geluTanh(tf, linear(tf, p, `blocks.${i}.fc1`, z))));
      }
      const y = tf.reshape(linear(tf, p, 'out', z), [b, t, h, w, c]);
      return tf.transpose(y, [0, 4, 1, 2, 3]);
    },
  };
}

export interface AdamWSettings {
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number;
}

export interface TfTrainerOptions {
  /** x0's shape [b, c, t, h, w] */
  readonly shape: readonly number[];
  /** the schedule's alpha-bar per timestep */
  readonly alphasCumprod: ArrayLike<number>;
  readonly predict: 'epsilon' | 'v' | 'x0';
  readonly adamw: AdamWSettings;
  /** which parameters get weight decay (vdm's rule, training.ts) */
  readonly decays: (path: string, shape: readonly number[]) => boolean;
}

let trainers = 0;

/**
 * Variables, Adam moments and one training step: q_sample with noise and timesteps drawn by tfjs,
 * forward, MSE, tf.variableGrads, global-norm clipping and AdamW (decoupled weight decay, bias
 * corrections as PyTorch). Every op is queued on the GPU: nothing is read back during a step.
 */
export class TfTrainer {
  readonly vars = new Map<string, Variable>();
  private readonly byName = new Map<string, string>();
  private readonly m = new Map<string, Variable>();
  private readonly v = new Map<string, Variable>();
  private readonly sqrtAb: Tensor;
  private readonly sqrt1mAb: Tensor;

  constructor(private readonly tf: Tf, readonly model: TfModel, init: ReadonlyMap<string, ArrayLike<number>>, private readonly opts: TfTrainerOptions) {
    // variable names are global to the tfjs engine: one prefix per trainer
    const prefix = `train${trainers++}/`;
    for (const [path, shape] of model.shapes) {
      const value = init.get(path);
      if (!value) throw new Error(`tfjs: no initial value for '${path}'`);
      const t = tf.tensor(Float32Array.from(value), [...shape]);
      this.vars.set(path, tf.variable(t, true, prefix + path));
      this.byName.set(prefix + path, path);
      t.dispose();
      this.m.set(path, tf.variable(tf.zeros([...shape]), false));
      this.v.set(path, tf.variable(tf.zeros([...shape]), false));
    }
    this.sqrtAb = tf.tensor1d(Float32Array.from(opts.alphasCumprod, (a) => Math.sqrt(a)));
    this.sqrt1mAb = tf.tensor1d(Float32Array.from(opts.alphasCumprod, (a) => Math.sqrt(1 - a)));
  }

  /** The mean squared error of the model's prediction at x_t against `target`. */
  loss(xt: Tensor, s: Tensor, labels: Tensor | undefined, target: Tensor): Scalar {
    const tf = this.tf;
    return tf.mean(tf.squaredDifference(this.model.forward(this.vars, xt, s, labels), target)) as Scalar;
  }

  /** Loss and global gradient norm for given x_t, timesteps and target (the parameters stay). */
  async lossAndGradNorm(xt: Tensor, s: Tensor, labels: Tensor | undefined, target: Tensor): Promise<{ loss: number; gradNorm: number }> {
    const tf = this.tf;
    const [loss, norm] = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => this.loss(xt, s, labels, target), [...this.vars.values()]);
      return [value, this.globalNorm(Object.values(grads))];
    });
    const out = { loss: (await loss.data())[0], gradNorm: (await norm.data())[0] };
    loss.dispose();
    norm.dispose();
    return out;
  }

  private globalNorm(grads: Tensor[]): Tensor {
    const tf = this.tf;
    return tf.sqrt(tf.sum(tf.stack(grads.map((g) => tf.sum(tf.square(g))))));
  }

  /** x_t, the timesteps and the target for a clean batch, drawn as a tfjs training loop draws them. */
  private draw(x0: Float32Array): { xt: Tensor; s: Tensor; target: Tensor } {
    const tf = this.tf;
    const shape = [...this.opts.shape];
    const b = shape[0];
    const x = tf.tensor(x0, shape);
    const noise = tf.randomNormal(shape);
    const t = tf.randomUniform([b], 0, this.opts.alphasCumprod.length, 'int32');
    const per = [b, ...shape.slice(1).map(() => 1)];
    const a = tf.reshape(tf.gather(this.sqrtAb, t), per), sg = tf.reshape(tf.gather(this.sqrt1mAb, t), per);
    const xt = tf.add(tf.mul(a, x), tf.mul(sg, noise));
    const target = this.opts.predict === 'epsilon' ? noise : this.opts.predict === 'x0' ? x : tf.sub(tf.mul(a, noise), tf.mul(sg, x));
    return { xt, s: tf.cast(t, 'float32'), target };
  }

  /** Forward and loss only, on a fresh draw (context for the step's time). Call inside tf.tidy. */
  forwardLoss(x0: Float32Array, labels?: Int32Array): Scalar {
    const { xt, s, target } = this.draw(x0);
    return this.loss(xt, s, labels && this.tf.tensor1d(labels, 'int32'), target);
  }

  /** One training step (update number `step`, from 1); returns the loss. Call inside tf.tidy. */
  step(x0: Float32Array, labels: Int32Array | undefined, step: number, lr: number): Scalar {
    const tf = this.tf;
    const { betas: [b1, b2], eps, weightDecay, maxGradNorm } = this.opts.adamw;
    const { xt, s, target } = this.draw(x0);
    const y = labels && tf.tensor1d(labels, 'int32');
    const { value, grads } = tf.variableGrads(() => this.loss(xt, s, y, target), [...this.vars.values()]);
    const norm = this.globalNorm(Object.values(grads));
    const clip = maxGradNorm > 0 ? tf.minimum(1, tf.div(maxGradNorm, tf.add(norm, 1e-6))) : tf.scalar(1);
    const bc1 = 1 - b1 ** step, bc2 = 1 - b2 ** step;
    for (const [name, grad] of Object.entries(grads)) {
      const path = this.byName.get(name)!;
      const p = this.vars.get(path)!, m = this.m.get(path)!, v = this.v.get(path)!;
      const g = tf.mul(grad, clip);
      m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
      v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
      const wd = this.opts.decays(path, p.shape) ? weightDecay : 0;
      const update = tf.div(tf.mul(m, lr / bc1), tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps));
      p.assign(tf.sub(wd ? tf.mul(p, 1 - lr * wd) : p, update));
    }
    return value;
  }

  dispose(): void {
    for (const map of [this.vars, this.m, this.v]) for (const t of map.values()) t.dispose();
    this.sqrtAb.dispose();
    this.sqrt1mAb.dispose();
  }
}
