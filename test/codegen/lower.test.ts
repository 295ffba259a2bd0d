// Lowering of linear layers and elementwise operators, checked node by node against the float64 evaluation.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { lowerGraph } from '../../src/codegen/lower.ts';
import { graphOf, model } from '../compiler/helpers.ts';
import { expectLoweredMatches } from './lower-check.ts';

gpuTest('linear along c and along t, chained; operators broadcast by name, numbers on either side', async () => {
  const g = graphOf(model([
    '  y = linear(x, 6)',                         // c in the middle of [b, c, t, h, w]
    '  z = linear(x, 3, axis: t, bias: false)',   // contraction over t
    '  e = linear(z, 6, axis: c)',                // [b, c=6, t=3, h, w]
    '  u = silu(e) * 2 - e / (1 + exp(-e))',
    '  output o = u + gelu(e) - sqrt(abs(e) + 1) + -tanh(e)',
    '  output q = sqrt(abs(z) + 1)',
    '  output p = y * 0.5',
  ].join('\n'), '', 'b = 2, c = 5, t = 4, h = 3, w = 7'));
  const { dispatches } = await expectLoweredMatches(g, 'linear + elementwise');
  assert.ok(lowerGraph(g, undefined, 'node', false).steps.length > dispatches, 'fusion saves dispatches');
});

gpuTest('elementwise chains fuse into one kernel; a value read twice, or an output, keeps its own', async () => {
  const g = graphOf(model([
    '  y = linear(x, 6)',
    '  a = silu(y) * 2 + 1',     // silu, mul, add: one kernel
    '  output o = a * a - 3',    // a is read twice: stored; mul and sub: one kernel
    '  output p = exp(y)',       // y is a linear: stored anyway
  ].join('\n'), '', 'b = 2, c = 5, t = 2, h = 3, w = 4'));
  const fused = lowerGraph(g);
  assert.equal(fused.steps.map((s) => s.spec.key.split(':')[0].split('|')[0]), ['gemm', 'elementwise', 'elementwise', 'elementwise']);
  assert.is(lowerGraph(g, undefined, 'node', false).steps.length, 7);
  await expectLoweredMatches(g, 'fused chains');
});

gpuTest('a long chain over many leaves splits so that no kernel binds more than 8 buffers', async () => {
  const terms = Array.from({ length: 9 }, (_, i) => `linear(x, 4) * ${i + 1}`).join(' + ');
  const g = graphOf(model(`  output o = ${terms}`, '', 'b = 1, c = 3, t = 2, h = 2, w = 3'));
  const lowered = lowerGraph(g);
  const ew = lowered.steps.filter((s) => s.spec.key.startsWith('elementwise'));
  assert.ok(ew.length >= 2, `${ew.length} elementwise kernels`);
  for (const s of lowered.steps) assert.ok(s.buffers.length <= 8, `${s.label}: ${s.buffers.length} bindings`);
  await expectLoweredMatches(g, 'leaf limit');
});

test('a primitive with no lowering is a clear error', () => {
  const g = graphOf(model('  output o = flip(x, t)'));
  const fake = { ...g, nodes: g.nodes.map((n) => (n.op === 'flip' ? { ...n, op: 'no_such_op' } : n)) };
  assert.throws(() => lowerGraph(fake), /'no_such_op' .* cannot be lowered to kernels yet/);
});

test.run();
