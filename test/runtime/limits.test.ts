import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { openGpu } from '../../src/runtime/gpu.ts';
import { checkTensorFits, TensorTooLargeError } from '../../src/runtime/limits.ts';
import { BufferPool } from '../../src/runtime/pool.ts';
import { Program } from '../../src/runtime/program.ts';
import { affine, runKernel } from './kernels.ts';

function caught(fn: () => unknown): TensorTooLargeError {
  try { fn(); } catch (e) { if (e instanceof TensorTooLargeError) return e; throw e; }
  throw new Error('expected TensorTooLargeError');
}

gpuTest('a tensor over the storage binding limit is refused before any allocation', async () => {
  const gpu = await openGpu();
  const limit = gpu.limits.maxStorageBufferBindingSize;
  const pool = new BufferPool(gpu);
  const elements = Math.floor(limit / 4) + 1;
  const err = caught(() => pool.acquire('latents', elements * 4));
  assert.is(err.tensor, 'latents');
  assert.is(err.bytes, elements * 4);
  assert.is(err.limit, limit);
  assert.match(err.message, /'latents'/);
  assert.match(err.message, /maxStorageBufferBindingSize/);
  assert.match(err.message, new RegExp(String(limit)));
  assert.match(err.message, /[Rr]educe the batch/);
  assert.is(pool.stats.created, 0, 'nothing was allocated');
  // The same through a Program: the name the user gave appears in the message.
  const p = new Program(gpu, pool);
  assert.throws(() => p.scratch('attention_scores', elements), /'attention_scores' needs .* maxStorageBufferBindingSize/);
  assert.is(pool.stats.created, 0);
  p.release();
});

test('maxBufferSize is checked too, and uniform bindings against their own limit', () => {
  const limits = { maxBufferSize: 1000, maxStorageBufferBindingSize: 4000, maxUniformBufferBindingSize: 64 };
  assert.is(caught(() => checkTensorFits(limits, 'w', 1001)).limitName, 'maxBufferSize');
  assert.is(caught(() => checkTensorFits(limits, 'u', 65, 'uniform')).limitName, 'maxUniformBufferBindingSize');
  assert.not.throws(() => checkTensorFits(limits, 'ok', 1000));
  assert.throws(() => checkTensorFits(limits, 'neg', -1), /invalid byte size/);
});

gpuTest('runKernel names the oversized output binding instead of failing inside the driver', async () => {
  const gpu = await openGpu();
  const elements = Math.floor(gpu.limits.maxStorageBufferBindingSize / 4) + 16;
  let message = '';
  try { await runKernel(affine(16, 1, 0), [new Float32Array(16), elements]); } catch (e) { message = (e as Error).message; }
  assert.match(message, /tensor 'y' needs/);
});

test.run();
