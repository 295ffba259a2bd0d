// Where one training step's GPU time goes, per kernel family (and the slowest kernels): a tuning
// aid, not part of the benchmark report. Three warm-up steps, five timed steps (wall), then one
// step with every dispatch timed by timestamp queries.
//   node --import tsx bench/profile-step.ts SPEC.vdm [--dim NAME=SIZE ...] [--top N]
import { kernelFamily } from '../src/codegen/kernels/kernel.ts';
import { lowerTraining } from '../src/codegen/training.ts';
import { checkSpec, initialParams } from '../src/pipeline.ts';
import { openGpu } from '../src/runtime/gpu.ts';
import { summarizeByKernel } from '../src/runtime/profile.ts';
import { Trainer } from '../src/runtime/trainer.ts';

async function main() {
  const argv = process.argv.slice(2);
  const file = argv.find((a, i) => !a.startsWith('--') && !['--dim', '--top'].includes(argv[i - 1]));
  if (!file) throw new Error('usage: node --import tsx bench/profile-step.ts SPEC.vdm [--dim NAME=SIZE ...] [--top N]');
  const dims = Object.fromEntries(argv.flatMap((a, i) => (argv[i - 1] === '--dim' ? [a.split('=')] : [])).map(([k, v]) => [k, Number(v)]));
  const top = Number(argv[argv.indexOf('--top') + 1]) || 10;
  const c = checkSpec(file, { dims });
  if (!c.ok) throw new Error(`${file} does not check: vdm check ${file}`);
  const g = c.model.graph;
  const gpu = await openGpu();
  if (!gpu.features.has('timestamp-query')) throw new Error('profiling needs the timestamp-query feature, which this adapter lacks');
  const program = lowerTraining(g, { adapter: gpu, ema: false });
  const trainer = Trainer.load(gpu, program, { params: initialParams(g, { seed: 0 }) });
  const n = program.noisy.axes.reduce((p, [, s]) => p * s, 1);
  const x0 = Float32Array.from({ length: n }, (_, i) => 0.8 * Math.sin(0.37 * i + 1));
  const data = new Map([...program.dataInputs.keys()].map((name) => {
    const input = g.inputs.find((i) => i.name === name)!;
    const size = input.axes.reduce((p, [, s]) => p * s, 1);
    return [name, input.dtype === 'i32' ? new Int32Array(size) : Float32Array.from({ length: size }, (_, k) => 0.5 * Math.sin(k))];
  }));
  for (let s = 1; s <= 3; s++) await trainer.step(x0, data, s, 1e-4, 0);
  const t0 = performance.now();
  for (let s = 4; s <= 8; s++) await trainer.step(x0, data, s, 1e-4, 0);
  const stepMs = (performance.now() - t0) / 5;
  const kernels = summarizeByKernel(await trainer.profileStep());
  const fam = new Map<string, { calls: number; ms: number }>();
  for (const k of kernels) {
    const f = fam.get(kernelFamily(k.key)) ?? { calls: 0, ms: 0 };
    f.calls += k.calls; f.ms += k.totalMs;
    fam.set(kernelFamily(k.key), f);
  }
  const total = kernels.reduce((s, k) => s + k.totalMs, 0);
  process.stdout.write(`${g.model} on ${gpu.info.description}: ${program.lowered.steps.length} dispatches, step ${stepMs.toFixed(1)} ms (wall, mean of 5), GPU ${total.toFixed(1)} ms (profiled)\n`);
  for (const [f, e] of [...fam].sort((a, b) => b[1].ms - a[1].ms)) {
    process.stdout.write(`  ${f.padEnd(28)} ${String(e.calls).padStart(5)} ${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / total).toFixed(0).padStart(4)}%\n`);
  }
  process.stdout.write(`slowest kernels:\n`);
  for (const k of kernels.slice(0, top)) process.stdout.write(`  ${k.totalMs.toFixed(1).padStart(8)} ms  ${k.calls}x  ${k.key.slice(0, 140)}\n`);
  trainer.release();
}

main().then(() => process.exit(0), (e) => { process.stderr.write(`profile-step: ${(e as Error).message}\n`); process.exit(1); });
