// Runs a lowered training step (src/codegen/training.ts) on the adapter: allocates the arenas
// once (parameters, gradients, Adam moments, EMA) and binds every parameter and gradient as a part
// of them, records the step once, then per step writes the batch and the step's keys and
// hyper-parameters and submits. Nothing is read back unless asked: the loss every N steps, the
// state for a checkpoint.
import { planMemory } from '../codegen/plan-memory.ts';
import { adamwParams, NO_INDEX, type AdamWConfig } from '../codegen/kernels/optimizer.ts';
import { rngParams } from '../codegen/kernels/philox.ts';
import { STREAMS, type TrainingProgram } from '../codegen/training.ts';
import type { Gpu } from './gpu.ts';
import { Program, type Tensor } from './program.ts';
import type { DispatchTiming } from './profile.ts';

export interface StepStats {
  readonly loss: number;
  readonly gradNorm: number;
  /** gradients that were NaN or Inf since the last read, and the first one's parameter path */
  readonly nonfinite: { readonly count: number; readonly path: string | null };
}

export interface TrainerState {
  readonly params: Map<string, Float32Array>;
  readonly ema?: Map<string, Float32Array>;
  readonly m: Map<string, Float32Array>;
  readonly v: Map<string, Float32Array>;
}

export class Trainer {
  private readonly tensors = new Map<string, Tensor>();

  private constructor(readonly gpu: Gpu, readonly program: TrainingProgram, private readonly prog: Program, readonly config: AdamWConfig, readonly ema: boolean) {}

  /** Loads `program` with initial parameters (by dotted path, float64 or float32), or a full state to resume. */
  static load(gpu: Gpu, program: TrainingProgram, init: { params: ReadonlyMap<string, ArrayLike<number>>; ema?: ReadonlyMap<string, ArrayLike<number>>;
    m?: ReadonlyMap<string, ArrayLike<number>>; v?: ReadonlyMap<string, ArrayLike<number>> }, config: AdamWConfig = {}): Trainer {
    const prog = new Program(gpu, undefined, true);
    const ema = program.lowered.buffers.has('arena.ema.0');
    const t = new Trainer(gpu, program, prog, config, ema);
    try {
      t.allocate(init);
    } catch (err) {
      prog.release();
      throw err;
    }
    return t;
  }

  private allocate(init: Parameters<typeof Trainer.load>[2]): void {
    const { lowered, arena, arenaGroups, constants } = this.program;
    const plan = planMemory(lowered);
    const slots = plan.slots.map((elements, i) => this.prog.scratch(`slot.${i}`, elements));
    const arenaData = (group: number, values: ReadonlyMap<string, ArrayLike<number>> | undefined, fallback?: ReadonlyMap<string, ArrayLike<number>>) => {
      const data = new Float32Array(arenaGroups[group]);
      for (const e of arena) {
        if (e.group !== group) continue;
        const v = values?.get(e.path) ?? fallback?.get(e.path);
        if (!v) continue;
        if (v.length !== e.length) throw new Error(`parameter '${e.path}' has ${v.length} values, the model needs ${e.length} [${e.shape.join(', ')}]`);
        data.set(v, e.offset); // typed arrays convert in bulk
      }
      return data;
    };
    for (const e of arena) if (!init.params.has(e.path)) throw new Error(`no value for parameter '${e.path}'`);
    for (const b of lowered.buffers.values()) {
      if (b.role !== 'arena') continue;
      const tensor = this.prog.scratch(b.name, b.elements);
      this.tensors.set(b.name, tensor);
      // pooled buffers hold old contents: every arena is written whole
      const [, kind, group] = /^arena\.(\w+)\.(\d+)$/.exec(b.name) ?? [];
      const g = Number(group);
      if (kind === 'param') this.prog.write(tensor, arenaData(g, init.params));
      if (kind === 'ema') this.prog.write(tensor, arenaData(g, init.ema, init.params));
      if (kind === 'm') this.prog.write(tensor, arenaData(g, init.m));
      if (kind === 'v') this.prog.write(tensor, arenaData(g, init.v));
      if (kind === 'grad') this.prog.write(tensor, new Float32Array(arenaGroups[g]));
    }
    for (const b of lowered.buffers.values()) {
      if (b.role === 'arena') continue;
      if (b.part) { this.tensors.set(b.name, this.prog.part(b.name, this.tensors.get(b.part.arena)!, b.part.offset, b.elements)); continue; }
      const slot = plan.slotOf.get(b.name);
      if (slot !== undefined) { this.tensors.set(b.name, slots[slot]); continue; }
      this.tensors.set(b.name, this.prog.scratch(b.name, b.elements, b.dtype));
    }
    for (const [name, data] of constants) this.prog.write(this.tensors.get(name)!, data);
    for (const s of lowered.steps) this.prog.step(s.spec, s.buffers.map((n) => this.tensors.get(n)!), s.label);
    this.clearFlag();
  }

  // No bad gradient yet: count 0, first index none.
  private clearFlag(): void {
    for (const flag of this.program.io.flags) this.prog.write(this.tensor(flag), new Uint32Array([0, NO_INDEX]));
  }

  private tensor(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`trainer: no buffer '${name}'`);
    return t;
  }

  /**
   * One training step: x0 is the clean batch ([b, ...] in the noisy input's axis order), `data`
   * the other model inputs (labels as Int32Array), `step` counts from 1 (keys, bias corrections).
   */
  async step(x0: Float32Array, data: ReadonlyMap<string, Float32Array | Int32Array>, step: number, lr: number, seed: number): Promise<void> {
    const { io } = this.program;
    this.prog.write(this.tensor(io.x0), x0);
    for (const [name, buffer] of this.program.dataInputs) {
      const v = data.get(name);
      if (!v) throw new Error(`trainer: no data for input '${name}'`);
      this.prog.write(this.tensor(buffer), v);
    }
    this.prog.write(this.tensor(io.rngNoise), rngParams({ seed, step, stream: STREAMS.noise }));
    this.prog.write(this.tensor(io.rngTimesteps), rngParams({ seed, step, stream: STREAMS.timesteps }));
    this.prog.write(this.tensor(io.adamw), adamwParams(this.config, lr, step));
    await this.prog.run({ read: false });
  }

  /** The last step's loss and gradient norm, and the non-finite gradients seen since the last read. */
  async stats(): Promise<StepStats> {
    const { io, arena } = this.program;
    const [loss, norm, ...flags] = await this.prog.read([io.loss, io.gradNorm, ...io.flags].map((n) => this.tensor(n)));
    const count = flags.reduce((n, f) => n + f[0], 0);
    let path: string | null = null;
    if (count > 0) {
      const group = flags.findIndex((f) => f[0] > 0);
      const index = flags[group][1];
      path = arena.find((e) => e.group === group && index >= e.offset && index < e.offset + e.length)?.path ?? null;
      this.clearFlag();
    }
    return { loss: loss[0], gradNorm: norm[0], nonfinite: { count, path } };
  }

  /** Parameters, EMA and Adam moments by dotted path (for checkpoints and checks). */
  async state(): Promise<TrainerState> {
    const kinds = ['param', 'm', 'v', ...(this.ema ? ['ema'] : [])];
    const groups = this.program.arenaGroups.length;
    const data = await this.prog.read(kinds.flatMap((k) => Array.from({ length: groups }, (_, g) => this.tensor(`arena.${k}.${g}`))));
    const split = (k: number) => new Map(this.program.arena.map((e) => [e.path, Float32Array.from((data[k * groups + e.group] as Float32Array).subarray(e.offset, e.offset + e.length))]));
    return { params: split(0), m: split(1), v: split(2), ...(this.ema ? { ema: split(3) } : {}) };
  }

  /** Reads any buffer of the step (tests: gradients, the target, the noisy input). */
  async read(names: readonly string[]): Promise<(Float32Array | Int32Array | Uint32Array)[]> {
    return this.prog.read(names.map((n) => this.tensor(n)));
  }

  /** Device memory held by the step's buffers. */
  get deviceBytes(): number {
    return this.prog.deviceBytes;
  }

  /** Runs the last step's inputs once more with every dispatch timed (timestamp-query): where a step's GPU time goes. */
  async profileStep(): Promise<DispatchTiming[]> {
    return (await this.prog.run({ profile: true, read: false })).timings ?? [];
  }

  release(): void {
    this.prog.release();
  }
}
