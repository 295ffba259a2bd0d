// Training checkpoints: the file layout other safetensors readers expect, metadata, atomic saves
// and what a crash leaves, keeping the last K, --resume past a damaged file, and refusing a
// checkpoint of another spec with the difference named.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import {
  canonicalGraphJson, CheckpointError, checkpointName, CorruptCheckpointError, findLatest, listCheckpoints, loadCheckpoint,
  resumeLatest, saveCheckpoint, specHash, SpecMismatchError, type CheckpointState,
} from '../../src/runtime/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../../src/runtime/safetensors.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-ckpt-'));
let folders = 0;
const freshDir = () => path.join(root, `run-${folders++}`);

const spec = (depth: number, comment = '') => `// A residual MLP stack for checkpoint tests.${comment}
import "std/layers.vdm"

model Tiny {
  dims b = 2, c = 4, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  let depth = ${depth}
  z = linear(x, 8) as proj_in
  for i in 0..depth as blocks {
    z = z + mlp(layernorm(z) as norm, ratio: 2) as mlp
  }
  output out : video[b, c, t, h, w] = linear(z, c) as proj_out
}
`;

function graphOf(text: string, name = 'main.vdm', dims?: Record<string, number>): Graph {
  const dir = fs.mkdtempSync(path.join(root, 'spec-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  const r = checkFile(file, { dims });
  assert.ok(r.graph, r.diagnostics.map((d) => d.message).join('; '));
  return r.graph!;
}

const g2 = graphOf(spec(2));
const paramsOf = (g: Graph) => g.nodes.flatMap((n) => n.params);

/** Deterministic values per tensor: the same (tag, path) always gives the same numbers. */
function values(g: Graph, tag: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  paramsOf(g).forEach((p, k) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    out.set(p.path, Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(tag * 1000 + k * 97 + i) * 0.5)));
  });
  return out;
}

const state = (g: Graph, step: number): CheckpointState => ({
  step,
  params: values(g, 1 + step),
  ema: values(g, 2 + step),
  adam: { m: values(g, 3 + step), v: values(g, 4 + step) },
  rng: { seed: 2 ** 40 + 7, stream: 3 },
  data: { epoch: 1, index: step * 8, order: 'shuffled' },
  options: { lr: 1e-4, batch: 8, ema_decay: 0.9999, schedule: { warmup: 100 } },
});

test('spec hash: same for a reformatted or moved spec, different for another depth', () => {
  const h = specHash(g2);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.is(specHash(graphOf(spec(2, '\n// a comment that moves every span'), 'elsewhere.vdm')), h);
  assert.is.not(specHash(graphOf(spec(3))), h);
  assert.is.not(specHash(graphOf(spec(2), 'main.vdm', { h: 8 })), h);
  // A resumed run never initialises: a changed init keeps the checkpoints usable.
  assert.is(specHash(graphOf(spec(2).replace('linear(x, 8)', 'linear(x, 8, init: "zeros")'))), h);
  const json = canonicalGraphJson(g2);
  assert.not.match(json, /"span"|"file"|"init"/);
  assert.is(json, canonicalGraphJson(JSON.parse(JSON.stringify(g2))), 'independent of key order and freezing');
});

test('round trip: every tensor, the RNG, data position and options come back', () => {
  const dir = freshDir();
  const s = state(g2, 300);
  const { file } = saveCheckpoint(dir, g2, s);
  assert.is(path.basename(file), 'step-000300.safetensors');
  const back = loadCheckpoint(file, g2);
  assert.is(back.step, 300);
  assert.equal(back.warnings, []);
  for (const p of paramsOf(g2)) {
    assert.equal(back.params.get(p.path), s.params.get(p.path), p.path);
    assert.equal(back.ema!.get(p.path), s.ema!.get(p.path), p.path);
    assert.equal(back.adam!.m.get(p.path), s.adam!.m.get(p.path), p.path);
    assert.equal(back.adam!.v.get(p.path), s.adam!.v.get(p.path), p.path);
  }
  assert.equal(back.rng, s.rng);
  assert.equal(back.data, s.data);
  assert.equal(back.options, s.options);
  assert.is(back.specHash, specHash(g2));

  // Only the weights: ema and adam are optional.
  const plain = loadCheckpoint(saveCheckpoint(dir, g2, { ...s, step: 301, ema: undefined, adam: undefined }).file, g2);
  assert.is(plain.ema, undefined);
  assert.is(plain.adam, undefined);
  assert.equal(plain.params.get('proj_in.weight'), s.params.get('proj_in.weight'));
});

test('file layout: what safetensors.torch.load_file accepts, read back by the plain reader', () => {
  const dir = freshDir();
  const { file } = saveCheckpoint(dir, g2, state(g2, 12));
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.is(n % 8, 0, 'data 8-byte aligned');
  const text = bytes.subarray(8, 8 + n).toString('utf8');
  assert.is(text[0], '{');
  const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__: Record<string, string> };
  // __metadata__: a flat map of strings (anything else makes the Rust reader fail).
  for (const [k, v] of Object.entries(header.__metadata__)) assert.type(v, 'string', k);
  const meta = header.__metadata__;
  assert.is(meta.format, 'pt');
  assert.is(meta['vdm.checkpoint'], '1');
  assert.is(meta['vdm.step'], '12');
  assert.is(meta['vdm.model'], 'Tiny');
  assert.is(meta['vdm.spec_sha256'], specHash(g2));
  assert.is(meta['vdm.spec'], canonicalGraphJson(g2));
  assert.equal(JSON.parse(meta['vdm.rng']), { seed: 2 ** 40 + 7, stream: 3 });
  assert.equal(JSON.parse(meta['vdm.data']), { epoch: 1, index: 96, order: 'shuffled' });
  assert.equal(JSON.parse(meta['vdm.options']).schedule, { warmup: 100 });
  // Tensors: F32, shapes of the graph, offsets contiguous from 0 to the end of the file.
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const want = paramsOf(g2).flatMap((p) => [p.path, `ema.${p.path}`, `adam.m.${p.path}`, `adam.v.${p.path}`]);
  assert.equal(names.sort(), [...want].sort());
  for (const p of paramsOf(g2)) assert.equal(header[`adam.v.${p.path}`].shape, [...p.shape]);
  const spans = names.map((k) => header[k].data_offsets).sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [b, e] of spans) { assert.is(b, at); at = e; }
  assert.is(8 + n + at, bytes.length);
  for (const k of names) assert.is(header[k].dtype, 'F32', k);
  // The existing reader agrees.
  const st = readSafetensors(file);
  assert.equal(st.metadata, meta);
  assert.equal(st.tensors['ema.proj_out.weight'].data, state(g2, 12).ema!.get('proj_out.weight'));
});

test('keeps the last K, points latest.json at the newest, drops later steps of an abandoned run', () => {
  const dir = freshDir();
  for (const step of [100, 200, 300, 400]) saveCheckpoint(dir, g2, state(g2, step), { keep: 2 });
  assert.equal(listCheckpoints(dir).map((c) => c.step), [300, 400]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')).file, 'step-000400.safetensors');
  assert.is(findLatest(dir)!.step, 400);
  // Resumed from 300 (say 400 was unwanted): saving 350 removes 400, which a later resume would take.
  const saved = saveCheckpoint(dir, g2, state(g2, 350), { keep: 2 });
  assert.equal(saved.removed.map((f) => path.basename(f)), ['step-000400.safetensors']);
  assert.equal(listCheckpoints(dir).map((c) => c.step), [300, 350]);
  assert.is(checkpointName(1234567), 'step-1234567.safetensors');
  assert.is(findLatest(path.join(root, 'no-such-folder')), null);
});

test('a crash before the rename leaves the previous checkpoint whole; findLatest ignores temp files', () => {
  const dir = freshDir();
  const { file } = saveCheckpoint(dir, g2, state(g2, 300));
  const before = fs.readFileSync(file);
  // What writeFileAtomic leaves when killed mid-write: a partial temporary file, never renamed.
  const partial = fs.readFileSync(file).subarray(0, 1000);
  fs.writeFileSync(path.join(dir, '.step-000400.safetensors.2000000000.1700000000000.tmp'), partial);
  fs.writeFileSync(path.join(dir, '.step-000300.safetensors.2000000001.1700000000000.tmp'), partial);
  const found = findLatest(dir)!;
  assert.is(found.file, file);
  assert.equal(found.skipped, []);
  assert.equal(fs.readFileSync(file), before);
  assert.is(loadCheckpoint(file, g2).step, 300);
  // The next save clears the debris of writers that are gone (no process has a pid that high).
  saveCheckpoint(dir, g2, state(g2, 400));
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('a truncated newest checkpoint: findLatest and resumeLatest fall back to the previous one, saying so', () => {
  const dir = freshDir();
  saveCheckpoint(dir, g2, state(g2, 100));
  const { file } = saveCheckpoint(dir, g2, state(g2, 200));
  fs.truncateSync(file, fs.statSync(file).size - 10);
  const warnings: string[] = [];
  const found = findLatest(dir, (m) => warnings.push(m))!;
  assert.is(found.step, 100);
  assert.is(found.skipped.length, 1);
  assert.match(found.skipped[0].reason, /truncated/);
  assert.match(warnings.join('\n'), /skipping step-000200\.safetensors: .*truncated/);
  assert.match(warnings.join('\n'), /resuming from the previous checkpoint, step-000100\.safetensors/);
  assert.throws(() => loadCheckpoint(file, g2), (e: Error) => e instanceof CorruptCheckpointError && /unreadable checkpoint: .*truncated/.test(e.message));
  const resumed = resumeLatest(dir, g2, () => {})!;
  assert.is(resumed.step, 100);
});

test('damaged tensor bytes are caught by the recorded hash, and resume passes over them', () => {
  const dir = freshDir();
  saveCheckpoint(dir, g2, state(g2, 100));
  const { file } = saveCheckpoint(dir, g2, state(g2, 200));
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 5] ^= 0x40; // a flipped bit in the last tensor
  fs.writeFileSync(file, bytes);
  assert.is(findLatest(dir)!.step, 200, 'the header is whole');
  assert.throws(() => loadCheckpoint(file, g2), (e: Error) => e instanceof CorruptCheckpointError && /tensor data is damaged/.test(e.message));
  const warnings: string[] = [];
  assert.is(resumeLatest(dir, g2, (m) => warnings.push(m))!.step, 100);
  assert.match(warnings[0], /skipping step-000200\.safetensors: .*tensor data is damaged.*; trying the previous checkpoint/);
  // Garbage and foreign files are refused with a message, not a crash.
  const junk = path.join(dir, 'junk.safetensors');
  fs.writeFileSync(junk, 'not a checkpoint at all');
  assert.throws(() => loadCheckpoint(junk, g2), (e: Error) => e instanceof CorruptCheckpointError && /header length .* goes beyond the end/.test(e.message));
  const foreign = path.join(dir, 'weights.safetensors');
  writeSafetensors(foreign, { 'proj_in.weight': { dtype: 'F32', shape: [1], data: Float32Array.of(1) } });
  assert.throws(() => loadCheckpoint(foreign, g2), /not a vdm training checkpoint \(its metadata lacks vdm\.checkpoint/);
});

test('a checkpoint of another spec is refused with what differs', () => {
  const dir = freshDir();
  const { file } = saveCheckpoint(dir, g2, state(g2, 300));
  const g3 = graphOf(spec(3));
  let err: unknown;
  try { loadCheckpoint(file, g3); } catch (e) { err = e; }
  assert.instance(err, SpecMismatchError);
  const e = err as SpecMismatchError;
  assert.match(e.message, /step-000300\.safetensors was trained on a different spec than .*main\.vdm:\n/);
  assert.match(e.message, /added blocks\.2: \+\S+ params/);
  assert.match(e.message, /train into a new folder with --out, or pass the spec this checkpoint was trained on/);
  assert.ok(e.changes.length >= 1);
  // resumeLatest does not pass over a mismatch: older checkpoints are of the same spec.
  assert.throws(() => resumeLatest(dir, g3), (x: Error) => x instanceof SpecMismatchError);
  // A --dim override that was not repeated shows as the dim it changes.
  assert.throws(() => loadCheckpoint(file, graphOf(spec(2), 'main.vdm', { h: 8 })), /dim h: 4 -> 8/);
  // The same spec moved and reformatted loads.
  assert.is(loadCheckpoint(file, graphOf(spec(2, '\n// reformatted'), 'moved.vdm')).step, 300);
});

test('missing and mis-shaped tensors are named', () => {
  const dir = freshDir();
  const { file } = saveCheckpoint(dir, g2, state(g2, 5));
  const st = readSafetensors(file);
  delete st.tensors['adam.m.proj_in.weight'];
  const w = st.tensors['ema.proj_out.weight'];
  st.tensors['ema.proj_out.weight'] = { ...w, shape: [w.shape[1], w.shape[0]] };
  st.tensors['stray.tensor'] = { dtype: 'F32', shape: [1], data: Float32Array.of(0) };
  writeSafetensors(file, st.tensors, st.metadata);
  const [i, o] = paramsOf(g2).find((p) => p.path === 'proj_out.weight')!.shape;
  let message = '';
  try { loadCheckpoint(file, g2); } catch (e) { assert.instance(e, CheckpointError); message = (e as Error).message; }
  assert.match(message, /does not fit model Tiny/);
  assert.match(message, /missing adam\.m\.proj_in\.weight \[/);
  assert.ok(message.includes(`ema.proj_out.weight is [${o}, ${i}] in the checkpoint, the model needs [${i}, ${o}]`), message);
  assert.match(message, /unexpected tensor stray\.tensor/);
});

test('a state that does not fit the graph is refused before anything is written', () => {
  const dir = freshDir();
  const s = state(g2, 7);
  const params = new Map(s.params);
  params.delete('proj_in.bias');
  params.set('proj_out.weight', new Float32Array(3));
  params.set('extra.weight', new Float32Array(1));
  assert.throws(() => saveCheckpoint(dir, g2, { ...s, params }),
    (e: Error) => e instanceof CheckpointError && /no value for proj_in\.bias/.test(e.message) && /proj_out\.weight has 3 values/.test(e.message)
      && /extra\.weight is not a parameter of model Tiny/.test(e.message));
  assert.throws(() => saveCheckpoint(dir, g2, { ...s, step: -1 }), /non-negative integer/);
  assert.equal(listCheckpoints(dir), []);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));

test.run();
