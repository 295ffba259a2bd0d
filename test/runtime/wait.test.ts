import { promisify } from 'node:util';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Program } from '../../src/runtime/program.ts';
import { gpuWait, waiting } from '../../src/runtime/wait.ts';
import { busy } from './kernels.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Stands in for dawn.node's event loop during a wait of `ms`: re-queues itself through the global
 * setImmediate until the wait ends. Returns how often it ran after the first 10 ms (past the spin)
 * and how many milliseconds that part lasted (a loaded machine stretches it).
 */
async function ticksDuring(gentle: boolean, ms: number): Promise<{ late: number; lateMs: number }> {
  let finished = false;
  let late = 0;
  let lateMs = 0;
  await gpuWait(gentle, async () => {
    const t0 = performance.now();
    const tick = () => {
      if (performance.now() - t0 > 10) late++;
      if (!finished) globalThis.setImmediate(tick);
    };
    globalThis.setImmediate(tick);
    await sleep(ms);
    finished = true;
    lateMs = performance.now() - t0 - 10;
  });
  return { late, lateMs };
}

test('a gentle wait turns a tight setImmediate loop into about one poll per millisecond', async () => {
  let tight = await ticksDuring(false, 40);
  const gentle = await ticksDuring(true, 40);
  // Polling once a millisecond bounds the gentle loop by the time it had, however loaded the
  // machine (load only lowers the count; without the throttle it runs thousands of times in
  // ~30 ms on an idle machine); the tight loop must at least not run less. A busy machine can
  // starve one tight run (seen: once in 30 ms), so it gets three more tries; a throttle that
  // also caught the plain loop would fail them all.
  assert.ok(gentle.late <= 2 * gentle.lateMs + 5, `gentle loop ran ${gentle.late} times in ${gentle.lateMs.toFixed(1)} ms`);
  for (let i = 0; i < 3 && tight.late < gentle.late; i++) tight = await ticksDuring(false, 40);
  assert.ok(tight.late >= gentle.late, `tight loop ran ${tight.late} times, the gentle one ${gentle.late}`);
});

test('the global setImmediate is restored after waits, nested, failed or not gentle', async () => {
  const original = globalThis.setImmediate;
  await gpuWait(true, async () => {
    assert.ok(waiting());
    assert.is.not(globalThis.setImmediate, original);
    await gpuWait(true, () => sleep(2));
    assert.is(await promisify(globalThis.setImmediate)('kept'), 'kept', 'util.promisify still works during a wait');
    assert.is.not(globalThis.setImmediate, original, 'an inner wait ending leaves the outer one throttled');
  });
  assert.is(globalThis.setImmediate, original);
  assert.not.ok(waiting());
  try {
    await gpuWait(true, async () => { throw new Error('device lost'); });
    assert.unreachable('the rejection propagates');
  } catch (e) {
    assert.match((e as Error).message, 'device lost');
  }
  assert.is(globalThis.setImmediate, original);
  await gpuWait(false, async () => assert.is(globalThis.setImmediate, original));
});

gpuTest('program runs on the adapter complete through the gentle wait and leave the global alone', async () => {
  const gpu = await openGpu();
  const original = globalThis.setImmediate;
  const n = 4096;
  const p = new Program(gpu);
  const x = p.input('x', new Float32Array(n).fill(2));
  const y = p.output('y', n);
  p.step(busy(n, 2000), [x, y]);
  const r = await p.run({ repeat: 3 });
  // s -> s/2 + 1 converges to 2 from 2: every element stays exactly 2.
  assert.ok((r.outputs.y as Float32Array).every((v) => v === 2));
  assert.is(globalThis.setImmediate, original);
  p.release();
});

test.run();
