// `npm run bench`: the adapter's ceilings, then each vdm kernel against TensorFlow.js's WebGPU
// backend on the same adapter. Writes bench/results.json and bench/results.md.
//   --only=REGEX     run the cases whose name matches
//   --target-ms=N    timed work per side and case (default 2000)
import fs from 'node:fs';
import os from 'node:os';
import { openGpu, NoAdapterError } from '../src/runtime/gpu.ts';
import { copyCeiling, fmaCeiling, gemmCeiling, type Ceiling } from './ceilings.ts';
import { allCases, NotAvailable, type BenchCase } from './cases.ts';
import { markdown, type BenchResults, type CaseResult, type SideResult } from './report.ts';
import { loadTfjs, tfBatch, type Tf } from './tfjs.ts';
import { gflops, relativeError, timeBatches } from './util.ts';
import type { Gpu } from '../src/runtime/gpu.ts';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const only = arg('only') ? new RegExp(arg('only')!, 'i') : undefined;
const targetMs = Number(arg('target-ms') ?? 2000);
const log = (s: string) => process.stderr.write(s + '\n');
const message = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e));

async function runVdm(gpu: Gpu, c: BenchCase, x: Record<string, Float32Array>): Promise<{ side: SideResult; out?: Float32Array }> {
  let side;
  try {
    side = await c.vdm(gpu, x);
  } catch (e) {
    if (e instanceof NotAvailable) return { side: { status: 'not available', note: e.message } };
    return { side: { status: 'failed', note: message(e) } };
  }
  try {
    const raw = (await side.program.run()).outputs[side.output.name] as Float32Array;
    const out = side.canonical ? side.canonical(raw) : raw;
    const t = await timeBatches(async (n) => {
      const t0 = performance.now();
      await side.program.run({ repeat: n, read: false });
      return performance.now() - t0;
    }, targetMs, c.maxIterations ?? 50);
    return { side: { status: 'ok', ms: t.ms, medianMs: t.medianMs, iterations: t.iterations, trials: t.trials, gflops: gflops(c.flops, t.ms) }, out };
  } catch (e) {
    return { side: { status: 'failed', note: message(e) } };
  } finally {
    side.program.release();
  }
}

async function runTfjs(tf: Tf, gpu: Gpu, c: BenchCase, x: Record<string, Float32Array>): Promise<{ side: SideResult; out?: Float32Array }> {
  let side;
  try {
    side = c.tfjs(tf, x, gpu);
    const y = tf.tidy(side.op);
    const out = (await y.data()) as Float32Array;
    y.dispose();
    const t = await timeBatches((n) => tfBatch(tf, side!.op, n, gpu.software), targetMs, c.maxIterations ?? 50);
    return { side: { status: 'ok', ms: t.ms, medianMs: t.medianMs, iterations: t.iterations, trials: t.trials, gflops: gflops(c.flops, t.ms) }, out };
  } catch (e) {
    return { side: { status: 'failed', note: message(e) } };
  } finally {
    side?.dispose();
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  const loadAtStart = os.loadavg()[0];
  let gpu: Gpu;
  try {
    gpu = await openGpu();
  } catch (e) {
    if (e instanceof NoAdapterError) { log(`bench: ${e.message}`); return 1; }
    throw e;
  }
  const adapter = gpu.info.description || `${gpu.info.vendor} ${gpu.info.device}`;
  log(`bench: ${adapter}${gpu.software ? ' (software adapter)' : ''}`);
  const tf = await loadTfjs();

  const ceilings: Ceiling[] = [];
  if (!only) {
    for (const measure of [() => copyCeiling(gpu, targetMs / 2), () => fmaCeiling(gpu, targetMs / 2), () => gemmCeiling(gpu, 1024, targetMs)]) {
      const c = await measure();
      log(`  ceiling ${c.name}: ${c.value.toFixed(2)} ${c.unit}`);
      ceilings.push(c);
    }
  }

  const cases: CaseResult[] = [];
  for (const c of allCases().filter((k) => !only || only.test(k.name))) {
    const t0 = performance.now();
    const x = c.inputs();
    const vdm = await runVdm(gpu, c, x);
    const tfjs = await runTfjs(tf, gpu, c, x);
    const result: CaseResult = { name: c.name, shape: c.shape, gflop: c.flops / 1e9, vdm: vdm.side, tfjs: tfjs.side };
    if (vdm.side.gflops && tfjs.side.gflops) result.ratio = vdm.side.gflops / tfjs.side.gflops;
    if (vdm.out && tfjs.out) result.relError = relativeError(vdm.out, tfjs.out);
    cases.push(result);
    log(`  ${c.name}: vdm ${vdm.side.gflops?.toFixed(2) ?? vdm.side.status}, tfjs ${tfjs.side.gflops?.toFixed(2) ?? tfjs.side.status} GFLOP/s` +
      `${result.relError !== undefined ? `, rel. diff ${result.relError.toExponential(1)}` : ''} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }

  const results: BenchResults = {
    date: new Date().toISOString(), adapter, software: gpu.software, node: process.versions.node,
    cpus: os.cpus().length, load: [loadAtStart, os.loadavg()[0]],
    ceilings, cases, totalSeconds: (performance.now() - started) / 1000,
  };
  const dir = new URL('.', import.meta.url);
  fs.writeFileSync(new URL('results.json', dir), JSON.stringify(results, null, 2) + '\n');
  const md = markdown(results);
  fs.writeFileSync(new URL('results.md', dir), md);
  process.stdout.write(md);
  return 0;
}

// Exit explicitly: tfjs and Dawn may hold handles that would keep Node waiting.
main().then((code) => process.exit(code), (e) => { log(`bench: ${message(e)}`); process.exit(1); });
