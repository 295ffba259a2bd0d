// Runs a lowered graph: uploads inputs and parameters, records every dispatch into one Program
// (one submit, one wait) and reads the outputs back as named tensors.
import type { LoweredGraph } from '../codegen/lower.ts';
import type { MemoryPlan } from '../codegen/plan-memory.ts';
import { relayout, type NamedTensor } from '../compiler/named-tensor.ts';
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

export async function runLowered(gpu: Gpu, lowered: LoweredGraph, inputs: ReadonlyMap<string, NamedTensor>,
  params: ReadonlyMap<string, Float64Array>, opts: { everyNode?: boolean; plan?: MemoryPlan; repeat?: number; profile?: boolean } = {}): Promise<GraphRun> {
  if (opts.everyNode && opts.plan) throw new Error('runLowered: everyNode reads every value, so values cannot share memory (no plan)');
  const program = new Program(gpu);
  try {
    const byBuffer = new Map<string, Tensor>();
    const outputBuffers = new Set([...lowered.outputs.values()].map((v) => v.buffer));
    const inputOf = new Map([...lowered.inputs].map(([name, v]) => [v.buffer, { name, v }]));
    const paramOf = new Map([...lowered.params].map(([path, buffer]) => [buffer, path]));
    const slots = opts.plan?.slots.map((elements, i) => program.scratch(`slot.${i}`, elements));
    for (const b of lowered.buffers.values()) {
      let t: Tensor;
      const slot = opts.plan?.slotOf.get(b.name);
      if (slot !== undefined) {
        byBuffer.set(b.name, slots![slot]);
        continue;
      }
      if (b.role === 'input') {
        const { name, v } = inputOf.get(b.name)!;
        const given = inputs.get(name);
        if (!given) throw new Error(`no value for input '${name}'`);
        const data = relayout(given, v.axes).data;
        t = program.input(b.name, b.dtype === 'i32' ? Int32Array.from(data) : Float32Array.from(data));
      } else if (b.role === 'param') {
        const path = paramOf.get(b.name)!;
        const data = params.get(path);
        if (!data) throw new Error(`no value for parameter '${path}'`);
        if (data.length !== b.elements) throw new Error(`parameter '${path}' has ${data.length} values, expected ${b.elements}`);
        t = program.input(b.name, Float32Array.from(data));
      } else if (outputBuffers.has(b.name) || (opts.everyNode && b.role === 'value')) {
        t = program.output(b.name, b.elements, b.dtype);
      } else {
        t = program.scratch(b.name, b.elements, b.dtype);
      }
      byBuffer.set(b.name, t);
    }
    for (const s of lowered.steps) program.step(s.spec, s.buffers.map((n) => byBuffer.get(n)!), s.label);
    const result = await program.run({ repeat: opts.repeat, profile: opts.profile });
    const outputs = new Map<string, NamedTensor>();
    for (const [name, v] of lowered.outputs) {
      const host = result.outputs[v.buffer];
      const data = host ? Float64Array.from(host) : relayout(inputs.get([...lowered.inputs].find(([, iv]) => iv.buffer === v.buffer)![0])!, v.axes).data;
      outputs.set(name, { axes: v.axes, data });
    }
    const values = new Map(Object.entries(result.outputs).map(([k, v]) => [k, Float64Array.from(v)]));
    return { outputs, values, wallMs: result.wallMs, dispatches: program.dispatchCount, timings: result.timings };
  } finally {
    program.release();
  }
}
