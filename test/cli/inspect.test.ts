// Inspectable runs from the command line: `vdm init` writes the initial parameters `vdm run
// --params` reads, `vdm info --params` lists them, `vdm run --inputs` feeds a run by name, `--dump`
// writes every node's value, `--compare` reports the errors against a reference file and marks the
// first node over the tolerance, and `--check` compares non-zero outputs of a model whose zero-
// initialised layers (adaLN-Zero, the final layer) make them identically zero as initialised.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest } from '../gpu.ts';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { initParams } from '../../src/compiler/reference/evaluate.ts';
import { readParamsFile } from '../../src/pipeline.ts';
import { readSafetensors, writeSafetensors } from '../../src/runtime/safetensors.ts';
import { vdmSync, noTrace } from './vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-inspect-'));
const spec = path.join(dir, 'small.vdm');
fs.writeFileSync(spec, [
  'model Small {',
  '  dims b = 2, c = 4, t = 2, h = 6, w = 10',
  '  input x : video[b, c, t, h, w]',
  '  y = conv(x, over: (h, w), kernel: 3, out: 8) as stem',
  '  y = layernorm(silu(y))',
  '  output o = linear(y, 4) as head',
  '}',
  '',
].join('\n'));
const f = (name: string) => path.join(dir, name);

const vdm = (...args: string[]) => vdmSync(args, { timeout: 180_000 });

test('vdm init writes the seeded initial parameters by dotted path; --perturb moves the constant ones', () => {
  const r = vdm('init', spec, '-o', f('init.safetensors'), '--seed', '3');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^wrote .*init\.safetensors: 6 tensors, 348 parameters of model Small \(initial, seed 3\)$/m);
  const g = checkFile(spec).graph!;
  const read = readParamsFile(g, f('init.safetensors'));
  assert.equal(read.unused, []);
  for (const [k, v] of initParams(g, 3)) assert.equal([...read.params.get(k)!], [...Float32Array.from(v)], k);
  const p = vdm('init', spec, '-o', f('perturbed.safetensors'), '--perturb');
  assert.is(p.code, 0, p.err);
  assert.ok([...readSafetensors(f('perturbed.safetensors')).tensors['head.bias'].data].every((v) => v !== 0));
  const bad = vdm('init', spec, '-o', path.join(dir, 'no-such-folder', 'p.safetensors'));
  assert.is(bad.code, 1);
  assert.match(bad.err, /^vdm init: -o .*: the folder .* does not exist/);
  noTrace(bad.err);
  assert.is(vdm('init', spec).code, 2, '-o is required');
});

test('vdm info --params lists every parameter with its shape and initialiser', () => {
  const r = vdm('info', spec, '--params');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /model Small: 6 parameter tensors, 348 parameters/);
  assert.match(r.out, /^stem\.weight\s+\[8, 4, 3, 3\]\s+288\s+default\s+uniform ±0\.167 \(1\/sqrt\(36\)\)$/m);
  assert.match(r.out, /^layernorm\.weight\s+\[8\]\s+8\s+ones\s+1$/m);
  const j = JSON.parse(vdm('info', spec, '--params', '--json').out);
  assert.is(j.params, 348);
  assert.equal(j.tensors.map((t: { name: string }) => t.name), ['stem.weight', 'stem.bias', 'layernorm.weight', 'layernorm.bias', 'head.weight', 'head.bias']);
});

gpuTest('vdm run --dump writes every node; --inputs/--params from the dump reproduce it; --compare marks the first node over', () => {
  const d = f('dump');
  const a = vdm('run', spec, '--seed', '2', '--repeat', '1', '--dump', d);
  assert.is(a.code, 0, a.err);
  assert.match(a.out, /wrote .*dump: 5 node values/);
  const values = readSafetensors(path.join(d, 'values.safetensors'));
  assert.equal(Object.keys(values.tensors).sort(), ['head', 'layernorm', 'silu', 'stem', 'x']);
  assert.equal(values.tensors.stem.shape, [2, 8, 2, 6, 10]);

  const same = vdm('run', spec, '--repeat', '1', '--inputs', path.join(d, 'inputs.safetensors'), '--params', path.join(d, 'params.safetensors'),
    '--compare', path.join(d, 'values.safetensors'));
  assert.is(same.code, 0, same.out + same.err);
  assert.match(same.out, /inputs from .*inputs\.safetensors/);
  assert.match(same.out, /compare with .*values\.safetensors \(5 tensors; tolerance 0\.0001/);
  assert.match(same.out, /^\s+node\s+stem\s+conv\s+\[2, 8, 2, 6, 10\]\s+\S+\s+\S+\s+ok$/m);
  assert.match(same.out, /agreement: all 5 within 0\.0001/);

  // the same inputs, other parameters for the head only: the first node over is the head
  const g = checkFile(spec).graph!;
  const params = readSafetensors(path.join(d, 'params.safetensors')).tensors;
  params['head.bias'] = { ...params['head.bias'], data: Float32Array.from(params['head.bias'].data as Float32Array, (v) => v + 0.5) };
  writeSafetensors(f('head-moved.safetensors'), params);
  const moved = vdm('run', spec, '--repeat', '1', '--inputs', path.join(d, 'inputs.safetensors'), '--params', f('head-moved.safetensors'),
    '--compare', path.join(d, 'values.safetensors'), '--tol', '1e-3');
  assert.is(moved.code, 1, moved.out + moved.err);
  assert.match(moved.out, /^>>\s+node\s+head\s+linear\s.*FIRST OVER$/m);
  assert.match(moved.out, /^\s+node\s+layernorm\s.*ok$/m);
  assert.match(moved.out, /first node over 0\.001: head \(linear, node 4\): max rel \S+, max abs \S+; 1 of 5 over/);
  assert.ok(g.nodes[4].path === 'head');

  // outputs by name: the file --out writes compares output by output
  const outs = vdm('run', spec, '--seed', '2', '--repeat', '1', '--compare', path.join(d, 'outputs.safetensors'));
  assert.is(outs.code, 0, outs.out + outs.err);
  assert.match(outs.out, /^\s+output\s+o\s+linear\s+\[2, 4, 2, 6, 10\]\s.*ok$/m);
});

test('vdm run --inputs: a missing, extra or misshapen input is one line and exit 1, before any GPU work', () => {
  const x = { dtype: 'F32' as const, shape: [2, 4, 2, 6, 10], data: new Float32Array(960) };
  writeSafetensors(f('extra.safetensors'), { x, s: x });
  writeSafetensors(f('short.safetensors'), { x: { ...x, shape: [2, 4, 2, 6, 5], data: new Float32Array(480) } });
  writeSafetensors(f('none.safetensors'), { z: x });
  const cases: [string, RegExp][] = [
    ['extra.safetensors', /has tensor 's', which is no input of model Small \(its inputs: x\)/],
    ['short.safetensors', /input 'x' is \[2, 4, 2, 6, 5\] in the file, model Small needs \[b=2, c=4, t=2, h=6, w=10\]/],
    ['none.safetensors', /missing input 'x' \(video \[b=2, c=4, t=2, h=6, w=10\]\)/],
  ];
  for (const [file, message] of cases) {
    const r = vdm('run', spec, '--inputs', f(file));
    assert.is(r.code, 1, file);
    assert.match(r.err, message);
    assert.is(r.err.trim().split('\n').length, 1, r.err);
    assert.is(r.out, '', 'nothing ran');
    noTrace(r.err);
  }
  const missing = vdm('run', spec, '--compare', f('nope.safetensors'));
  assert.is(missing.code, 1);
  assert.is(missing.out, '');
  assert.is(vdm('run', spec, '--tol', '-1').code, 2);
  const dumpOnFile = vdm('run', spec, '--dump', f('extra.safetensors'));
  assert.is(dumpOnFile.code, 1);
  assert.match(dumpOnFile.err, /--dump .*: it is a file/);
});

// adaLN-Zero and a zero-initialised final layer: as initialised the output is identically zero
gpuTest('vdm run --check compares non-zero outputs of a DiT, and reports a check of only zeros as such', () => {
  const dit = path.join(repo, 'specs/tiny-video-dit.vdm');
  const dims = ['--dim', 'b=1', '--dim', 't=2', '--dim', 'h=8', '--dim', 'w=8'];
  const r = vdm('run', dit, ...dims, '--repeat', '1', '--check');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /output eps \[b=1, c=3, t=2, h=8, w=8\]: identically zero/, 'as initialised, adaLN-Zero zeroes the output');
  assert.match(r.out, /check with perturbed parameters \(seed 0/);
  const m = /check eps: max \|GPU - float64\| = (\S+) \(largest \|value\| (\S+)\), max rel (\S+)/.exec(r.out);
  assert.ok(m, r.out);
  assert.ok(Number(m[2]) > 0.1, `the check compares non-zero values: ${r.out}`);
  assert.ok(Number(m[3]) < 1e-3, r.out);
  assert.not.match(r.out, /compares nothing/);

  const zeros = vdm('run', dit, ...dims, '--repeat', '1', '--check', '--no-perturb');
  assert.is(zeros.code, 0, zeros.err);
  assert.match(zeros.out, /check eps: identically zero on the GPU and in float64: this compares nothing/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
