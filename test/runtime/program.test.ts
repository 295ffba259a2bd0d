import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { openGpu, pipelineCount } from '../../src/runtime/gpu.ts';
import { BufferPool } from '../../src/runtime/pool.ts';
import { Program } from '../../src/runtime/program.ts';
import { summarizeByKernel } from '../../src/runtime/profile.ts';
import { add, affine, busy } from './kernels.ts';

const n = 1000;
const ramp = () => Float32Array.from({ length: n }, (_, i) => i);

gpuTest('several dispatches run in one submit and outputs are read once', async () => {
  const gpu = await openGpu();
  const pool = new BufferPool(gpu);
  const p = new Program(gpu, pool);
  const x = p.input('x', ramp());
  const h = p.scratch('h', n);
  const y = p.output('y', n);
  const z = p.output('z', n);
  const before = pipelineCount(gpu);
  p.step(affine(n, 2, 1), [x, h])      // h = 2x + 1
    .step(affine(n, 3, 0), [h, y])     // y = 3h
    .step(add(n), [h, y, z])           // z = h + y
    .step(affine(n, 2, 1), [z, h]);    // same kernel again: no new pipeline
  assert.is(p.dispatchCount, 4);
  const r = await p.run();
  assert.is(pipelineCount(gpu) - before <= 3, true, 'one pipeline per distinct kernel key');
  assert.equal(Object.keys(r.outputs).sort(), ['y', 'z'], 'scratch tensors are not read back');
  for (let i = 0; i < n; i++) {
    assert.is(r.outputs.y[i], 3 * (2 * i + 1));
    assert.is(r.outputs.z[i], 4 * (2 * i + 1));
  }
  // Inputs can change between runs; the recorded steps are reused.
  p.write(x, new Float32Array(n).fill(1));
  const r2 = await p.run();
  assert.is(r2.outputs.z[7], 12);
  p.release();
  assert.is(pool.stats.inUse, 0);
  assert.throws(() => p.input('again', ramp()), /after release/);
});

gpuTest('repeat records the sequence many times with one submit', async () => {
  const gpu = await openGpu();
  const q = new Program(gpu);
  const a = q.input('a', ramp());
  const b = q.output('b', n);
  q.step(affine(n, 1, 1), [a, b]).step(affine(n, 1, 0), [b, a]); // a += 1 per repetition
  const r = await q.run({ repeat: 5 });
  assert.is(r.outputs.b[10], 15);
  // One Program, one run at a time: its staging buffer is shared between runs.
  const pending = q.run();
  let message = '';
  try { await q.run(); } catch (e) { message = (e as Error).message; }
  assert.match(message, /still pending/);
  assert.is((await pending).outputs.b[10], 16);
  try { await q.run({ repeat: 0 }); message = ''; } catch (e) { message = (e as Error).message; }
  assert.match(message, /repeat must be a positive integer/);
  q.release();
});

gpuTest('bad steps are rejected with clear messages before anything runs', async () => {
  const gpu = await openGpu();
  const p = new Program(gpu);
  const x = p.input('x', ramp());
  const y = p.output('y', n);
  assert.throws(() => p.step(add(n), [x, y]), /3 bindings \(x, y, z\) but 2 tensors/);
  const other = new Program(gpu);
  const foreign = other.output('f', n);
  assert.throws(() => p.step(affine(n, 1, 0), [foreign, y]), /belongs to another program/);
  assert.throws(() => p.input('x', ramp()), /defined twice/);
  assert.throws(() => p.step(add(n), [x, y, y]), /'y' is bound twice in one dispatch and written/);
  assert.throws(() => p.write(x, new Float32Array(3)), /has 1000 elements, got 3/);
  assert.throws(() => p.step({ ...affine(n, 1, 0), key: 'needs-f16-x', features: ['not-a-feature'] }, [x, y]), /not-a-feature/);
  p.release();
  other.release();
});

gpuTest('invalid WGSL fails the run with the compiler message and the kernel key', async () => {
  const gpu = await openGpu();
  const p = new Program(gpu);
  const a = p.input('a', new Float32Array(16));
  p.step({ ...affine(16, 1, 0), key: 'broken-kernel', wgsl: 'fn oops(' }, [a, p.output('b', 16)]);
  let message = '';
  try { await p.run(); } catch (e) { message = (e as Error).message; }
  assert.match(message, /WGSL/);
  assert.match(message, /broken-kernel/);
  p.release();
});

gpuTest('profiling returns one duration per dispatch and per-kernel totals', async () => {
  const gpu = await openGpu();
  if (!gpu.features.has('timestamp-query')) {
    const p = new Program(gpu);
    const x = p.input('x', ramp());
    p.step(affine(n, 1, 0), [x, p.output('y', n)]);
    let message = '';
    try { await p.run({ profile: true }); } catch (e) { message = (e as Error).message; }
    assert.match(message, /timestamp-query/);
    p.release();
    return;
  }
  const m = 1 << 14;
  const p = new Program(gpu);
  const x = p.input('x', new Float32Array(m).fill(1));
  const h = p.scratch('h', m);
  const y = p.output('y', m);
  p.step(busy(m, 2000), [x, h], 'long').step(busy(m, 20), [h, y], 'short').step(busy(m, 2000), [y, h], 'long again');
  await p.run(); // first run includes shader compilation on some drivers
  const r = await p.run({ profile: true, repeat: 2 });
  const t = r.timings!;
  assert.is(t.length, 6);
  assert.equal(t.map((d) => d.label), ['long', 'short', 'long again', 'long', 'short', 'long again']);
  for (const d of t) assert.ok(Number.isFinite(d.ms) && d.ms > 0, `${d.label}: ${d.ms} ms`);
  // Minimums, because the first dispatches after a pause can include driver thread wake-up.
  const fastest = (label: string) => Math.min(...t.filter((d) => d.label === label).map((d) => d.ms));
  assert.ok(fastest('long') > fastest('short') * 3, `2000 iterations (${fastest('long')} ms) should outlast 20 (${fastest('short')} ms)`);
  const total = t.reduce((s, d) => s + d.ms, 0);
  assert.ok(total <= r.wallMs * 1.05 + 0.5, `GPU time ${total} ms within wall time ${r.wallMs} ms`);
  const byKernel = summarizeByKernel(t);
  assert.is(byKernel.length, 2);
  assert.is(byKernel[0].key, busy(m, 2000).key);
  assert.is(byKernel[0].calls, 4);
  p.release();
});

gpuTest('parts of an arena bind as tensors of their own, and read() reads them back', async () => {
  const gpu = await openGpu();
  const pool = new BufferPool(gpu);
  const p = new Program(gpu, pool);
  const m = 100; // 64 + 36: the second part starts at the next 256-byte boundary
  const arena = p.scratch('arena', 128 + m);
  const a = p.part('a', arena, 0, m);
  const b = p.part('b', arena, 128, m);
  const x = p.scratch('x', m);
  p.write(x, Float32Array.from({ length: m }, (_, i) => i));
  // a dispatch may not read one part of an arena while it writes another (one usage per buffer)
  assert.throws(() => p.step(affine(m, 3, 0), [a, b]), /same buffer, one read and one written/);
  p.step(affine(m, 2, 1), [x, a]).step(add(m), [x, x, b]).step(affine(m, 3, 0), [a, x]);
  await p.run();
  const [whole, pb] = await p.read([arena, b]);
  for (let i = 0; i < m; i++) {
    assert.is(whole[i], 2 * i + 1);
    assert.is(whole[128 + i], 2 * i);
    assert.is(pb[i], 2 * i);
  }
  assert.is(whole[m], 0, 'the gap between parts is untouched');
  p.write(b, new Float32Array(m).fill(7));
  assert.is((await p.read([arena]))[0][128], 7, 'writes land at the part\'s offset');
  assert.throws(() => p.part('c', arena, 10, 4), /multiple of/);
  assert.throws(() => p.part('d', arena, 192, 64), /outside/);
  p.release();
  assert.is(pool.stats.inUse, 0, 'parts are not released twice');
});

test.run();
