// vdm convert: PyTorch layouts by rule (Linear transposed, a patch embedding as a strided conv,
// convs and norms copied), name maps, refusing a tensor in the other layout, listing what one side
// lacks, a bit-identical round trip; vdm export torch's coverage errors. No Python needed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import { checkSpec, initialParams } from '../../src/pipeline.ts';
import { ConvertError, guessDirection, torchToVdmParams, vdmToTorchParams } from '../../src/interop/convert.ts';
import { convertFile } from '../../src/interop/convert-files.ts';
import { torchLayout } from '../../src/interop/layout.ts';
import { IDENTITY_MAP, loadNameMap, NameMapError, toTorchName, toVdmName } from '../../src/interop/name-maps.ts';
import { ExportError, exportTorch } from '../../src/interop/torch-export.ts';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../../src/runtime/safetensors.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-convert-'));
const spec = (name: string) => path.join(repo, 'specs', name);

const graphOf = (file: string, dims: Record<string, number> = {}): Graph => {
  const c = checkSpec(file, { dims });
  if (!c.ok) throw new Error(c.diagnostics.map((d) => d.message).join('; '));
  return c.model.graph;
};

/** vdm's perturbed parameters as F32 safetensors records. */
function vdmTensors(graph: Graph, seed = 1): Record<string, SafeTensor> {
  const params = initialParams(graph, { perturb: true, seed });
  const out: Record<string, SafeTensor> = {};
  for (const p of graph.nodes.flatMap((n) => n.params)) out[p.path] = { dtype: 'F32', shape: [...p.shape], data: Float32Array.from(params.get(p.path)!) };
  return out;
}

const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

// DiT-S/2's own text, narrowed (d = 64, depth = 2) so that converting it stays fast.
const narrowDit = path.join(dir, 'dit-s-2-narrow.vdm');
fs.writeFileSync(narrowDit, fs.readFileSync(spec('dit-s-2.vdm'), 'utf8').replace('let d = 384, depth = 12, heads = 6, p = 2', 'let d = 64, depth = 2, heads = 4, p = 2'));

const small = path.join(dir, 'small.vdm');
fs.writeFileSync(small, `model Small {
  dims b = 2, c = 3, t = 4, h = 8, w = 8
  input x : video[b, c, t, h, w]
  y = conv(x, over: (h, w), kernel: 3, out: 8) as stem
  z = linear(y, 8) as square
  z = layernorm(z) as norm
  output o = linear(silu(z), 3) as head
}
`);

test('layout by rule: linear [in, out] -> [out, in], a square weight transposed too; conv and layernorm copied', () => {
  const g = graphOf(small);
  const byPath = new Map(torchLayout(g).map((l) => [l.path, l]));
  assert.is(byPath.get('stem.weight')!.rule, 'same');
  assert.equal(byPath.get('stem.weight')!.torchShape, [8, 3, 3, 3]);
  assert.is(byPath.get('square.weight')!.rule, 'transpose');
  assert.is(byPath.get('norm.weight')!.rule, 'same');
  assert.equal(byPath.get('head.weight')!.torchShape, [3, 8]);
  const src = vdmTensors(g);
  const torch = vdmToTorchParams(g, src, IDENTITY_MAP).tensors;
  const [v, t] = [src['square.weight'].data, torch['square.weight'].data];
  for (let i = 0; i < 8; i++) for (let o = 0; o < 8; o++) assert.is(t[o * 8 + i], v[i * 8 + o]);
  assert.not.ok(sameBits(v as Float32Array, t as Float32Array), 'a square weight is transposed by rule, not kept because its shape fits');
});

test('conv_transpose is ConvTranspose\'s [c, out / groups, k...]; a linear over several axes nn.Linear(prod, out) transposed', () => {
  const file = path.join(dir, 'up.vdm');
  fs.writeFileSync(file, `model Up {
  dims b = 2, c = 4, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  y = conv_transpose(x, over: (h, w), kernel: (h: 4, w: 2), stride: 2, padding: 1, out: 6, groups: 2) as up
  output o = linear(y, 3, axis: (t, c)) as flat
}
`);
  const g = graphOf(file);
  const byPath = new Map(torchLayout(g).map((l) => [l.path, l]));
  assert.is(byPath.get('up.weight')!.rule, 'same');
  assert.equal(byPath.get('up.weight')!.torchShape, [4, 3, 4, 2]);
  assert.is(byPath.get('flat.weight')!.rule, 'transpose');
  assert.equal(byPath.get('flat.weight')!.torchShape, [3, 12]);
  const py = exportTorch(g).source;
  assert.match(py, /nn\.ConvTranspose2d\(4, 6, kernel_size=\(4, 2\), stride=\(2, 2\), padding=\(1, 1\), output_padding=\(0, 0\), dilation=\(1, 1\), groups=2\)/);
  assert.match(py, /nn\.Linear\(12, 3\)/);
});

test('a patch embedding is a strided conv [out, C, k...] over the patch axes larger than 1', () => {
  for (const [file, kernel] of [['tiny-video-dit.vdm', [2, 2, 2]], ['tiny-shapes.vdm', [8]], ['dit-s-2.vdm', [2, 2]]] as const) {
    const g = graphOf(spec(file), { b: 1, ...(file === 'dit-s-2.vdm' ? { h: 4, w: 4 } : {}) });
    const l = torchLayout(g).find((x) => x.path === 'x_embedder.proj.weight')!;
    const C = g.inputs[0].axes.find(([n]) => n === 'c')![1];
    const D = l.vdmShape[1];
    assert.is(l.rule, 'patch-conv', file);
    assert.equal(l.torchShape, [D, C, ...kernel], file);
  }
  // torch[o, c, dt, dh, dw] = vdm[((dt * 2 + dh) * 2 + dw) * C + c, o] (patch (t: 2, h: 2, w: 2), C = 3)
  const g = graphOf(spec('tiny-video-dit.vdm'), { b: 1 });
  const v = vdmTensors(g);
  const t = vdmToTorchParams(g, v, IDENTITY_MAP).tensors['x_embedder.proj.weight'].data;
  const vw = v['x_embedder.proj.weight'].data;
  const D = 64, C = 3;
  for (const [o, c, dt, dh, dw] of [[0, 0, 0, 0, 0], [5, 2, 1, 0, 1], [63, 1, 1, 1, 0], [17, 0, 0, 1, 1]]) {
    assert.is(t[(((o * C + c) * 2 + dt) * 2 + dh) * 2 + dw], vw[(((dt * 2 + dh) * 2 + dw) * C + c) * D + o]);
  }
});

test('round trip vdm -> PyTorch layout -> vdm is bit-identical (DiT-S/2 with the dit map, tiny-video-dit, a conv model), through files too', () => {
  for (const [file, dims, map] of [[narrowDit, { b: 1, h: 4, w: 4 }, 'dit'], [spec('tiny-video-dit.vdm'), { b: 1 }, undefined], [small, {}, undefined]] as const) {
    const g = graphOf(file, dims);
    const m = loadNameMap(map);
    const src = vdmTensors(g, 3);
    const torch = vdmToTorchParams(g, src, m);
    assert.equal(torch.unmatched, []);
    const back = torchToVdmParams(g, torch.tensors, m);
    assert.equal(Object.keys(back.tensors).sort(), Object.keys(src).sort());
    for (const k of Object.keys(src)) {
      assert.ok(sameBits(back.tensors[k].data as Float32Array, src[k].data as Float32Array), `${file}: ${k} changed in the round trip`);
      assert.equal(back.tensors[k].shape, src[k].shape);
    }
  }
  const g = graphOf(small);
  const a = path.join(dir, 'a.safetensors'), b = path.join(dir, 'b.safetensors'), c = path.join(dir, 'c.safetensors');
  writeSafetensors(a, vdmTensors(g, 4), { 'vdm.model': 'Small' });
  assert.is(convertFile(g, { input: a, output: b, map: IDENTITY_MAP }).to, 'torch', 'a file vdm wrote goes to PyTorch');
  assert.is(convertFile(g, { input: b, output: c, map: IDENTITY_MAP }).to, 'vdm', 'a state dict goes to vdm');
  const [x, z] = [readSafetensors(a).tensors, readSafetensors(c).tensors];
  for (const k of Object.keys(x)) assert.ok(sameBits(x[k].data as Float32Array, z[k].data as Float32Array), k);
  // a training checkpoint: the raw weights by default (and a note), its EMA weights with ema
  const raw = vdmTensors(g, 4), ema = vdmTensors(g, 9);
  const ckpt = path.join(dir, 'ckpt.safetensors');
  writeSafetensors(ckpt, { ...raw, ...Object.fromEntries(Object.entries(ema).map(([k, t]) => [`ema.${k}`, t])) }, { 'vdm.model': 'Small' });
  const plain = convertFile(g, { input: ckpt, output: b, map: IDENTITY_MAP });
  assert.ok(plain.emaNote);
  assert.equal(plain.unmatched, []);
  assert.ok(sameBits(readSafetensors(b).tensors['stem.weight'].data as Float32Array, raw['stem.weight'].data as Float32Array));
  const fromEma = convertFile(g, { input: ckpt, output: b, map: IDENTITY_MAP, ema: true });
  assert.not.ok(fromEma.emaNote);
  assert.ok(sameBits(readSafetensors(b).tensors['stem.weight'].data as Float32Array, ema['stem.weight'].data as Float32Array));
  assert.throws(() => convertFile(g, { input: a, output: b, map: IDENTITY_MAP, ema: true }), /--ema: .* holds no EMA weights/);
});

test('a tensor in the other layout is refused by name, with both layouts; missing tensors listed; extra ones reported, ignored ones with why', () => {
  const g = graphOf(narrowDit, { b: 1, h: 4, w: 4 });
  const dit = loadNameMap('dit');
  const src = vdmTensors(g);
  // vdm's own file read as a PyTorch state dict
  try {
    torchToVdmParams(g, src, IDENTITY_MAP);
    assert.unreachable('a vdm-layout file was accepted as PyTorch');
  } catch (e) {
    assert.instance(e, ConvertError);
    const m = (e as Error).message;
    assert.match(m, /t_embedder\.fc1\.weight is \[256, 64\]: vdm's layout, not PyTorch's \[64, 256\] \(nn\.Linear keeps \[out, in\], vdm \[in, out\]\)/);
    assert.match(m, /x_embedder\.proj\.weight is \[16, 64\]: vdm's layout, not PyTorch's \[64, 4, 2, 2\]/);
    assert.match(m, /converted by the rule its layer gives it, never by its shape; is the file a vdm checkpoint\?/);
    assert.not.match(m, /blocks\.0\.attn\.proj\.weight/, 'a square weight cannot be told by its shape: it is not reported, it is converted by rule');
  }
  const torch = vdmToTorchParams(g, src, dit).tensors;
  assert.ok(torch['blocks.1.adaLN_modulation.1.weight'] && torch['t_embedder.mlp.2.bias'] && torch['final_layer.adaLN_modulation.1.bias']);
  const partial = { ...torch, pos_embed: { dtype: 'F32', shape: [1, 4, 64], data: new Float32Array(4 * 64) }, 'ema.extra': torch['t_embedder.mlp.2.bias'] } as Record<string, SafeTensor>;
  const r = torchToVdmParams(g, partial, dit);
  assert.equal(r.unmatched, ['ema.extra']);
  assert.equal(r.ignored.map(([n]) => n), ['pos_embed']);
  delete partial['blocks.1.mlp.fc2.weight'];
  assert.throws(() => torchToVdmParams(g, partial, dit), /missing blocks\.1\.mlp\.fc2\.weight \[64, 256\]/);
  assert.is(guessDirection(g, src, {}), 'torch');
  assert.is(guessDirection(g, torch, {}), 'vdm');
});

test('name maps: built-in dit, a user\'s JSON map, errors naming the problem', () => {
  const dit = loadNameMap('dit');
  assert.is(toTorchName(dit, 'blocks.7.ada.weight'), 'blocks.7.adaLN_modulation.1.weight');
  assert.is(toVdmName(dit, 'blocks.7.adaLN_modulation.1.weight'), 'blocks.7.ada.weight');
  assert.is(toTorchName(dit, 't_embedder.fc2.bias'), 't_embedder.mlp.2.bias');
  assert.is(toTorchName(dit, 'blocks.0.attn.qkv.weight'), 'blocks.0.attn.qkv.weight');
  const file = path.join(dir, 'map.json');
  fs.writeFileSync(file, JSON.stringify({ rules: [{ vdm: 'layers.{i}.{p*}', torch: 'net.{i}.{p*}' }], ignore: [{ torch: 'freqs', why: 'a buffer' }] }));
  const m = loadNameMap(file);
  assert.is(toTorchName(m, 'layers.2.fc.weight'), 'net.2.fc.weight');
  assert.is(toVdmName(m, 'net.2.fc.weight'), 'layers.2.fc.weight');
  fs.writeFileSync(file, JSON.stringify({ rules: [{ vdm: 'layers.{i}.{p*}', torch: 'net.{p*}' }] }));
  assert.throws(() => loadNameMap(file), (e: Error) => e instanceof NameMapError && /same placeholders/.test(e.message));
  assert.throws(() => loadNameMap('latte2'), /no such built-in map \(built in: dit, latte, swin, diffusers, opensora, cogvideox\)/);
});

test('vdm export torch: one class per block and a loop over blocks; every spec exports; an unknown op is named in the error', () => {
  const g = graphOf(spec('dit-s-2.vdm'), { b: 1, h: 4, w: 4 });
  const { source, classes } = exportTorch(g, { map: loadNameMap('dit') });
  assert.ok(classes >= 6);
  assert.match(source, /class Block\(nn\.Module\):/);
  assert.match(source, /self\.blocks = nn\.ModuleList\(\[Block\(\) for _ in range\(12\)\]\)/);
  assert.match(source, /for block in self\.blocks:\n {12}h = block\(/);
  assert.match(source, /self\.adaLN_modulation = nn\.ModuleDict\(\{'1': nn\.Linear\(384, 2304\)\}\)/);
  assert.match(source, /self\.proj = nn\.Conv2d\(4, 384, kernel_size=\(2, 2\), stride=\(2, 2\)\)/);
  assert.match(source, /def training_loss\(model, x0, alpha_bar/);
  assert.match(source, /terms\['vlb'\] = vlb_term\(var, pred\.detach\(\), x0, x_t, t, alpha_bar\)/);
  assert.match(source, /t = torch\.randint\(0, alpha_bar\.shape\[0\]/);
  // logit-normal levels (Open-Sora 1.2's training) where the spec asks for them
  const flow = exportTorch(graphOf(spec('stdit3-xl-2.vdm'), { b: 1, t: 2, h: 4, w: 4 })).source;
  assert.match(flow, /t = \(torch\.sigmoid\(0 \+ 1 \* z\) \* levels\.shape\[0\]\)\.floor\(\)\.long\(\)\.clamp\(max=levels\.shape\[0\] - 1\)/);
  // Every spec of specs/ exports; an op the export does not know is named with the layers using it.
  for (const f of fs.readdirSync(path.join(repo, 'specs')).filter((n) => n.endsWith('.vdm'))) {
    assert.ok(exportTorch(graphOf(spec(f), { b: 1 })).classes > 0, f);
  }
  const unknown = JSON.parse(JSON.stringify(g)) as { nodes: { op: string }[] };
  unknown.nodes[5].op = 'mystery';
  unknown.nodes[40].op = 'mystery';
  assert.throws(() => exportTorch(unknown as unknown as Graph),
    (e: Error) => e instanceof ExportError && /^model DiT_S_2 uses what vdm export torch does not write yet: mystery \(t_embedder\.silu, blocks\.1\.\w+\)$/.test(e.message));
});

test('the CLI: vdm convert and vdm export torch write files and say what they did; bad input is one line, no stack trace', () => {
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), ...args], { cwd: repo, encoding: 'utf8', timeout: 120_000, env: { ...process.env, VDM_PYTHON: '/nonexistent/python3' } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const g = graphOf(small);
  const a = path.join(dir, 'cli-a.safetensors');
  writeSafetensors(a, vdmTensors(g), { 'vdm.model': 'Small' });
  const r = run('convert', a, '-o', path.join(dir, 'cli-t.safetensors'), '--spec', small);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /wrote .*cli-t\.safetensors: 8 tensors, .* in PyTorch layout \(--to torch, guessed from/);
  assert.match(r.out, /2 transposed, 6 copied/);
  const pt = run('convert', a, '-o', path.join(dir, 'x.pt'), '--spec', small);
  assert.is(pt.code, 1);
  assert.match(pt.err, /^vdm convert: no Python with torch and numpy \(\/nonexistent\/python3: not installed\)\n$/);
  const ok = run('export', 'torch', spec('full3d-conv.vdm'), '-o', path.join(dir, 'm.py'), '--dim', 'b=1');
  assert.is(ok.code, 0, ok.err);
  assert.match(ok.out, /^wrote .*m\.py: class Full3DConvUNet \(\d+ classes, \d+ lines of Python\) in/);
  const bad = run('export', 'torch', spec('dit-s-2.vdm'), '-o', path.join(dir, 'm2.py'), '--map', 'nope.json');
  assert.is(bad.code, 1);
  assert.match(bad.err, /^vdm export: --map nope\.json: cannot read it \(ENOENT\)\n$/);
  assert.not.match(bad.err + pt.err, /^\s+at .+:\d+:\d+\)?$/m);
  const usage = run('convert', a, '--spec', small);
  assert.is(usage.code, 2);
  assert.match(usage.err, /name the file to write with -o FILE/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
