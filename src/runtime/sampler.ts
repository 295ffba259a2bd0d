// Runs a lowered sampling program (codegen/sampling.ts) on the adapter: uploads the parameters,
// the conditioning inputs and the step table once, then records the step `k` times per submit and
// submits until every step has run: the loop stays on the GPU (a step counter there picks each
// step's row of the table), nothing is uploaded per step, and the samples are read once, with the
// last submit. Submits are sized to about `chunkSeconds` each, so progress can be reported.
import { planMemory } from '../codegen/plan-memory.ts';
import { rngParams } from '../codegen/kernels/philox.ts';
import { SAMPLE_NOISE_STREAM } from '../codegen/kernels/sampler.ts';
import type { SamplingProgram } from '../codegen/sampling.ts';
import type { Gpu } from './gpu.ts';
import { Program, type Tensor } from './program.ts';

export interface SampleHooks {
  /** After each submit: steps done so far, of `total`. */
  readonly progress?: (done: number, total: number) => void;
  /** Seconds of GPU work per submit after the first (default 1); the first runs one step. */
  readonly chunkSeconds?: number;
  /** Milliseconds on a monotonic clock (default performance.now). */
  readonly now?: () => number;
}

export class Sampler {
  private readonly tensors = new Map<string, Tensor>();

  private constructor(readonly gpu: Gpu, readonly program: SamplingProgram, private readonly prog: Program) {}

  /**
   * Loads `program` with parameters by dotted path and the conditioning inputs by input name, at
   * the model's batch (labels as Int32Array).
   */
  static load(gpu: Gpu, program: SamplingProgram, params: ReadonlyMap<string, ArrayLike<number>>,
    conditions: ReadonlyMap<string, Float32Array | Int32Array>): Sampler {
    const prog = new Program(gpu, undefined, true);
    const s = new Sampler(gpu, program, prog);
    try {
      s.allocate(params, conditions);
    } catch (err) {
      prog.release();
      throw err;
    }
    return s;
  }

  private allocate(params: ReadonlyMap<string, ArrayLike<number>>, conditions: ReadonlyMap<string, Float32Array | Int32Array>): void {
    const { lowered, constants, io } = this.program;
    const plan = planMemory(lowered);
    const slots = plan.slots.map((elements, i) => this.prog.scratch(`slot.${i}`, elements));
    const paramOf = new Map([...lowered.params].map(([path, buffer]) => [buffer, path]));
    const conditionOf = new Map([...this.program.conditions].map(([name, buffer]) => [buffer, name]));
    for (const b of lowered.buffers.values()) {
      const slot = plan.slotOf.get(b.name);
      if (slot !== undefined) { this.tensors.set(b.name, slots[slot]); continue; }
      if (b.role === 'param') {
        const path = paramOf.get(b.name)!;
        const v = params.get(path);
        if (!v) throw new Error(`no value for parameter '${path}'`);
        if (v.length !== b.elements) throw new Error(`parameter '${path}' has ${v.length} values, the model needs ${b.elements}`);
        this.tensors.set(b.name, this.prog.input(b.name, v instanceof Float32Array ? v : Float32Array.from(v)));
        continue;
      }
      const condition = conditionOf.get(b.name);
      if (condition !== undefined) {
        const v = conditions.get(condition);
        if (!v) throw new Error(`no value for input '${condition}'`);
        if (v.length !== b.elements) throw new Error(`input '${condition}' has ${v.length} values, the model needs ${b.elements}`);
        this.tensors.set(b.name, this.prog.input(b.name, b.dtype === 'i32' ? Int32Array.from(v) : Float32Array.from(v)));
        continue;
      }
      // the noisy input holds the samples: read back with the last submit
      this.tensors.set(b.name, b.name === io.x ? this.prog.output(b.name, b.elements) : this.prog.scratch(b.name, b.elements, b.dtype));
    }
    for (const [name, data] of constants) this.prog.write(this.tensor(name), data);
    for (const st of lowered.steps) this.prog.step(st.spec, st.buffers.map((n) => this.tensor(n)), st.label);
  }

  private tensor(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`sampler: no buffer '${name}'`);
    return t;
  }

  /** Runs every step for `seed`; returns the b samples x0 in the noisy input's layout. */
  async sample(seed: number, hooks: SampleHooks = {}): Promise<Float32Array> {
    const { io, timesteps, elements } = this.program;
    const now = hooks.now ?? (() => performance.now());
    const total = timesteps.length;
    this.prog.write(this.tensor(io.counter), new Uint32Array([0, 0]));
    this.prog.write(this.tensor(io.rng), rngParams({ seed, step: 0, stream: SAMPLE_NOISE_STREAM }));
    let done = 0;
    let result: Float32Array | undefined;
    // one submit of k steps; returns its seconds per step
    const chunk = async (k: number) => {
      const last = done + k === total;
      const t0 = now();
      const r = await this.prog.run({ repeat: k, read: last });
      const seconds = (now() - t0) / 1000;
      done += k;
      if (last) result = r.outputs[io.x] as Float32Array;
      hooks.progress?.(done, total);
      return seconds / k;
    };
    // the first step alone (it compiles the kernels), a second to time one, then ~chunkSeconds per submit
    await chunk(1);
    let perStep = done < total ? await chunk(1) : NaN;
    while (done < total) {
      const k = Math.max(1, Math.min(total - done, Math.floor((hooks.chunkSeconds ?? 1) / perStep) || 1));
      perStep = await chunk(k);
    }
    return result!.slice(0, elements);
  }

  /** Device memory held by the program's buffers. */
  get deviceBytes(): number {
    return this.prog.deviceBytes;
  }

  get dispatchesPerStep(): number {
    return this.prog.dispatchCount;
  }

  release(): void {
    this.prog.release();
  }
}
