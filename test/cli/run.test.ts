// `vdm run`: a forward pass on the adapter from the command line, with parameters initialised or
// loaded from safetensors, outputs written back, and clear errors for files that do not fit.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { evaluate, exampleInputs, initParams } from '../../src/compiler/reference/evaluate.ts';
import { readSafetensors, writeSafetensors } from '../../src/runtime/safetensors.ts';
import { vdmSync } from './vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-run-'));
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

const vdm = (...args: string[]) => vdmSync(args, { timeout: 120_000 });

gpuTest('vdm run: times the forward pass, checks it against float64 and writes the outputs', () => {
  const out = path.join(dir, 'out.safetensors');
  const r = vdm('run', spec, '--seed', '3', '--repeat', '2', '--check', '--out', out);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /forward pass: [\d.]+ ms \(mean of 2\)/);
  assert.match(r.out, /output o \[b=2, c=4, t=2, h=6, w=10\]: mean /);
  const err = Number(/check o: max \|GPU - float64\| = (\S+)/.exec(r.out)![1]);
  assert.ok(err < 1e-4, r.out);
  // the file holds what the float64 evaluation of the same seeded run gives
  const g = checkFile(spec).graph!;
  const want = evaluate(g, exampleInputs(g, 4), initParams(g, 3)).outputs.get('o')!;
  const got = readSafetensors(out).tensors.o;
  assert.equal(got.shape, [2, 4, 2, 6, 10]);
  let worst = 0;
  want.data.forEach((v, i) => { worst = Math.max(worst, Math.abs(Number(got.data[i]) - v)); });
  assert.ok(worst < 1e-4, `${worst}`);
});

gpuTest('vdm run with VDM_TUNE=on: GEMMs timed at the first run, the choice read back by the next, the check still holds', () => {
  const env = { ...process.env, VDM_TUNE: 'on', VDM_CACHE_DIR: path.join(dir, 'cache') };
  const first = vdmSync(['run', spec, '--seed', '3', '--check'], { timeout: 120_000, env });
  assert.is(first.code, 0, first.err);
  assert.match(first.out, /tuned 1 GEMM shape: 1 timed \(\d+ variants, [\d.]+ s\); [01] runs? a faster tiling than the default/);
  assert.ok(Number(/check o: max \|GPU - float64\| = (\S+)/.exec(first.out)![1]) < 1e-4, first.out);
  const second = vdmSync(['run', spec, '--seed', '3'], { timeout: 120_000, env });
  assert.is(second.code, 0, second.err);
  assert.match(second.out, /tuned 1 GEMM shape: 1 from the cache/);
  const off = vdmSync(['run', spec, '--seed', '3'], { timeout: 120_000, env: { ...env, VDM_TUNE: 'off' } });
  assert.not.match(off.out, /tuned/);
});

gpuTest('vdm run --params loads parameters by dotted path and refuses a file that does not fit', () => {
  const g = checkFile(spec).graph!;
  const params = initParams(g, 9);
  const file = path.join(dir, 'params.safetensors');
  const shapeOf = (p: string) => g.nodes.flatMap((n) => n.params).find((q) => q.path === p)!.shape;
  writeSafetensors(file, Object.fromEntries([...params].map(([k, v]) => [k, { dtype: 'F32' as const, shape: [...shapeOf(k)], data: Float32Array.from(v) }])));
  const a = vdm('run', spec, '--params', file, '--repeat', '1', '--check');
  assert.is(a.code, 0, a.err);
  assert.match(a.out, new RegExp(`parameters \\(${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
  const bad = path.join(dir, 'bad.safetensors');
  writeSafetensors(bad, { 'stem.weight': { dtype: 'F32', shape: [8, 4, 3, 1], data: new Float32Array(96) } });
  const b = vdm('run', spec, '--params', bad);
  assert.is(b.code, 1);
  assert.match(b.err, /does not fit model Small:\n {2}stem\.weight is \[8,4,3,1\] in the file, the model needs \[8,4,3,3\]\n {2}missing stem\.bias/);
  assert.not.match(b.err, /^\s+at .+:\d+:\d+\)?$/m);
  assert.is(vdm('run', spec, '--repeat', '0').code, 2);
  assert.is(vdm('run', path.join(dir, 'nope.vdm')).code, 1);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
