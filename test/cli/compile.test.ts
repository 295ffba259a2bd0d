// `vdm compile`: deterministic kernels and manifest, golden snapshots of what a spec lowers to (so a
// codegen change shows in review), and the command's behaviour on bad input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { checkSpec, lowerModel, planModel, programFiles, type Target } from '../../src/pipeline.ts';
import { compilationMessages } from '../../src/runtime/compile-check.ts';
import { vdmSync } from './vdm-process.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const golden = path.join(repo, 'test/golden');
const update = process.env.VDM_UPDATE_GOLDEN === '1';

function compile(spec: string, target: Target) {
  const checked = checkSpec(path.join(repo, 'specs', spec));
  assert.ok(checked.ok, spec);
  return programFiles(planModel(lowerModel(checked.model, { target })));
}

/** Every file of the snapshot folder, relative path -> text. */
function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p).split(path.sep).join('/'), fs.readFileSync(p, 'utf8'));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

for (const target of ['gpu', 'software'] as const) {
  test(`tiny-video-dit lowers for the ${target} target exactly as its golden snapshot (VDM_UPDATE_GOLDEN=1 rewrites it)`, () => {
    const { files } = compile('tiny-video-dit.vdm', target);
    assert.equal([...compile('tiny-video-dit.vdm', target).files], [...files], 'the same spec gives the same bytes');
    const dir = path.join(golden, `tiny-video-dit.${target}`);
    if (update) {
      fs.rmSync(dir, { recursive: true, force: true });
      for (const [rel, text] of files) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
      }
    }
    const want = readTree(dir);
    assert.equal([...files.keys()].sort(), [...want.keys()].sort(), 'the same kernel files');
    for (const [rel, text] of files) assert.fixture(text, want.get(rel)!, rel);
  });
}

gpuTest('the kernels compiled for a GPU also compile cleanly on this adapter', async () => {
  const { files } = compile('tiny-video-dit.vdm', 'gpu');
  for (const [rel, wgsl] of files) {
    if (!rel.endsWith('.wgsl')) continue;
    const msgs = await compilationMessages({ key: `golden:${rel}`, wgsl, entryPoint: 'main', bindings: [], dispatch: [1, 1, 1] });
    assert.equal(msgs, [], rel);
  }
});

const vdm = (...args: string[]) => vdmSync(args, { timeout: 60_000 });

test('vdm compile writes the kernels and program.json, replaces stale kernels, and refuses bad input cleanly', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-compile-'));
  const out = path.join(dir, 'out');
  assert.is(vdm('compile', 'specs/lightweight-depthwise.vdm', '-o', out, '--target', 'software').code, 0);
  fs.writeFileSync(path.join(out, 'kernels', '999-stale.wgsl'), '// from an earlier compile');
  const r = vdm('compile', 'specs/lightweight-depthwise.vdm', '-o', out, '--target', 'software', '--dim', 't=4');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /model \w+ -> \d+ kernels, \d+ dispatches \(software\)/);
  const program = JSON.parse(fs.readFileSync(path.join(out, 'program.json'), 'utf8'));
  assert.is(program.target, 'software');
  assert.is(program.dims.t, 4);
  assert.not.ok(fs.existsSync(path.join(out, 'kernels', '999-stale.wgsl')));
  for (const s of program.steps) assert.ok(fs.existsSync(path.join(out, s.kernel)), s.kernel);
  const bad = path.join(dir, 'bad.vdm');
  fs.writeFileSync(bad, 'model Bad {\n  dims b, c = 4, h = 8, w = 8\n  input x : image[b, c, h, w]\n  output o = linear(x, dpeth)\n}\n');
  const e = vdm('compile', bad, '-o', path.join(dir, 'bad'));
  assert.is(e.code, 1);
  assert.match(e.err, /bad\.vdm:4:\d+: error VDM\d{3}/);
  assert.not.match(e.err, /^\s+at .+:\d+:\d+\)?$/m);
  assert.not.ok(fs.existsSync(path.join(dir, 'bad')), 'nothing is written for a spec with errors');
  assert.is(vdm('compile', bad, '--target', 'tpu').code, 2);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
