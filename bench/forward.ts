// `npm run bench:forward`: whole forward passes of specs on this machine's adapter, lowered with
// each value layout, timed side by side in one process (best batch of each, both measured twice
// in alternation). Writes bench/forward.md. Not part of the tests.
import fs from 'node:fs';
import os from 'node:os';
import { lowerGraph, type ValueLayout } from '../src/codegen/lower.ts';
import { planMemory } from '../src/codegen/plan-memory.ts';
import { checkFile } from '../src/compiler/check.ts';
import { relayout } from '../src/compiler/named-tensor.ts';
import { exampleInputs, initParams } from '../src/compiler/evaluate.ts';
import { openGpu } from '../src/runtime/gpu.ts';
import { runLowered } from '../src/runtime/run-graph.ts';
import { relativeError, timeBatches } from './util.ts';

const SPECS: [string, Record<string, number>][] = [
  ['specs/tiny-video-dit.vdm', {}], // seeded initialisation: adaLN-Zero makes its output 0, the work is the same
  ['specs/lightweight-depthwise.vdm', { b: 1, t: 8, h: 16, w: 16 }],
  ['specs/propagation.vdm', { b: 1, t: 8, h: 16, w: 16 }],
];
const LAYOUTS: ValueLayout[] = ['node', 'channels-last'];

const gpu = await openGpu();
const rows: string[] = [];
const started = new Date().toISOString();
for (const [file, dims] of SPECS) {
  const graph = checkFile(file, { dims }).graph!;
  const inputs = exampleInputs(graph, 1);
  const params = initParams(graph, 0);
  const runs = LAYOUTS.map((layout) => {
    const lowered = lowerGraph(graph, gpu, layout);
    const plan = planMemory(lowered);
    return { layout, lowered, batch: async (n: number) => (await runLowered(gpu, lowered, inputs, params, { plan, repeat: n })).wallMs };
  });
  const best = new Map<ValueLayout, number>();
  for (let round = 0; round < 2; round++) {
    for (const r of runs) {
      const t = await timeBatches(r.batch, 1500, 20, 3);
      best.set(r.layout, Math.min(best.get(r.layout) ?? Infinity, t.ms));
    }
  }
  const [a, b] = await Promise.all(runs.map((r) => runLowered(gpu, r.lowered, inputs, params)));
  const name = graph.outputs[0].name;
  const outA = a.outputs.get(name)!;
  const agree = relativeError(relayout(b.outputs.get(name)!, outA.axes).data, outA.data);
  const [node, last] = [best.get('node')!, best.get('channels-last')!];
  const dimText = Object.entries(graph.dims).map(([k, v]) => `${k}=${v}`).join(' ');
  rows.push(`| ${graph.model} | ${dimText} | ${runs[0].lowered.steps.length} | ${node.toFixed(1)} ms | ${last.toFixed(1)} ms | ${(node / last).toFixed(2)} | ${agree.toExponential(1)} |`);
  console.log(rows[rows.length - 1]);
}

const md = [
  '# Forward passes by value layout',
  '',
  `${started} · adapter: ${gpu.info.description || gpu.info.vendor} · ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)} at the end`,
  '',
  '| model | dims | dispatches | node order | channels last | node / channels-last time | outputs differ by |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows,
  '',
  'Time per forward pass (parameters initialised, seed 0): the best batch of 3, each layout measured twice in alternation in one process; memory planned. "outputs differ by" is the largest difference of the two outputs relative to the largest value.',
  '',
].join('\n');
fs.writeFileSync('bench/forward.md', md);
process.exit(0);
