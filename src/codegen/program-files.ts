// The files of a compiled program, as `vdm compile` writes them: kernels/NNN-<family>.wgsl (each
// distinct kernel once, numbered in first-use order) and program.json (buffers with their memory
// slots, and the dispatches in order with their bindings and workgroup counts). Pure, so the same
// lowered graph gives the same bytes and tests compare them with golden snapshots.
import type { Graph } from '../compiler/ir/graph.ts';
import { kernelFamily } from './kernels/kernel.ts';
import type { LoweredGraph } from './lower.ts';
import type { MemoryPlan } from './plan-memory.ts';
import type { Target } from './targets.ts';

export interface CompiledFiles {
  /** relative path -> contents, in a fixed order */
  readonly files: ReadonlyMap<string, string>;
  readonly kernels: number;
  readonly dispatches: number;
}

export function compiledFiles(graph: Graph, lowered: LoweredGraph, plan: MemoryPlan, target: Target): CompiledFiles {
  const files = new Map<string, string>();
  const kernelFile = new Map<string, string>();
  for (const s of lowered.steps) {
    if (kernelFile.has(s.spec.key)) continue;
    const file = `kernels/${String(kernelFile.size + 1).padStart(3, '0')}-${kernelFamily(s.spec.key)}.wgsl`;
    kernelFile.set(s.spec.key, file);
    const bindings = s.spec.bindings.map((b, i) => `//   @binding(${i}) ${b.name} (${b.access})`);
    files.set(file, [`// ${graph.model}: ${file.slice(8, -5)}, entry point ${s.spec.entryPoint}`, '// bindings (group 0):', ...bindings,
      ...(s.spec.features?.length ? [`// needs: ${s.spec.features.join(', ')}`] : []), '', s.spec.wgsl].join('\n'));
  }
  const program = {
    model: graph.model,
    target,
    dims: graph.dims,
    // node values and scratch that never live at once share a slot (plan-memory.ts)
    slots: plan.slots,
    buffers: [...lowered.buffers.values()].map((b) => ({
      name: b.name, role: b.role, dtype: b.dtype, elements: b.elements, ...(plan.slotOf.has(b.name) ? { slot: plan.slotOf.get(b.name) } : {}),
    })),
    inputs: Object.fromEntries([...lowered.inputs].map(([name, v]) => [name, { buffer: v.buffer, axes: v.axes }])),
    params: Object.fromEntries(lowered.params),
    outputs: Object.fromEntries([...lowered.outputs].map(([name, v]) => [name, { buffer: v.buffer, axes: v.axes }])),
    steps: lowered.steps.map((s) => ({
      node: s.label, kernel: kernelFile.get(s.spec.key), entryPoint: s.spec.entryPoint, buffers: s.buffers, workgroups: s.spec.dispatch,
    })),
  };
  // One line per buffer and step: diffs of program.json stay readable.
  const lines = (xs: unknown[]) => xs.map((x) => `    ${JSON.stringify(x)}`).join(',\n');
  files.set('program.json', [
    '{',
    `  "model": ${JSON.stringify(program.model)},`,
    `  "target": ${JSON.stringify(program.target)},`,
    `  "dims": ${JSON.stringify(program.dims)},`,
    `  "inputs": ${JSON.stringify(program.inputs)},`,
    `  "outputs": ${JSON.stringify(program.outputs)},`,
    `  "params": ${JSON.stringify(program.params)},`,
    `  "slots": ${JSON.stringify(program.slots)},`,
    `  "buffers": [\n${lines(program.buffers)}\n  ],`,
    `  "steps": [\n${lines(program.steps)}\n  ]`,
    '}',
    '',
  ].join('\n'));
  return { files, kernels: kernelFile.size, dispatches: lowered.steps.length };
}
