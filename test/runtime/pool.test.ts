import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { openGpu } from '../../src/runtime/gpu.ts';
import { BufferPool, sizeClass } from '../../src/runtime/pool.ts';

test('size classes round up by at most 25% and stay multiples of 4', () => {
  for (const n of [1, 255, 256, 257, 1000, 4096, 5000, 123457, 3_000_001]) {
    const c = sizeClass(n);
    assert.ok(c >= n, `${n} -> ${c}`);
    assert.is(c % 4, 0);
    if (n > 256) assert.ok(c <= n * 1.25 + 4, `${n} -> ${c} wastes too much`);
  }
  assert.is(sizeClass(1000), sizeClass(1020), 'nearby sizes share a class');
  assert.is(sizeClass(5000, 4800 + 200), 5000, 'the cap wins over rounding');
});

gpuTest('released buffers are reused by size class, not reallocated', async () => {
  const gpu = await openGpu();
  const pool = new BufferPool(gpu);
  const a = pool.acquire('a', 4000);
  const b = pool.acquire('b', 100_000);
  assert.is(pool.stats.created, 2);
  pool.release(a);
  pool.release(b);
  assert.is(pool.stats.inUse, 0);
  const c = pool.acquire('c', 4090); // same class as 4000
  assert.is(c, a);
  const d = pool.acquire('d', 99_000);
  assert.is(d, b);
  assert.is(pool.stats.reused, 2);
  assert.is(pool.stats.created, 2);
  const e = pool.acquire('e', 40_000); // another class: a new buffer
  assert.is.not(e, a);
  assert.is(pool.stats.created, 3);
  const foreign = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
  assert.throws(() => pool.release(foreign), /not acquired/);
  foreign.destroy();
  pool.release(c); pool.release(d); pool.release(e);
  assert.throws(() => pool.release(e), /released twice|not acquired/);
  pool.trim();
  assert.is(pool.stats.freeBytes, 0);
});

test.run();
