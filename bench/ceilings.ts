// What the adapter itself sustains, measured with the simplest kernels that reach it: a buffer
// copy for memory bandwidth, FMA chains in registers for peak arithmetic, and a plain
// register-blocked GEMM as a reference point. Kernel results are read against these.
import type { KernelSpec } from '../src/codegen/kernels/kernel.ts';
import type { Gpu } from '../src/runtime/gpu.ts';
import { Program } from '../src/runtime/program.ts';
import { gpuWait } from '../src/runtime/wait.ts';
import { gflops, randomArray, timeBatches, type Timing } from './util.ts';

export interface Ceiling { name: string; value: number; unit: string; timing: Timing; detail: string }

/** copyBufferToBuffer of a large buffer; bandwidth counts bytes read plus bytes written. */
export async function copyCeiling(gpu: Gpu, targetMs: number): Promise<Ceiling> {
  const bytes = Math.min(256 << 20, Math.floor(gpu.limits.maxBufferSize / 4) * 4);
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const src = gpu.device.createBuffer({ size: bytes, usage });
  const dst = gpu.device.createBuffer({ size: bytes, usage });
  const batch = async (n: number) => {
    const t0 = performance.now();
    const enc = gpu.device.createCommandEncoder();
    for (let i = 0; i < n; i++) enc.copyBufferToBuffer(i % 2 ? dst : src, 0, i % 2 ? src : dst, 0, bytes);
    gpu.device.queue.submit([enc.finish()]);
    await gpuWait(gpu.software, () => gpu.device.queue.onSubmittedWorkDone());
    return performance.now() - t0;
  };
  const timing = await timeBatches(batch, targetMs, 20);
  src.destroy();
  dst.destroy();
  return { name: 'copy', value: (2 * bytes) / (timing.ms * 1e6), unit: 'GB/s', timing, detail: `${bytes >> 20} MiB buffer, read + write` };
}

/** Peak f32 arithmetic: 8 independent vec4 FMA chains per invocation, no memory traffic in the loop. */
export async function fmaCeiling(gpu: Gpu, targetMs: number): Promise<Ceiling> {
  const invocations = 1 << 16;
  const iters = 1024;
  const spec: KernelSpec = {
    key: `bench-fma-${invocations}-${iters}`, entryPoint: 'main', dispatch: [invocations / 64, 1, 1],
    bindings: [{ name: 'y', access: 'read_write' }],
    wgsl: `@group(0) @binding(0) var<storage, read_write> y: array<vec4f>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  var acc: array<vec4f, 8>;
  let seed = f32(g.x) * 1e-7;
  for (var c = 0u; c < 8u; c++) { acc[c] = vec4f(seed + f32(c)); }
  let m = vec4f(0.9999); let a = vec4f(1e-4);
  for (var i = 0u; i < ${iters}u; i++) {
    for (var c = 0u; c < 8u; c++) { acc[c] = fma(acc[c], m, a); }
  }
  var s = vec4f(0.0);
  for (var c = 0u; c < 8u; c++) { s += acc[c]; }
  y[g.x] = s;
}`,
  };
  const p = new Program(gpu);
  p.step(spec, [p.output('y', invocations * 4)]);
  const timing = await timeProgram(p, targetMs);
  return { name: 'FMA peak', value: gflops(invocations * iters * 8 * 4 * 2, timing.ms), unit: 'GFLOP/s', timing, detail: '8 vec4 FMA chains per invocation, f32' };
}

/**
 * C[M,N] = A[M,K] B[K,N], row-major. Each invocation owns a 4x8 block of C held in registers and
 * reads A and B as vec4 straight from global memory (no workgroup memory: on CPU adapters barriers
 * cost more than they save).
 */
export function referenceGemm(m: number, n: number, k: number, wg = 8): KernelSpec {
  if (m % 4 || n % 8 || k % 4) throw new Error('referenceGemm: M % 4, N % 8 and K % 4 must be 0');
  const wgsl = `
@group(0) @binding(0) var<storage, read> A: array<vec4f>;
@group(0) @binding(1) var<storage, read> B: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4f>;
const K4 = ${k / 4}u; const N4 = ${n / 4}u;
@compute @workgroup_size(${wg}, ${wg})
fn main(@builtin(global_invocation_id) g: vec3u) {
  let row = g.y * 4u; let col = g.x * 2u;
  if (row >= ${m}u || col >= N4) { return; }
  var acc: array<vec4f, 8>;
  for (var i = 0u; i < 8u; i++) { acc[i] = vec4f(0.0); }
  for (var kk = 0u; kk < K4; kk++) {
    var a: array<vec4f, 4>;
    for (var r = 0u; r < 4u; r++) { a[r] = A[(row + r) * K4 + kk]; }
    for (var j = 0u; j < 4u; j++) {
      let b0 = B[(kk * 4u + j) * N4 + col];
      let b1 = B[(kk * 4u + j) * N4 + col + 1u];
      for (var r = 0u; r < 4u; r++) { acc[r * 2u] += a[r][j] * b0; acc[r * 2u + 1u] += a[r][j] * b1; }
    }
  }
  for (var r = 0u; r < 4u; r++) { C[(row + r) * N4 + col] = acc[r * 2u]; C[(row + r) * N4 + col + 1u] = acc[r * 2u + 1u]; }
}`;
  return {
    key: `bench-ref-gemm-${m}-${n}-${k}-${wg}`, wgsl, entryPoint: 'main',
    bindings: [{ name: 'A', access: 'read' }, { name: 'B', access: 'read' }, { name: 'C', access: 'read_write' }],
    dispatch: [Math.ceil(n / 8 / wg), Math.ceil(m / 4 / wg), 1],
  };
}

export async function gemmCeiling(gpu: Gpu, size: number, targetMs: number): Promise<Ceiling> {
  const spec = referenceGemm(size, size, size);
  const p = new Program(gpu);
  const a = p.input('A', randomArray(size * size, 1));
  const b = p.input('B', randomArray(size * size, 2));
  const c = p.output('C', size * size);
  p.step(spec, [a, b, c]);
  // Spot-check a few entries so a broken kernel cannot report a fast time.
  const out = (await p.run()).outputs.C as Float32Array;
  const A = randomArray(size * size, 1);
  const B = randomArray(size * size, 2);
  for (const [i, j] of [[0, 0], [size - 1, size - 1], [17, size - 5]]) {
    let s = 0;
    for (let t = 0; t < size; t++) s += A[i * size + t] * B[t * size + j];
    if (Math.abs(s - out[i * size + j]) > 1e-3 * size) throw new Error(`reference GEMM is wrong at (${i}, ${j}): ${out[i * size + j]} vs ${s}`);
  }
  const timing = await timeProgram(p, targetMs);
  return { name: `reference GEMM ${size}`, value: gflops(2 * size ** 3, timing.ms), unit: 'GFLOP/s', timing, detail: 'plain register-blocked 4x8 per invocation, f32 (a reference point, not a bound)' };
}

/** Times a built program over repeated runs (no readback), then releases its buffers. */
async function timeProgram(p: Program, targetMs: number): Promise<Timing> {
  const timing = await timeBatches(async (n) => {
    const t0 = performance.now();
    await p.run({ repeat: n, read: false });
    return performance.now() - t0;
  }, targetMs, 50);
  p.release();
  return timing;
}
