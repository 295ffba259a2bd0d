// Dotted parameter paths: `as` names, op/block names with _1, _2, loop segments, and the omitted
// segment of a loop iteration that makes exactly one unnamed parametric call.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assignPaths, NameScope } from '../../src/compiler/frontend/naming.ts';
import { graphOf, model, nodeAt, paramPaths } from './helpers.ts';

const BLOCKS = `
block mlp(x) {
  h = linear(x, 16) as fc1
  return linear(gelu(h), size(x, c)) as fc2
}
block res(x) {
  y = linear(silu(x), size(x, c))
  return x + linear(y, size(x, c))
}
block free(x) { return silu(x) * 2 }
`;

test('op names, then _1, _2 for later calls of the same name in the same scope', () => {
  const g = graphOf(model('  y = linear(x, 8)\n  y = linear(y, 8)\n  y = linear(y, 8) as proj\n  y = linear(y, 8)\n  output o = y'));
  assert.equal(paramPaths(g), ['linear.weight', 'linear.bias', 'linear_1.weight', 'linear_1.bias', 'proj.weight', 'proj.bias', 'linear_2.weight', 'linear_2.bias']);
});

test('block calls nest their parameters; `as` renames the block segment', () => {
  const g = graphOf(model('  y = mlp(x)\n  y = mlp(y) as ff\n  y = res(y)\n  output o = y', BLOCKS));
  assert.equal(paramPaths(g), [
    'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias',
    'ff.fc1.weight', 'ff.fc1.bias', 'ff.fc2.weight', 'ff.fc2.bias',
    'res.linear.weight', 'res.linear.bias', 'res.linear_1.weight', 'res.linear_1.bias',
  ]);
});

test('a loop adds <name>.<i>; one unnamed parametric call per iteration loses its segment', () => {
  const g = graphOf(model('  for i in 0..3 as blocks {\n    x = mlp(x)\n  }\n  output o = x', BLOCKS));
  assert.equal(paramPaths(g).filter((p) => p.endsWith('fc1.weight')), ['blocks.0.fc1.weight', 'blocks.1.fc1.weight', 'blocks.2.fc1.weight']);
});

test('a named call in a loop keeps its segment; two calls keep both; default loop name "layers", deduplicated', () => {
  let g = graphOf(model('  repeat 2 {\n    x = mlp(x) as ff\n  }\n  output o = x', BLOCKS));
  assert.equal(paramPaths(g).filter((p) => p.endsWith('fc1.weight')), ['layers.0.ff.fc1.weight', 'layers.1.ff.fc1.weight']);
  g = graphOf(model('  repeat 1 {\n    x = mlp(x)\n    x = linear(x, 8)\n  }\n  repeat 1 {\n    x = linear(x, 8)\n  }\n  output o = x', BLOCKS));
  assert.equal(paramPaths(g), [
    'layers.0.mlp.fc1.weight', 'layers.0.mlp.fc1.bias', 'layers.0.mlp.fc2.weight', 'layers.0.mlp.fc2.bias',
    'layers.0.linear.weight', 'layers.0.linear.bias', 'layers_1.0.weight', 'layers_1.0.bias',
  ]);
});

test('calls without parameters take no name: the next parametric call is not numbered after them', () => {
  const g = graphOf(model('  y = free(x)\n  y = res(y)\n  y = free(y)\n  y = res(y)\n  output o = y', BLOCKS));
  assert.equal(paramPaths(g).filter((p) => p.endsWith('.linear.weight')), ['res.linear.weight', 'res_1.linear.weight']);
  // Non-parametric nodes still get readable paths for `vdm info`.
  assert.ok(nodeAt(graphOf(model('  y = free(x)\n  output o = y', BLOCKS)), 'free.silu'));
});

test('nested loops and the DiT-style ModuleList path', () => {
  const g = graphOf(model('  for s in 0..2 as stages {\n    for i in 0..2 as blocks {\n      x = res(x)\n    }\n    x = linear(x, 8) as down\n  }\n  output o = x', BLOCKS));
  const paths = paramPaths(g);
  assert.ok(paths.includes('stages.1.blocks.1.linear_1.weight'), paths.join(' '));
  assert.ok(paths.includes('stages.0.down.weight'));
});

test('explicit names are not reused by generated ones', () => {
  const root = new NameScope();
  const a = root.add('op', 'linear_1', true, 1);
  const b = root.add('op', 'linear', false, 1);
  const c = root.add('op', 'linear', false, 1);
  assignPaths(root, '');
  assert.equal([a.path, b.path, c.path], ['linear_1', 'linear', 'linear_2']);
});

test('node paths: inputs by name, ops by their call path', () => {
  const g = graphOf(model('  y = linear(x, 8) as proj\n  output o = y'));
  assert.is(g.nodes[0].path, 'x');
  assert.is(g.nodes[0].op, 'input');
  assert.is(nodeAt(g, 'proj').op, 'linear');
});

test.run();
