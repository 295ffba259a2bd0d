// Tuning aid for the GEMM and convolution tilings (not part of the benchmark report).
// Usage: node --import tsx bench/tune-gemm.ts [gemm|conv|conv21|tfjs-gemm|tfjs-conv] [size|tilings...]
//   gemm 1024 lanes:8:16:1 lanes:8:32:1 tiles:64:64:16:4:4
// Prints wall-clock ms per run (best batch) and the adapter's worker-thread CPU time per run: on a
// shared machine the second is the stable figure; "2 idle cores" converts it to the throughput two
// free cores would give. Compile time (first run minus a steady run) is cold with MESA_SHADER_CACHE_DISABLE=true.
import { readdirSync, readFileSync } from 'node:fs';
import { gemmKernel } from '../src/codegen/kernels/gemm.ts';
import type { GemmTiling } from '../src/codegen/kernels/gemm-plan.ts';
import type { ConvParams, ConvTiling } from '../src/codegen/kernels/conv-plan.ts';
import type { KernelSpec } from '../src/codegen/kernels/kernel.ts';
import { contiguous } from '../src/codegen/kernels/view.ts';
import { openGpu, pipelineFor, upload, type Gpu } from '../src/runtime/gpu.ts';
import { gpuWait } from '../src/runtime/wait.ts';
import { loadTfjs, tfBatch } from './tfjs.ts';
import { randomArray } from './util.ts';

/** CPU ticks (1/100 s) of every thread of this process except the main one (which waits on Dawn). */
function workerTicks(): number {
  let ticks = 0;
  for (const t of readdirSync('/proc/self/task')) {
    if (Number(t) === process.pid) continue;
    try {
      const s = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* thread ended */ }
  }
  return ticks;
}

interface Measured { compileMs: number; wallMs: number; cpuMs: number }

async function measure(run: (n: number) => Promise<void>, iters: number): Promise<Measured> {
  const t0 = performance.now();
  await run(1);
  const compileMs = performance.now() - t0;
  let wallMs = Infinity;
  const before = workerTicks();
  for (let r = 0; r < 3; r++) {
    const t1 = performance.now();
    await run(iters);
    wallMs = Math.min(wallMs, (performance.now() - t1) / iters);
  }
  return { compileMs, wallMs, cpuMs: ((workerTicks() - before) * 10) / (3 * iters) };
}

async function timeSpec(gpu: Gpu, spec: KernelSpec, sizes: number[], iters: number): Promise<Measured> {
  const bufs = sizes.map((n, i) => upload(gpu, randomArray(n, 7 + i)));
  gpu.device.pushErrorScope('validation');
  const pipe = pipelineFor(gpu, spec);
  const bg = gpu.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const run = async (n: number) => {
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(...spec.dispatch);
    pass.end();
    gpu.device.queue.submit([enc.finish()]);
    await gpuWait(gpu.software, () => gpu.device.queue.onSubmittedWorkDone());
  };
  const m = await measure(run, iters);
  const err = await gpu.device.popErrorScope();
  if (err) throw new Error(err.message);
  bufs.forEach((b) => b.destroy());
  return m;
}

const report = (what: string, flops: number, m: Measured) => console.log(
  `${what}: compile ~${Math.max(0, m.compileMs - m.wallMs).toFixed(0)} ms, ${m.wallMs.toFixed(1)} ms wall = ${(flops / m.wallMs / 1e6).toFixed(2)} GFLOP/s, ` +
  `${m.cpuMs.toFixed(1)} ms cpu = ${((2 * flops) / m.cpuMs / 1e6).toFixed(2)} GFLOP/s at 2 idle cores`);

function parseTiling(s: string): GemmTiling | ConvTiling {
  const [kind, ...n] = s.split(':');
  const v = n.map(Number);
  if (kind === 'lanes') return { kind, lanes: v[0], rows: v[1], colVecs: v[2] };
  if (kind === 'tiles') return { kind, tileM: v[0], tileN: v[1], tileK: v[2], threadRows: v[3], threadCols: v[4] };
  if (kind === 'direct') return { kind, lanes: v[0], rows: v[1], cols: v[2] };
  throw new Error(`unknown tiling '${s}'`);
}

const CONV = { c: 64, t: 16, h: 32, w: 32, o: 64 };
const convCase = (k: [number, number, number], cin = CONV.c): ConvParams => ({
  x: contiguous([1, cin, CONV.t, CONV.h, CONV.w]), weight: contiguous([CONV.o, cin, ...k]),
  out: contiguous([1, CONV.o, CONV.t, CONV.h, CONV.w]), padding: 'same',
});

const [what = 'gemm', ...rest] = process.argv.slice(2);
const gpu = await openGpu();
if (what === 'gemm') {
  const n = Number(rest[0] ?? 1024);
  const tilings = rest.slice(1).map(parseTiling) as GemmTiling[];
  for (const tiling of tilings.length ? tilings : [undefined]) {
    const spec = gemmKernel({ a: contiguous([n, n]), b: contiguous([n, n]), out: contiguous([n, n]), tiling, adapter: gpu });
    report(`gemm ${n} ${JSON.stringify(tiling ?? 'default')}`, 2 * n ** 3, await timeSpec(gpu, spec, [n * n, n * n, n * n], n >= 1024 ? 2 : 4));
  }
} else if (what === 'conv' || what === 'conv21') {
  const { convKernel } = await import('../src/codegen/kernels/conv.ts');
  const tilings = rest.map(parseTiling) as ConvTiling[];
  const vox = CONV.t * CONV.h * CONV.w;
  const cases: [string, ConvParams][] = what === 'conv' ? [['conv3d 3x3x3', convCase([3, 3, 3])]]
    : [['conv 1x3x3', convCase([1, 3, 3])], ['conv 3x1x1', convCase([3, 1, 1], CONV.o)]];
  for (const tiling of tilings.length ? tilings : [undefined]) {
    for (const [name, p] of cases) {
      const spec = convKernel({ ...p, tiling, adapter: gpu });
      const taps = p.weight.shape.slice(2).reduce((a, b) => a * b, 1);
      const flops = 2 * CONV.o * p.weight.shape[1] * taps * vox;
      report(`${name} ${JSON.stringify(tiling ?? 'default')}`, flops,
        await timeSpec(gpu, spec, [vox * p.weight.shape[1], CONV.o * p.weight.shape[1] * taps, vox * CONV.o], 2));
    }
  }
} else if (what === 'tfjs-gemm' || what === 'tfjs-conv') {
  const tf = await loadTfjs();
  const run = (op: () => import('@tensorflow/tfjs-core').Tensor) => async (n: number) => { await tfBatch(tf, op, n, gpu.software); };
  if (what === 'tfjs-gemm') {
    const n = Number(rest[0] ?? 1024);
    const a = tf.tensor(randomArray(n * n, 1), [n, n]);
    const b = tf.tensor(randomArray(n * n, 2), [n, n]);
    report(`tfjs matMul ${n}`, 2 * n ** 3, await measure(run(() => tf.matMul(a, b)), n >= 1024 ? 2 : 4));
  } else {
    const x = tf.tensor(randomArray(CONV.t * CONV.h * CONV.w * CONV.c, 1), [1, CONV.t, CONV.h, CONV.w, CONV.c]);
    const w = tf.tensor(randomArray(27 * CONV.c * CONV.o, 2), [3, 3, 3, CONV.c, CONV.o]);
    report('tfjs conv3d 3x3x3', 2 * CONV.o * CONV.c * 27 * CONV.t * CONV.h * CONV.w,
      await measure(run(() => tf.conv3d(x as never, w as never, 1, 'same')), 1));
  }
}
process.exit(0);
