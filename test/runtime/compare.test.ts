// Inspectable runs without a GPU: errors of one tensor against another, the comparison with a
// reference file by output and node name, inputs read by name, the parameter list, the initial
// parameters as a file, and the dump's files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { evaluate, exampleInputs, initParams } from '../../src/compiler/reference/evaluate.ts';
import { initialParams, parameterList, PipelineError, readInputsFile, readParamsFile, writeParamsFile } from '../../src/pipeline.ts';
import { checkOutputs, compareWithReference, nodeNames, tensorError } from '../../src/runtime/compare.ts';
import { safeTensorOf, writeDump } from '../../src/runtime/dump.ts';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../../src/runtime/safetensors.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-compare-'));
const spec = path.join(dir, 'small.vdm');
fs.writeFileSync(spec, [
  'model Small {',
  '  dims b = 2, c = 4, t = 2, h = 4, w = 6',
  '  input x : video[b, c, t, h, w]',
  '  input y : label[b](classes: 3, null: true)',
  '  e = embed(y, classes: 4, dim: 4) as y_embedder',
  '  z = conv(x, over: (h, w), kernel: 3, out: 4) as stem',
  '  z = layernorm(silu(z + e))',
  '  output o = linear(z, 4, init: "zeros") as head',
  '}',
  '',
].join('\n'));
const g = checkFile(spec).graph!;
assert.ok(g, 'the test spec checks');

test('tensorError: max abs, max rel against the reference with a floor, zeros and NaN', () => {
  const e = tensorError([1, 2.002, 0], [1, 2, 0]);
  assert.ok(Math.abs(e.maxAbs - 0.002) < 1e-12);
  assert.ok(Math.abs(e.maxRel - 0.002 / (2 + 0.01 * Math.sqrt(5 / 3))) < 1e-12, String(e.maxRel));
  assert.is(e.scale, 2);
  assert.not.ok(e.refZero);
  const z = tensorError([0, 0], [0, 0]);
  assert.equal([z.maxAbs, z.maxRel, z.refZero, z.gotZero], [0, 0, true, true]);
  assert.is(tensorError([1, 0], [0, 0]).maxRel, Infinity, 'a non-zero value against a zero reference is no agreement');
  assert.is(tensorError([NaN, 1], [1, 1]).maxAbs, Infinity);
  assert.is(tensorError([NaN, 1], [NaN, 1]).maxAbs, 0);
});

test('nodeNames are the dotted paths, unique', () => {
  const names = nodeNames(g);
  assert.is(new Set(names).size, g.nodes.length);
  for (const n of ['x', 'y', 'stem', 'y_embedder', 'head', 'layernorm']) assert.ok(names.includes(n), `${n} in ${names}`);
});

const shapeOf = (axes: readonly (readonly [string, number])[]) => axes.map(([, s]) => s);

test('compareWithReference: rows by output and node name, the first node over the tolerance, shape problems, ignored tensors', () => {
  const inputs = exampleInputs(g, 2);
  const params = initialParams(g, { seed: 1, perturb: true });
  const ev = evaluate(g, inputs, params);
  const names = nodeNames(g);
  const reference: Record<string, SafeTensor> = {};
  for (const n of g.nodes) reference[names[n.id]] = safeTensorOf(ev.values[n.id], n.axes, n.dtype);
  reference.o = safeTensorOf(ev.outputs.get('o')!);
  reference['not.a.node'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
  const same = compareWithReference(g, ev.values, ev.outputs, reference, 1e-4);
  assert.is(same.firstOver, null);
  assert.is(same.outputs.length, 1);
  assert.is(same.nodes.length, g.nodes.length);
  assert.equal(same.ignored, ['not.a.node']);
  assert.ok(same.nodes.every((r) => r.error!.maxRel < 1e-6), 'F32 rounding only');

  // a wrong value at the stem and everything after it: the stem is the first node over
  const stem = g.nodes.find((n) => n.path === 'stem')!;
  const values = ev.values.map((v, id) => (id >= stem.id && v ? { axes: v.axes, data: v.data.map((x) => x * 1.01) } : v));
  const bad = compareWithReference(g, values, ev.outputs, reference, 1e-4);
  assert.is(bad.firstOver?.name, 'stem');
  assert.is(bad.firstOver?.kind, 'node');
  assert.ok(bad.nodes.filter((r) => r.over).length >= 3);

  const misshapen = compareWithReference(g, ev.values, ev.outputs, { stem: { dtype: 'F32', shape: [1, 2], data: new Float32Array(2) } }, 1e-4);
  assert.is(misshapen.firstOver?.name, 'stem');
  assert.match(misshapen.firstOver!.problem!, /\[1, 2\] in the reference, \[2, 4, 2, 4, 6\] here/);
  assert.is(misshapen.notInReference, g.nodes.length - 1);
});

test('checkOutputs reports an output that is identically zero on both sides (a check of nothing)', () => {
  const inputs = exampleInputs(g, 2);
  const zeroed = evaluate(g, inputs, initParams(g, 1)).outputs; // head initialised to zeros
  const [zero] = checkOutputs(zeroed, zeroed);
  assert.ok(zero.zero, 'the zero-initialised head makes the output zero: the check must say so');
  const live = evaluate(g, inputs, initialParams(g, { seed: 1, perturb: true })).outputs;
  const [checked] = checkOutputs(live, live);
  assert.not.ok(checked.zero, 'perturbed parameters make the output non-zero');
  assert.ok(checked.error.scale > 0);
});

test('readInputsFile: inputs by name; missing, extra, misshapen and out-of-range inputs are one-line errors', () => {
  const inputs = exampleInputs(g, 5);
  const file = path.join(dir, 'inputs.safetensors');
  const x = safeTensorOf(inputs.get('x')!), y = safeTensorOf(inputs.get('y')!, undefined, 'i32');
  writeSafetensors(file, { x, y });
  const read = readInputsFile(g, file);
  assert.equal([...read.keys()], ['x', 'y']);
  read.get('x')!.data.forEach((v, i) => assert.ok(Math.abs(v - inputs.get('x')!.data[i]) < 1e-6));
  assert.equal([...read.get('y')!.data], [...inputs.get('y')!.data]);

  const problem = (tensors: Record<string, SafeTensor>) => {
    const f = path.join(dir, 'bad-inputs.safetensors');
    writeSafetensors(f, tensors);
    try {
      readInputsFile(g, f);
    } catch (e) {
      assert.instance(e, PipelineError);
      const m = (e as Error).message;
      assert.not.match(m, /\n/, 'one line');
      return m;
    }
    throw new Error('no error');
  };
  assert.match(problem({ x }), /missing input 'y' \(label \[b=2\]\)/);
  assert.match(problem({ x, y, z: x }), /has tensor 'z', which is no input of model Small \(its inputs: x, y\)/);
  assert.match(problem({ x: { ...x, shape: [2, 4, 2, 6, 4] }, y }), /input 'x' is \[2, 4, 2, 6, 4\] in the file, model Small needs \[b=2, c=4, t=2, h=4, w=6\]/);
  assert.match(problem({ x, y: { dtype: 'I32', shape: [2], data: Int32Array.from([0, 4]) } }), /input 'y' holds 4 \(index 1\); a label is an integer in \[0, 4\)/);
  assert.match(problem({ x: { ...x, data: Float32Array.from(x.data as Float32Array, (v, i) => (i === 3 ? NaN : v)) }, y }), /non-finite value \(index 3\)/);
});

test('initial parameters as a file: what readParamsFile reads, the seeded initialisation, perturbed on request', () => {
  const file = path.join(dir, 'params.safetensors');
  writeParamsFile(file, g, initialParams(g, { seed: 7 }), { 'vdm.seed': '7' });
  const back = readParamsFile(g, file);
  assert.equal(back.unused, []);
  const want = initParams(g, 7);
  for (const [k, v] of want) back.params.get(k)!.forEach((x, i) => assert.is(x, Math.fround(v[i])));
  assert.is(readSafetensors(file).metadata['vdm.model'], 'Small');
  const perturbed = initialParams(g, { seed: 7, perturb: true });
  assert.ok([...perturbed.get('head.weight')!].every((v) => v !== 0), 'zeros are perturbed');
  assert.equal([...perturbed.get('stem.weight')!], [...want.get('stem.weight')!], 'drawn values are kept');
});

test('parameterList: every parameter with its shape and initialiser', () => {
  const list = parameterList(g);
  assert.equal(list.map((p) => p.path), g.nodes.flatMap((n) => n.params.map((p) => p.path)));
  const head = list.find((p) => p.path === 'head.weight')!;
  assert.equal([head.shape, head.init, head.distribution], [[4, 4], 'zeros', '0']);
  const stem = list.find((p) => p.path === 'stem.weight')!;
  assert.is(stem.count, 4 * 4 * 3 * 3);
  assert.match(stem.distribution, /^uniform ±0\.167 \(1\/sqrt\(36\)\)$/);
});

test('writeDump: every node by name, the outputs, inputs and parameters, which read back as run inputs', () => {
  const inputs = exampleInputs(g, 2);
  const params = initialParams(g, { seed: 3, perturb: true });
  const ev = evaluate(g, inputs, params);
  const out = path.join(dir, 'dump');
  fs.mkdirSync(out);
  const { files, nodes } = writeDump(out, g, { values: ev.values, outputs: ev.outputs, inputs, params });
  assert.is(nodes, g.nodes.length);
  assert.equal(files.map((f) => path.basename(f)), ['values.safetensors', 'outputs.safetensors', 'inputs.safetensors', 'params.safetensors']);
  const values = readSafetensors(files[0]);
  const names = nodeNames(g);
  for (const n of g.nodes) assert.equal(values.tensors[names[n.id]].shape, shapeOf(n.axes), names[n.id]);
  assert.equal(JSON.parse(values.metadata['vdm.axes']).stem, ['b', 'c', 't', 'h', 'w']);
  assert.is(values.tensors.y.dtype, 'I32');
  assert.equal(readInputsFile(g, files[2]).get('y')!.data, inputs.get('y')!.data);
  assert.equal(readParamsFile(g, files[3]).unused, []);
  const cmp = compareWithReference(g, ev.values, ev.outputs, values.tensors, 1e-4);
  assert.is(cmp.firstOver, null);
  assert.is(cmp.nodes.length, g.nodes.length);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
