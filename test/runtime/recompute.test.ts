// Recomputation per block: the same gradients from less kept memory. Each block's forward kernels
// run again before its backward rules, into buffers of their own; the forward's inner values die
// when the forward no longer needs them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { blockOf } from '../../src/codegen/recompute.ts';
import { lowerTraining, trainingMemory } from '../../src/codegen/training.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import { checkSpec } from '../../src/pipeline.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { liveParams } from '../codegen/lower-check.ts';

const spec = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs/tiny-video-dit.vdm');
const graph = () => {
  const r = checkSpec(spec, { dims: { b: 2, t: 4, h: 8, w: 8 } });
  assert.ok(r.ok, r.ok ? '' : r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.model.graph;
};

test('blocks are repeated instances and named calls; top-level nodes belong to none', () => {
  const at = (p: string) => blockOf({ path: p } as Parameters<typeof blockOf>[0]);
  assert.is(at('blocks.3.attn.qkv'), 'blocks.3');
  assert.is(at('blocks.3.add'), 'blocks.3');
  assert.is(at('t_embedder.fc1'), 't_embedder');
  assert.is(at('sincos'), null);
});

gpuTest('--recompute: bit-identical gradients and loss, less planned memory, the device holds the plan', async () => {
  const gpu = await openGpu();
  const g = graph();
  const params = liveParams(g);
  const run = async (recompute: boolean) => {
    const program = lowerTraining(g, { adapter: gpu, recompute });
    const trainer = Trainer.load(gpu, program, { params });
    try {
      const n = program.noisy.axes.reduce((p, [, s]) => p * s, 1);
      await trainer.step(Float32Array.from({ length: n }, (_, i) => Math.sin(0.3 * i)), new Map(), 1, 1e-3, 5);
      const grads = await trainer.read(program.arena.map((e) => `grad.${e.path}`));
      const memory = trainingMemory(program);
      assert.ok(Math.abs(trainer.deviceBytes - memory.total) <= 0.15 * memory.total, `planned ${memory.total} B, allocated ${trainer.deviceBytes} B`);
      return { grads, loss: (await trainer.stats()).loss, memory, dispatches: program.lowered.steps.length };
    } finally {
      trainer.release();
    }
  };
  const kept = await run(false), again = await run(true);
  assert.is(again.loss, kept.loss);
  kept.grads.forEach((gr, k) => assert.ok(gr.every((v, i) => Object.is(v, again.grads[k][i])), `gradient ${k} differs with --recompute`));
  assert.ok(again.dispatches > kept.dispatches, 'the blocks run twice');
  assert.ok(again.memory.activations < 0.8 * kept.memory.activations, `activations ${kept.memory.activations} B kept, ${again.memory.activations} B recomputed`);
});

gpuTest('--recompute with shared modules: the later calls read the first call\'s weights, bit-identical gradients', async () => {
  const gpu = await openGpu();
  const r = checkSpec(path.join(path.dirname(spec), 'basicvsr-propagation.vdm'), { dims: { b: 1, t: 3, h: 4, w: 4 } });
  assert.ok(r.ok, r.ok ? '' : r.diagnostics.map(formatDiagnostic).join('\n'));
  const g = r.model.graph;
  assert.ok(g.nodes.some((n) => n.shares));
  const params = liveParams(g);
  const run = async (recompute: boolean) => {
    const program = lowerTraining(g, { adapter: gpu, recompute });
    const trainer = Trainer.load(gpu, program, { params });
    try {
      const n = program.noisy.axes.reduce((p, [, s]) => p * s, 1);
      await trainer.step(Float32Array.from({ length: n }, (_, i) => Math.sin(0.3 * i)), new Map(), 1, 1e-3, 5);
      return { grads: await trainer.read(program.arena.map((e) => `grad.${e.path}`)), loss: (await trainer.stats()).loss };
    } finally {
      trainer.release();
    }
  };
  const kept = await run(false), again = await run(true);
  assert.is(again.loss, kept.loss);
  kept.grads.forEach((gr, k) => assert.ok(gr.every((v, i) => Object.is(v, again.grads[k][i])), `gradient ${k} differs with --recompute`));
});

test.run();
