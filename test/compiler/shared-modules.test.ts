// Shared modules (`cell = conv_cell as fwd`): one set of weights read by every call. Parameter
// paths and counts, the float64 forward against the same network written without sharing, the
// gradient (summed over the calls) against that network's and against finite differences, and
// the diagnostics of misuse.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { costsOf } from '../../src/compiler/ir/cost.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { backward } from '../../src/compiler/reference/autodiff.ts';
import { evaluate, exampleInputs, liveParams, prng } from '../../src/compiler/reference/evaluate.ts';
import { formatSource } from '../../src/compiler/review/fmt.ts';
import { expectGradients } from './grad-check.ts';
import { check, codes, graphOf, model, paramPaths, places, totalParams } from './helpers.ts';

const specs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../specs');
const SMALL = 'b = 2, c = 3, t = 3, h = 4, w = 5';

const CELL = `
block cell(hidden, frame, width) {
  z = conv(concat(hidden, frame), over: (h, w), kernel: 3, out: width) as fuse
  return z + linear(silu(z), width) as mix
}`;

/** A recurrence over the frames with one shared cell, or (shared = false) a new cell per frame. */
const recurrent = (shared: boolean) => model([
  '  let width = 4',
  ...(shared ? ['  step = cell as step'] : []),
  '  hidden = slice(linear(x, width), t, 0, 1) * 0',
  '  for i in range(t) as frames {',
  '    frame = slice(x, t, i, i + 1)',
  `    hidden = ${shared ? 'step(hidden, frame, width)' : 'cell(hidden, frame, width) as step'}`,
  '    out = if i == 0 then hidden else concat(out, hidden, axis: t)',
  '  }',
  '  output o = out',
].join('\n'), CELL, SMALL);

test('a shared block has one set of parameters, named where it is bound, whatever the number of calls', () => {
  const g = graphOf(recurrent(true));
  assert.equal(paramPaths(g), ['linear.weight', 'linear.bias', 'step.fuse.weight', 'step.fuse.bias', 'step.mix.weight', 'step.mix.bias']);
  const unshared = graphOf(recurrent(false));
  const cellParams = (4 * 7 * 9 + 4) + (4 * 4 + 4);
  assert.is(totalParams(g), 3 * 4 + 4 + cellParams);
  assert.is(totalParams(unshared), 3 * 4 + 4 + 3 * cellParams);
  // every call computes: the MACs are those of the unshared network
  assert.is(costsOf(g).macs, costsOf(unshared).macs);
  assert.is(costsOf(g).params, totalParams(g));
  // the later calls' layers read the first call's parameters
  const later = g.nodes.filter((n) => n.shares);
  assert.equal(later.map((n) => `${n.path}:${n.shares!.map((p) => p.path).join('+')}`), [
    'frames.1.step.fuse:step.fuse.weight+step.fuse.bias', 'frames.1.step.mix:step.mix.weight+step.mix.bias',
    'frames.2.step.fuse:step.fuse.weight+step.fuse.bias', 'frames.2.step.mix:step.mix.weight+step.mix.bias',
  ]);
});

test('a shared primitive is named by its binding alone; a module may be passed to a block', () => {
  const g = graphOf(model([
    '  proj = linear as proj',
    '  y = twice(proj, x)',
    '  output o = proj(y, 8) + y',
  ].join('\n'), 'block twice(f, v) {\n  return f(f(v, 8), 8)\n}'));
  assert.equal(paramPaths(g), ['proj.weight', 'proj.bias']);
  assert.is(g.nodes.filter((n) => n.op === 'linear').length, 3);
});

/** The unshared network's parameters filled from the shared one's: frames.i.step.* <- step.*. */
function unsharedParams(shared: Map<string, Float64Array>, unshared: Graph): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const n of unshared.nodes) for (const p of n.params) {
    const from = p.path.replace(/^frames\.\d+\.step\./, 'step.');
    out.set(p.path, Float64Array.from(shared.get(from)!));
  }
  return out;
}

test('float64 forward and backward: the shared network is the unshared one with tied weights, its gradient the sum', () => {
  const g = graphOf(recurrent(true));
  const u = graphOf(recurrent(false));
  const params = liveParams(g, 3, 0.3);
  const inputs = exampleInputs(g, 4);
  const tied = unsharedParams(params, u);
  const a = evaluate(g, inputs, params).outputs.get('o')!;
  const b = evaluate(u, inputs, tied).outputs.get('o')!;
  assert.equal([...a.data], [...b.data]);
  const rand = prng(5);
  const seed: NamedTensor = { axes: a.axes, data: Float64Array.from(a.data, () => 2 * rand() - 1) };
  const ga = backward(g, evaluate(g, inputs, params), params, new Map([['o', seed]]));
  const gb = backward(u, evaluate(u, inputs, tied), tied, new Map([['o', seed]]));
  for (const [p, grad] of ga.params) {
    const parts = [...gb.params].filter(([q]) => q.replace(/^frames\.\d+\.step\./, 'step.') === p).map(([, v]) => v);
    assert.is(parts.length, p.startsWith('step.') ? 3 : 1, p);
    const sum = grad.map((_, i) => parts.reduce((s, v) => s + v[i], 0));
    const worst = grad.reduce((m, v, i) => Math.max(m, Math.abs(v - sum[i])), 0);
    assert.ok(worst < 1e-12, `${p}: ${worst}`);
  }
});

test('finite differences: a shared block in a recurrence, and a shared primitive called on its own output', () => {
  expectGradients(graphOf(recurrent(true)), 'shared cell', 1e-6, { samples: 30 });
  expectGradients(graphOf(model([
    '  proj = linear as proj',
    '  y = proj(x, 3)',
    '  output o = proj(tanh(y), 3) * y',
  ].join('\n'), '', SMALL)), 'shared linear', 1e-6, { samples: 30 });
});

test('a module bound inside a shared block is shared with it', () => {
  const g = graphOf(model([
    '  outer = pair as outer',
    '  output o = outer(outer(x))',
  ].join('\n'), 'block pair(v) {\n  inner = linear as inner\n  return inner(inner(v, 8), 8)\n}'));
  assert.equal(paramPaths(g), ['outer.inner.weight', 'outer.inner.bias']);
  expectGradients(graphOf(model('  outer = pair as outer\n  output o = outer(tanh(outer(x)))',
    'block pair(v) {\n  inner = linear as inner\n  return inner(inner(v, 3), 3)\n}', SMALL)), 'nested', 1e-6, { samples: 20 });
});

test('VDM025: a later call whose weights would differ, at the call, with the first call\'s place', () => {
  const r = check(model([
    '  step = cell as step',
    '  a = step(x, x, 4)',
    '  a2 = step(a, a, 4)',
    '  output o = a + a2',
  ].join('\n'), CELL));
  assert.equal(places(r), ['VDM025@11:8']);
  const text = formatDiagnostic(r.diagnostics[0]);
  assert.match(text, /this call of shared module 'step' needs weight \[4, 8, 3, 3\], bias \[4\] for the conv 'fuse' \(.*main.vdm:3:7\), where its first call \(.*main.vdm:10:7\) made weight \[4, 16, 3, 3\], bias \[4\]/);
  assert.match(text, /hint: a shared module's weights are made by its first call/);
  // a call that makes fewer layers than the first (an argument chooses them), and one that makes more
  const head = 'block maybe(v, deep) {\n  v = linear(v, 8)\n  if deep {\n    v = linear(v, 8)\n  }\n  return v\n}';
  const fewer = check(model('  m = maybe as m\n  a = m(x, true)\n  output o = m(a, false)', head));
  assert.equal(places(fewer), ['VDM025@13:14']);
  assert.match(fewer.diagnostics[0].message, /makes 1 of the 2 weights/);
  const more = check(model('  m = maybe as m\n  a = m(x, false)\n  output o = m(a, true)', head));
  assert.equal(places(more), ['VDM025@13:14']);
  assert.match(more.diagnostics[0].message, /makes more weights than its first call .*: the linear 'linear' .* is one too many/);
});

test('misuse: `as` on a call, a binding outside a model, unknown or non-block callees', () => {
  assert.equal(codes(check(model('  p = linear as p\n  output o = p(x, 8) as q'))), ['VDM019']);
  assert.equal(codes(check(`let p = linear as p\n${model('  output o = x')}`)), ['VDM019']);
  assert.equal(codes(check(model('  p = lienar as p\n  output o = p(x, 8)'))), ['VDM011']);
  assert.equal(codes(check(model('  p = size as p\n  output o = x'))), ['VDM017']);
  assert.equal(codes(check(model('  p = linear as p\n  q = p as q\n  output o = x'))), ['VDM017']);
  // calling a value that is no module stays VDM011, with the hint that it is a value
  const r = check(model('  y = linear(x, 8)\n  output o = y(x)'));
  assert.equal(codes(r), ['VDM011']);
  assert.match(r.diagnostics[0].hint ?? '', /'y' is a value here/);
});

test('specs/basicvsr-propagation.vdm: the parameter count does not change with t', () => {
  const count = (t: number) => {
    const r = checkFile(path.join(specs, 'basicvsr-propagation.vdm'), { dims: { t } });
    assert.equal(r.diagnostics.map(formatDiagnostic), []);
    return costsOf(r.graph!);
  };
  const [four, eight] = [count(4), count(8)];
  assert.is(four.params, eight.params);
  assert.is(four.params, 320_644);
  assert.ok(eight.macs > 1.9 * four.macs);
});

test('fmt keeps a module binding as written and formats it canonically', () => {
  const text = model('  cell   =   linear   as   proj\n  output o = cell(x, 8)');
  const once = formatSource(text);
  assert.match(once, /\n  cell = linear as proj\n/);
  assert.is(formatSource(once), once);
});

test.run();
