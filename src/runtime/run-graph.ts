// Runs a lowered graph: uploads inputs and parameters once, records every dispatch into one Program
// (one submit, one wait per run) and reads the outputs back as named tensors.
import type { LoweredGraph } from '../codegen/lower.ts';
import type { MemoryPlan } from '../codegen/plan-memory.ts';
import { relayout, type NamedTensor } from '../compiler/ir/named-tensor.ts';
import type { Gpu } from './gpu.ts';
import type { DispatchTiming } from './profile.ts';
import { Program, type Tensor } from './program.ts';

export interface GraphRun {
  readonly outputs: ReadonlyMap<string, NamedTensor>;
  /** with `everyNode`: every node value's buffer name -> its contents */
  readonly values: ReadonlyMap<string, Float64Array>;
  /** from submit to outputs mapped, for all `repeat` runs together */
  readonly wallMs: number;
  readonly dispatches: number;
  /** per dispatch, with `profile` */
  readonly timings?: readonly DispatchTiming[];
}

export interface LoadOptions {
  /** read every node value back (for node-by-node checks); excludes a memory plan */
  readonly everyNode?: boolean;
  readonly plan?: MemoryPlan;
}

export interface LoadedGraph {
  run(opts?: { repeat?: number; profile?: boolean }): Promise<GraphRun>;
  release(): void;
  /** bytes of device memory its buffers occupy */
  readonly deviceBytes: number;
}

/** Uploads `inputs` and `params` for `lowered` once; each run() then only records, submits and reads. */
export function loadLowered(gpu: Gpu, lowered: LoweredGraph, inputs: ReadonlyMap<string, NamedTensor>,
  params: ReadonlyMap<string, Float64Array | Float32Array>, opts: LoadOptions = {}): LoadedGraph {
  if (opts.everyNode && opts.plan) throw new Error('loadLowered: everyNode reads every value, so values cannot share memory (no plan)');
  const inputOf = new Map([...lowered.inputs].map(([name, v]) => [v.buffer, { name, v }]));
  // a planned program's buffers at their exact sizes: the plan's figure is what the device holds
  const program = new Program(gpu, undefined, opts.plan !== undefined);
  try {
    const byBuffer = new Map<string, Tensor>();
    const outputBuffers = new Set([...lowered.outputs.values()].map((v) => v.buffer));
    const paramOf = new Map([...lowered.params].map(([path, buffer]) => [buffer, path]));
    const slots = opts.plan?.slots.map((elements, i) => program.scratch(`slot.${i}`, elements));
    for (const b of lowered.buffers.values()) {
      const slot = opts.plan?.slotOf.get(b.name);
      if (slot !== undefined) {
        byBuffer.set(b.name, slots![slot]);
      } else if (b.role === 'input') {
        const { name, v } = inputOf.get(b.name)!;
        const given = inputs.get(name);
        if (!given) throw new Error(`no value for input '${name}'`);
        const data = relayout(given, v.axes).data;
        byBuffer.set(b.name, program.input(b.name, b.dtype === 'i32' ? Int32Array.from(data) : Float32Array.from(data)));
      } else if (b.role === 'param') {
        const path = paramOf.get(b.name)!;
        const data = params.get(path);
        if (!data) throw new Error(`no value for parameter '${path}'`);
        if (data.length !== b.elements) throw new Error(`parameter '${path}' has ${data.length} values, expected ${b.elements}`);
        // uploaded as it is when already f32 (the upload copies it); converted in bulk otherwise
        byBuffer.set(b.name, program.input(b.name, data instanceof Float32Array ? data : new Float32Array(data)));
      } else if (outputBuffers.has(b.name) || (opts.everyNode && b.role === 'value')) {
        byBuffer.set(b.name, program.output(b.name, b.elements, b.dtype));
      } else {
        byBuffer.set(b.name, program.scratch(b.name, b.elements, b.dtype));
      }
    }
    for (const s of lowered.steps) program.step(s.spec, s.buffers.map((n) => byBuffer.get(n)!), s.label);
  } catch (err) {
    program.release();
    throw err;
  }
  return {
    async run(runOpts = {}) {
      const result = await program.run(runOpts);
      const outputs = new Map<string, NamedTensor>();
      for (const [name, v] of lowered.outputs) {
        // an output that is an input itself has no dispatch writing it: it is the input
        const data = result.outputs[v.buffer] ?? relayout(inputs.get(inputOf.get(v.buffer)!.name)!, v.axes).data;
        outputs.set(name, { axes: v.axes, data: Float64Array.from(data) });
      }
      const values = new Map(opts.everyNode ? Object.entries(result.outputs).map(([k, v]) => [k, Float64Array.from(v)]) : []);
      return { outputs, values, wallMs: result.wallMs, dispatches: program.dispatchCount, timings: result.timings };
    },
    release: () => program.release(),
    get deviceBytes() { return program.deviceBytes; },
  };
}

/** One load, one run, release. */
export async function runLowered(gpu: Gpu, lowered: LoweredGraph, inputs: ReadonlyMap<string, NamedTensor>,
  params: ReadonlyMap<string, Float64Array | Float32Array>, opts: LoadOptions & { repeat?: number; profile?: boolean } = {}): Promise<GraphRun> {
  const loaded = loadLowered(gpu, lowered, inputs, params, opts);
  try {
    return await loaded.run({ repeat: opts.repeat, profile: opts.profile });
  } finally {
    loaded.release();
  }
}
