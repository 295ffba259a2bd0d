// Tiny elementwise kernels for runtime tests: each writes every element, so results are checkable;
// and runKernel, which runs one kernel on fresh buffers for the kernel suites.
import type { KernelSpec } from '../../src/codegen/kernels/kernel.ts';
import { dispatchAll, openGpu, readback, upload, type HostArray } from '../../src/runtime/gpu.ts';
import { checkTensorFits } from '../../src/runtime/limits.ts';
import { gpuWait } from '../../src/runtime/wait.ts';

/** y = a * x + b, elementwise over n elements. */
export function affine(n: number, a: number, b: number): KernelSpec {
  return {
    key: `test-affine-${n}-${a}-${b}`, entryPoint: 'main', dispatch: [Math.ceil(n / 64), 1, 1],
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
    wgsl: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < ${n}u) { y[id.x] = ${a.toFixed(6)} * x[id.x] + ${b.toFixed(6)}; }
}`,
  };
}

/** z = x + y, elementwise over n elements. */
export function add(n: number): KernelSpec {
  return {
    key: `test-add-${n}`, entryPoint: 'main', dispatch: [Math.ceil(n / 64), 1, 1],
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read' }, { name: 'z', access: 'read_write' }],
    wgsl: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < ${n}u) { z[id.x] = x[id.x] + y[id.x]; }
}`,
  };
}

/** y[i] = x[i] + 1 repeated `iters` times per element: enough work for a measurable duration. */
export function busy(n: number, iters: number): KernelSpec {
  return {
    key: `test-busy-${n}-${iters}`, entryPoint: 'main', dispatch: [Math.ceil(n / 64), 1, 1],
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
    wgsl: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= ${n}u) { return; }
  var s = x[id.x];
  for (var i = 0u; i < ${iters}u; i++) { s = s * 0.5 + 1.0; }
  y[id.x] = s;
}`,
  };
}

/**
 * Runs one kernel: uploads inputs, poisons outputs with NaN (so an unwritten element fails a
 * comparison), dispatches and reads the outputs back as Float32Arrays. `args` follow spec.bindings
 * order; a number is the element count of an output.
 */
export async function runKernel(spec: KernelSpec, args: (HostArray | number)[]): Promise<Float32Array[]> {
  if (args.length !== spec.bindings.length) {
    throw new Error(`kernel ${spec.key} has ${spec.bindings.length} bindings but ${args.length} arguments were given`);
  }
  const gpu = await openGpu();
  const buffers: GPUBuffer[] = [];
  const outputs: { buf: GPUBuffer; n: number }[] = [];
  try {
    spec.bindings.forEach((b, i) => {
      const a = args[i];
      if (typeof a === 'number') {
        checkTensorFits(gpu.limits, b.name, a * 4); // before the host-side NaN array too
        const buf = upload(gpu, new Float32Array(a).fill(NaN), GPUBufferUsage.STORAGE, b.name);
        buffers.push(buf);
        outputs.push({ buf, n: a });
      } else {
        buffers.push(upload(gpu, a, b.access === 'uniform' ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE, b.name));
      }
    });
    gpu.device.pushErrorScope('validation');
    try {
      dispatchAll(gpu, [{ spec, buffers }]);
    } finally {
      const err = await gpuWait(gpu.software, () => gpu.device.popErrorScope());
      if (err) throw new Error(`kernel ${spec.key}: ${err.message}`);
    }
    return await Promise.all(outputs.map(async ({ buf, n }) => new Float32Array(await readback(gpu, buf, n * 4))));
  } finally {
    for (const b of buffers) b.destroy();
  }
}
