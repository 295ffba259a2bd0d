// `vdm compile FILE -o DIR`: lowers a checked model to WGSL kernels a person can read and ship:
// DIR/kernels/NN-<family>.wgsl (each distinct kernel once, numbered in first-use order) and
// DIR/program.json (buffers with their memory slots, and the dispatches in order with their
// bindings and workgroup counts).
// The same spec and target give byte-identical files.
import fs from 'node:fs';
import path from 'node:path';
import { lowerGraph, type LoweredGraph } from '../codegen/lower.ts';
import { planMemory, type MemoryPlan } from '../codegen/plan-memory.ts';
import type { AdapterTraits } from '../codegen/kernels/gemm.ts';
import { kernelFamily } from '../codegen/kernels/kernel.ts';
import { checkFile } from '../compiler/frontend/check.ts';
import { diag } from '../compiler/ir/diagnostics.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { parseDimArgs } from './dim-args.ts';
import { printDiagnostics } from './report.ts';

export const TARGETS = ['gpu', 'software'] as const;
export type Target = (typeof TARGETS)[number];

/** What each target tells the kernel generators: a GPU gets workgroup-memory tiles, a CPU adapter SIMD lanes. */
export const TARGET_TRAITS: Record<Target, AdapterTraits> = {
  gpu: { software: false, features: new Set(['subgroups']), info: {} },
  software: { software: true, features: new Set(['subgroups']), info: { subgroupMinSize: 8, subgroupMaxSize: 8 } },
};

export interface CompiledFiles {
  /** relative path -> contents, in a fixed order */
  readonly files: ReadonlyMap<string, string>;
  readonly kernels: number;
  readonly dispatches: number;
  readonly plan: MemoryPlan;
}


/** The files of a compiled program; pure, so tests compare them byte for byte. */
export function compiledFiles(graph: Graph, lowered: LoweredGraph, target: Target): CompiledFiles {
  const plan = planMemory(lowered);
  const files = new Map<string, string>();
  const kernelFile = new Map<string, string>();
  const usedBy = new Map<string, string[]>();
  for (const s of lowered.steps) {
    let file = kernelFile.get(s.spec.key);
    if (!file) {
      file = `kernels/${String(kernelFile.size + 1).padStart(3, '0')}-${kernelFamily(s.spec.key)}.wgsl`;
      kernelFile.set(s.spec.key, file);
      usedBy.set(file, []);
      const bindings = s.spec.bindings.map((b, i) => `//   @binding(${i}) ${b.name} (${b.access})`);
      files.set(file, [`// ${graph.model}: ${file.slice(8, -5)}, entry point ${s.spec.entryPoint}`, '// bindings (group 0):', ...bindings,
        ...(s.spec.features?.length ? [`// needs: ${s.spec.features.join(', ')}`] : []), '', s.spec.wgsl].join('\n'));
    }
    usedBy.get(file)!.push(s.label);
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
  return { files, kernels: kernelFile.size, dispatches: lowered.steps.length, plan };
}

export interface CompileArgs {
  readonly file: string;
  readonly out?: string;
  readonly target?: string;
  readonly dim?: readonly (string | number)[];
  readonly root?: string;
}

export function compileCommand(args: CompileArgs): number {
  const { dims, errors } = parseDimArgs(args.dim);
  if (errors.length) {
    printDiagnostics('vdm', errors);
    return 1;
  }
  const target = (args.target ?? 'gpu') as Target;
  if (!TARGETS.includes(target)) {
    process.stderr.write(`vdm compile: unknown target '${args.target}' (choose ${TARGETS.join(' or ')})\n`);
    return 2;
  }
  const result = checkFile(args.file, { dims, root: args.root });
  if (result.diagnostics.length) {
    printDiagnostics(args.file, result.diagnostics);
    return 1;
  }
  if (!result.graph) {
    printDiagnostics(args.file, [{ ...diag('VDM050', null, `${args.file} defines no model`, 'vdm compile needs a file with a model'), file: args.file }]);
    return 1;
  }
  let compiled: CompiledFiles;
  try {
    compiled = compiledFiles(result.graph, lowerGraph(result.graph, TARGET_TRAITS[target]), target);
  } catch (err) {
    // Limits of the kernel library (not of the spec): say which node, and that the spec itself is fine.
    process.stderr.write(`${args.file}: cannot compile model ${result.graph.model} yet: ${(err as Error).message}\n`);
    return 1;
  }
  const dir = args.out ?? path.join(path.dirname(args.file), `${path.basename(args.file, '.vdm')}.${target}`);
  const kernelsDir = path.join(dir, 'kernels');
  fs.mkdirSync(kernelsDir, { recursive: true });
  // Kernels of an earlier compile into the same folder would otherwise linger under old numbers.
  for (const f of fs.readdirSync(kernelsDir)) if (f.endsWith('.wgsl')) fs.rmSync(path.join(kernelsDir, f));
  for (const [rel, text] of compiled.files) fs.writeFileSync(path.join(dir, rel), text);
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(`${args.file}: model ${result.graph.model} -> ${compiled.kernels} kernels, ${compiled.dispatches} dispatches (${target}) in ${dir}\n`
    + `  activations: ${mb(compiled.plan.plannedBytes)} in ${compiled.plan.slots.length} shared slots (${mb(compiled.plan.unplannedBytes)} unshared)\n`);
  return 0;
}
