// The user's files and the user's mistakes: `vdm compile` never mixes its output with the user's
// files, a path that cannot be written is one line saying what to do (not "a bug in vdm"), `vdm
// run --out` is checked before the forward pass and `vdm train --out` / `vdm sample --out` before
// any GPU work, a --dim too large for the kernels is the user's to change, names from the user
// (--dim, tensor names) are only names, and a --params file with NaN, duplicate or unused tensors
// is told so.
import type { SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest } from '../gpu.ts';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { initParams } from '../../src/compiler/reference/evaluate.ts';
import { OUTPUT_MARKER } from '../../src/runtime/files.ts';
import { writeSafetensors, type SafeTensor } from '../../src/runtime/safetensors.ts';
import { vdmSync } from './vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-files-'));
fs.chmodSync(dir, 0o755); // the unprivileged user below must reach it
const depthwise = path.join(repo, 'specs/lightweight-depthwise.vdm');
const spec = path.join(dir, 'small.vdm');
fs.writeFileSync(spec, [
  'model Small {',
  '  dims b = 2, c = 4, t = 2, h = 6, w = 10',
  '  input x : video[b, c, t, h, w]',
  '  y = conv(x, over: (h, w), kernel: 3, out: 8) as stem',
  '  output o = linear(silu(y), 4) as head',
  '}',
  '',
].join('\n'));

const vdm = (args: string[], options: SpawnSyncOptions = {}) => vdmSync(args, { cwd: dir, timeout: 120_000, ...options });

/** A one-line refusal: exit 1, no "bug in vdm", no stack trace, the expected text. */
function refused(r: ReturnType<typeof vdm>, want: RegExp) {
  assert.is(r.code, 1, r.out + r.err);
  assert.not.match(r.err, /internal error|bug in vdm/);
  assert.not.match(r.err, /^\s+at .+:\d+:\d+\)?$/m);
  assert.is(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err, want, r.err);
}

/** Runs vdm where a read-only file or folder is read-only: as an unprivileged user when we are root. */
const asUser: SpawnSyncOptions = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

const compile = (out: string[], ...more: string[]) => vdm(['compile', depthwise, '--target', 'software', '--dim', 't=4', ...out, ...more]);

test('vdm compile replaces a folder it wrote whole (stale kernels go) and refuses a user folder without --force', () => {
  const out = path.join(dir, 'out');
  assert.is(compile(['-o', out]).code, 0);
  assert.ok(fs.existsSync(path.join(out, OUTPUT_MARKER)));
  fs.writeFileSync(path.join(out, 'kernels', '999-stale.wgsl'), '// from an earlier compile');
  const again = compile(['-o', out]);
  assert.is(again.code, 0, again.err);
  assert.not.ok(fs.existsSync(path.join(out, 'kernels', '999-stale.wgsl')));
  assert.ok(fs.existsSync(path.join(out, 'program.json')));
  assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('.out.')), [], 'no temporary folder left behind');

  const mine = path.join(dir, 'mine');
  fs.mkdirSync(path.join(mine, 'kernels'), { recursive: true });
  fs.writeFileSync(path.join(mine, 'kernels', 'my-own.wgsl'), '// mine');
  refused(compile(['-o', mine]), /-o .*mine: the folder is not empty and vdm compile did not write it: .*--force/);
  assert.is(fs.readFileSync(path.join(mine, 'kernels', 'my-own.wgsl'), 'utf8'), '// mine', 'the user file is kept');
  assert.not.ok(fs.existsSync(path.join(mine, 'program.json')));
  const forced = compile(['-o', mine], '--force');
  assert.is(forced.code, 0, forced.err);
  assert.not.ok(fs.existsSync(path.join(mine, 'kernels', 'my-own.wgsl')));
  assert.ok(fs.existsSync(path.join(mine, 'program.json')));

  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  assert.is(compile(['-o', empty]).code, 0, 'an empty folder is taken');
});

test('vdm compile without -o writes under build/ of the working folder, not beside the spec', () => {
  const r = compile([]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, / in build\/lightweight-depthwise\.software\n/);
  assert.ok(fs.existsSync(path.join(dir, 'build/lightweight-depthwise.software/program.json')));
  assert.not.ok(fs.existsSync(path.join(repo, 'specs/lightweight-depthwise.software')));
});

test('paths that cannot be written are one line saying what to do', () => {
  const file = path.join(dir, 'afile');
  fs.writeFileSync(file, 'x');
  refused(compile(['-o', file]), /-o .*afile: it is a file: name a folder/);
  refused(compile(['-o', '/dev/null']), /-o \/dev\/null: it is not a folder: name a folder/);
  refused(compile(['-o', path.join(file, 'x')]), /a part of the path is a file, not a folder: correct the path/);
  refused(vdm(['run', spec, '--out', path.join(file, 'o.safetensors')]), /--out .*: '.*afile' is not a folder: correct the path/);
  refused(vdm(['run', spec, '--out', path.join(dir, 'nope', 'o.safetensors')]), /--out .*: the folder '.*nope' does not exist: create it or choose another/);
  refused(vdm(['run', spec, '--out', dir]), /--out .*: it is a folder: name a file in it/);
});

test('an unwritable folder or read-only file: compile, run --out (before the forward pass) and fmt say so in one line', () => {
  const locked = path.join(dir, 'locked');
  fs.mkdirSync(locked, { mode: 0o555 });
  fs.chmodSync(locked, 0o555);
  refused(vdm(['compile', depthwise, '--target', 'software', '-o', path.join(locked, 'k')], asUser),
    /-o .*locked\/k: cannot write in the folder '.*locked': permission denied: choose a place you can write to/);
  const run = vdm(['run', spec, '--out', path.join(locked, 'o.safetensors')], { ...asUser, env: { ...process.env, VDM_ADAPTER: 'none' } });
  refused(run, /vdm run: --out .*o\.safetensors: cannot open '.*locked\/.*': permission denied/);
  assert.is(run.out, '', 'nothing ran: the adapter (none here) was not even asked');
  const ro = path.join(dir, 'ro.vdm');
  fs.writeFileSync(ro, 'model  M {\n  dims b = 1, c = 3, t = 1, h = 2, w = 2\n  input x : video[b, c, t, h, w]\n  output y = silu(x)\n}\n');
  fs.chmodSync(ro, 0o444);
  refused(vdm(['fmt', ro], asUser), /vdm fmt: .*ro\.vdm is not formatted but cannot be written \(EACCES\): make it writable, or .*--stdin/);
  assert.match(fs.readFileSync(ro, 'utf8'), /^model {2}M/, 'left as it was');
});

test('vdm train --out and vdm sample --out: a file, a path through a file or an unwritable folder is one line at once, before any GPU work', () => {
  const file = path.join(dir, 'afile-out');
  fs.writeFileSync(file, 'x');
  const locked = path.join(dir, 'locked-out');
  fs.mkdirSync(locked, { mode: 0o555 });
  fs.chmodSync(locked, 0o555);
  const noGpu = { env: { ...process.env, VDM_ADAPTER: 'none' } };
  const cases: [string[], SpawnSyncOptions, RegExp][] = [
    [['train', spec, '--steps', '1', '--out', file], noGpu, /^vdm train: --out .*afile-out: it is a file: name a folder$/m],
    [['train', spec, '--steps', '1', '--out', path.join(file, 'run')], noGpu, /^vdm train: --out .*run: '.*afile-out' is a file, not a folder: correct the path$/m],
    [['train', spec, '--steps', '1', '--out', path.join(locked, 'run', 'deeper')], { ...asUser, ...noGpu },
      /^vdm train: --out .*deeper: cannot write in the folder '.*locked-out': permission denied: choose a place you can write to/m],
    [['sample', path.join(dir, 'no-run'), '--spec', spec, '--out', file], noGpu, /^vdm sample: --out .*afile-out: it is a file: name a folder$/m],
    [['sample', path.join(dir, 'no-run'), '--spec', spec, '--out', path.join(locked, 'samples')], { ...asUser, ...noGpu },
      /^vdm sample: --out .*samples: cannot write in the folder '.*locked-out': permission denied/m],
  ];
  for (const [args, options, want] of cases) {
    const r = vdm(args, options);
    refused(r, want);
    assert.is(r.out, '', `${args.join(' ')}: nothing started`);
  }
  assert.equal(fs.readdirSync(locked), [], 'nothing left behind');
  assert.is(fs.readFileSync(file, 'utf8'), 'x');
  fs.chmodSync(locked, 0o755);
});

test('--dim names are only names: __proto__ and toString are no dims of the model, and twice is twice', () => {
  for (const name of ['__proto__', 'toString']) {
    const once = vdm(['check', spec, '--dim', `${name}=4`]);
    assert.is(once.code, 1);
    assert.match(once.err, new RegExp(`has no dim '${name}'`));
    const twice = vdm(['check', spec, '--dim', `${name}=3`, '--dim', `${name}=4`]);
    assert.is(twice.code, 1);
    assert.match(twice.err, new RegExp(`--dim ${name} is given twice`));
    assert.not.match(twice.err, /has no dim/);
  }
});

/** The Small model's parameters as F32 tensors, with `edit` applied. */
function paramsFile(name: string, edit: (t: Record<string, SafeTensor>) => void = () => {}): string {
  const graph = checkFile(spec).graph!;
  const tensors: Record<string, SafeTensor> = {};
  for (const [p, data] of initParams(graph, 1)) {
    const shape = graph.nodes.flatMap((n) => n.params).find((q) => q.path === p)!.shape;
    tensors[p] = { dtype: 'F32', shape: [...shape], data: Float32Array.from(data) };
  }
  edit(tensors);
  const file = path.join(dir, name);
  writeSafetensors(file, tensors);
  return file;
}

test('--params: NaN and infinite values are refused naming the tensor (--allow-nonfinite lets them through); a name given twice is refused', () => {
  const bad = paramsFile('nan.safetensors', (t) => { (t['head.weight'].data as Float32Array)[3] = NaN; (t['head.weight'].data as Float32Array)[5] = -Infinity; });
  const r = vdm(['run', spec, '--params', bad], { env: { ...process.env, VDM_ADAPTER: 'none' } });
  assert.is(r.code, 1);
  assert.match(r.err, /head\.weight holds 1 NaN and 1 infinite values \(the first at index 3\); --allow-nonfinite runs with them anyway/);
  const allowed = vdm(['run', spec, '--params', bad, '--allow-nonfinite'], { env: { ...process.env, VDM_ADAPTER: 'none' } });
  assert.is(allowed.code, 1);
  assert.not.match(allowed.err, /NaN/);
  assert.match(allowed.err, /no WebGPU adapter/, 'past the parameters, on to the adapter');

  // a header naming `w` twice, written by hand
  const one = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
  const two = '{"dtype":"F32","shape":[1],"data_offsets":[4,8]}';
  const json = Buffer.from(`{"head.weight":${one},"head.weight":${two}}`);
  const dup = path.join(dir, 'dup.safetensors');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(dup, Buffer.concat([length, json, Buffer.alloc(8)]));
  const d = vdm(['run', spec, '--params', dup]);
  assert.is(d.code, 1);
  assert.match(d.err, /names 'head\.weight' twice/);
});

gpuTest('--params: tensors the model does not use are listed (a checkpoint\'s EMA and Adam moments aside), a tensor named __proto__ among them', () => {
  const file = paramsFile('extra.safetensors', (t) => {
    t['ema.head.weight'] = t['head.weight'];
    Object.defineProperty(t, '__proto__', { value: { dtype: 'F32', shape: [1], data: Float32Array.from([1]) }, enumerable: true });
    t['head.wieght'] = t['head.weight'];
  });
  const r = vdm(['run', spec, '--params', file, '--repeat', '1']);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /vdm run: note: 2 tensors of .*extra\.safetensors are no parameters of model Small and are ignored: __proto__, head\.wieght\n/);
});

gpuTest('a --dim beyond what the adapter can hold is one line saying what to do, not a bug', () => {
  const r = vdm(['run', path.join(repo, 'specs/tiny-video-dit.vdm'), '--dim', 'b=2048', '--repeat', '1']);
  assert.is(r.code, 1);
  assert.not.match(r.err, /internal error|bug in vdm/);
  assert.match(r.err, /vdm run: tensor '.*' needs .* but this adapter's \w+ is .*Reduce the batch size.*`--dim NAME=SIZE` sets a size/);
});

test('a --dim past what the kernels can dispatch is one line, not a bug: vdm compile, vdm info --train', () => {
  const tiny = path.join(repo, 'specs/tiny-video-dit.vdm');
  refused(vdm(['compile', tiny, '--target', 'software', '--dim', 'b=100000', '-o', path.join(dir, 'huge')]),
    /cannot compile model TinyVideoDiT yet: .*exceeds 65535 workgroups/);
  refused(vdm(['info', tiny, '--train', '--dim', 'b=100000']),
    /^vdm info: .*tiny-video-dit\.vdm: cannot plan a training step of model TinyVideoDiT yet: .*exceeds 65535 workgroups/);
});

test.after(() => {
  fs.chmodSync(path.join(dir, 'locked'), 0o755);
  fs.rmSync(dir, { recursive: true, force: true });
});
test.run();
