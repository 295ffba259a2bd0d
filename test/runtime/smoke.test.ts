import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { runKernel } from './kernels.ts';

gpuTest('a trivial kernel runs on the adapter and writes every element', async () => {
  const n = 1000;
  const x = Float32Array.from({ length: n }, (_, i) => i);
  const [y] = await runKernel({
    key: 'smoke-double', entryPoint: 'main', dispatch: [Math.ceil(n / 64), 1, 1],
    bindings: [{ name: 'x', access: 'read' }, { name: 'y', access: 'read_write' }],
    wgsl: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < ${n}u) { y[id.x] = 2.0 * x[id.x]; }
}`,
  }, [x, n]);
  for (let i = 0; i < n; i++) assert.is(y[i], 2 * i);
});

test.run();
