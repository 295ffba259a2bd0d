// `npm run bench:forward`: whole forward passes of specs on this machine's adapter, lowered three
// ways (no fusion; elementwise chains fused, the default; fused with channels-last values), timed
// side by side in one process (best batch of each, all measured twice in alternation). Writes
// bench/forward.md. Not part of the tests.
import fs from 'node:fs';
import os from 'node:os';
import { formatDiagnostic } from '../src/compiler/ir/diagnostics.ts';
import { exampleInputs, liveParams } from '../src/compiler/reference/evaluate.ts';
import { checkSpec, load, lowerModel, planModel, type ValueLayout } from '../src/pipeline.ts';
import { openGpu } from '../src/runtime/gpu.ts';
import { relativeError, timeBatches } from './util.ts';

const SPECS: [string, Record<string, number>][] = [
  ['specs/tiny-video-dit.vdm', {}],
  ['specs/lightweight-depthwise.vdm', { b: 1, t: 8, h: 16, w: 16 }],
  ['specs/propagation.vdm', { b: 1, t: 8, h: 16, w: 16 }],
];
const VARIANTS: { name: string; layout: ValueLayout; fuse: boolean }[] = [
  { name: 'unfused', layout: 'node', fuse: false },
  { name: 'fused', layout: 'node', fuse: true },
  { name: 'fused, channels-last', layout: 'channels-last', fuse: true },
];

const gpu = await openGpu();
const rows: string[] = [];
const started = new Date().toISOString();
for (const [file, dims] of SPECS) {
  const checked = checkSpec(file, { dims });
  if (!checked.ok) throw new Error(checked.diagnostics.map(formatDiagnostic).join('\n'));
  const { graph } = checked.model;
  const inputs = exampleInputs(graph, 1);
  const params = liveParams(graph, 0); // no output stuck at 0 (adaLN-Zero), so the outputs compare
  const runs = VARIANTS.map((v) => {
    const planned = planModel(lowerModel(checked.model, { adapter: gpu, layout: v.layout, fuse: v.fuse }));
    const loaded = load(gpu, planned, { params, inputs });
    return { ...v, planned, loaded, batch: async (n: number) => (await loaded.run({ repeat: n })).wallMs };
  });
  const best = runs.map(() => Infinity);
  for (let round = 0; round < 2; round++) {
    for (const [i, r] of runs.entries()) best[i] = Math.min(best[i], (await timeBatches(r.batch, 1500, 20, 3)).ms);
  }
  const results = [];
  for (const r of runs) { results.push(await r.loaded.run()); r.loaded.release(); }
  const name = graph.outputs[0].name;
  const base = results[0].outputs.get(name)!; // every variant's outputs come in the declared axis order
  const differ = Math.max(...results.slice(1).map((r) => relativeError(r.outputs.get(name)!.data, base.data)));
  const dimText = Object.entries(graph.dims).map(([k, v]) => `${k}=${v}`).join(' ');
  const cells = runs.map((r, i) => `${best[i].toFixed(1)} ms (${r.planned.lowered.steps.length})`);
  rows.push(`| ${graph.model} | ${dimText} | ${cells.join(' | ')} | ${(best[0] / best[1]).toFixed(2)} | ${(best[1] / best[2]).toFixed(2)} | ${differ.toExponential(1)} |`);
  console.log(rows[rows.length - 1]);
}

const md = [
  '# Forward passes by value layout',
  '',
  `${started} · adapter: ${gpu.info.description || gpu.info.vendor} · ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)} at the end`,
  '',
  '| model | dims | unfused (dispatches) | fused | fused, channels-last | fusion speed-up | channels-last speed-up | outputs differ by |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
  ...rows,
  '',
  'Time per forward pass (parameters initialised, seed 0, zeros and ones perturbed; dispatches in brackets): the best batch of 3, each variant measured twice in alternation in one process; memory planned. Speed-ups: unfused / fused and fused / fused channels-last. "outputs differ by": the largest difference from the unfused output, relative to its largest value.',
  '',
].join('\n');
fs.writeFileSync('bench/forward.md', md);
process.exit(0);
