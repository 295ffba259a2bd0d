// Tiny elementwise kernels for runtime tests: each writes every element, so results are checkable.
import type { KernelSpec } from '../../src/codegen/kernels/kernel.ts';

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
