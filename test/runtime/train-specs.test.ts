// Every spec of the library, at reduced sizes: the training step's gradients equal the float64
// backward of the batch it drew (relative error < 1e-4, every parameter perturbed, so no
// zero-initialised layer hides a path), and a second step stays finite.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { lowerTraining } from '../../src/codegen/training.ts';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import { formatDiagnostic } from '../../src/compiler/ir/diagnostics.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { backward } from '../../src/compiler/reference/autodiff.ts';
import { diffusionLoss, noiseSchedule, noisingCoefficients } from '../../src/compiler/reference/diffusion-math.ts';
import { evaluate } from '../../src/compiler/reference/evaluate.ts';
import { checkSpec, TARGET_TRAITS } from '../../src/pipeline.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { relError, seed } from '../codegen/ref-check.ts';
import { liveParams } from '../codegen/lower-check.ts';
import { tempDir } from '../compiler/helpers.ts';

const specs = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../specs');
const graphOf = (file: string, dims: Record<string, number> = {}) => {
  const r = checkSpec(path.join(specs, file), { dims });
  assert.ok(r.ok, r.ok ? '' : r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.model.graph;
};

test('every spec of the library lowers to a training step for both targets', () => {
  const files = fs.readdirSync(specs).filter((f) => f.endsWith('.vdm'));
  assert.ok(files.length >= 15);
  for (const f of files) {
    const g = graphOf(f, { b: 1 });
    for (const traits of Object.values(TARGET_TRAITS)) {
      const p = lowerTraining(g, { adapter: traits });
      assert.ok(p.lowered.steps.length > 0 && p.arena.length > 0, f);
    }
  }
});

// Reduced sizes: widths, depths and windows rewritten in the spec's text (each rewrite must
// match), free dims set. The structure (every block kind, shifted windows, skips, conditioning)
// stays; only the sizes shrink, so the float64 backward stays affordable.
const DIT = ['let d = 384, depth = 8, heads = 6', 'let d = 384, depth = 12, heads = 6', 'let d = 768, depth = 12, heads = 12',
  'let d = 1024, depth = 24, heads = 16', 'let d = 1152, depth = 28, heads = 16'];
const ditRewrite = (text: string) => DIT.filter((s) => text.includes(s)).map((s) => [s, 'let d = 32, depth = 2, heads = 2'] as const);
const IMAGE = { b: 2, h: 8, w: 8 };
const VIDEO = { b: 1, t: 2, h: 8, w: 8 };
const SMALL = { b: 1, t: 2, h: 4, w: 4 };
const UNET = [['mults = (1, 2, 4)', 'mults = (1, 2)']] as const;
type Case = { dims: Record<string, number>; rewrite?: (text: string) => readonly (readonly [string, string])[] };
const CASES: Record<string, Case> = {
  'tiny-video-dit.vdm': { dims: { b: 2, t: 2, h: 8, w: 8 }, rewrite: () => [['depth = 4', 'depth = 2']] },
  'tiny-shapes.vdm': { dims: { b: 2, h: 4, w: 4 }, rewrite: () => [['depth = 4', 'depth = 2']] },
  'tiny-unet.vdm': { dims: { b: 1, t: 3, h: 4, w: 4 }, rewrite: () => [['let base = 32, groups = 8, heads = 4', 'let base = 8, groups = 4, heads = 2']] },
  'tiny-image-to-video.vdm': { dims: { b: 2, h: 4, w: 4 }, rewrite: () => [['depth = 4', 'depth = 2']] },
  'tiny-motion.vdm': { dims: { b: 2, h: 4, w: 4 }, rewrite: () => [['depth = 4', 'depth = 2']] },
  'motion-conditioned.vdm': { dims: { b: 2, t: 2, h: 4, w: 4 }, rewrite: () => [['depth = 4', 'depth = 2']] },
  'dit-s-2.vdm': { dims: IMAGE, rewrite: ditRewrite },
  'dit-b-2.vdm': { dims: IMAGE, rewrite: ditRewrite },
  'dit-l-2.vdm': { dims: IMAGE, rewrite: ditRewrite },
  'dit-xl-2.vdm': { dims: IMAGE, rewrite: ditRewrite },
  'latte-factorized.vdm': { dims: VIDEO, rewrite: ditRewrite },
  'image-to-video.vdm': { dims: VIDEO, rewrite: (t) => [...ditRewrite(t), ['l=77, c=768', 'l=4, c=16']] },
  'controllable-video.vdm': { dims: VIDEO, rewrite: ditRewrite },
  'full3d-conv.vdm': { dims: SMALL, rewrite: () => [['base = 64', 'base = 64'], ...UNET, ['blocks_per_level = 2', 'blocks_per_level = 1']] },
  'pseudo3d.vdm': { dims: SMALL, rewrite: () => [['base = 64', 'base = 64'], ...UNET] },
  'unet3d-factorized.vdm': { dims: SMALL, rewrite: () => [['base = 128', 'base = 64'], ...UNET, ['l=77, c=768', 'l=4, c=16']] },
  'hierarchical-temporal.vdm': { dims: { b: 1, t: 4, h: 4, w: 4 }, rewrite: () => [['base = 64', 'base = 64']] },
  'propagation.vdm': { dims: VIDEO, rewrite: () => [['width = 128, depth = 4', 'width = 64, depth = 2']] },
  // seven frames: each shared cell's gradient sums seven calls (more than one summing kernel takes)
  'basicvsr-propagation.vdm': { dims: { b: 1, t: 7, h: 4, w: 4 }, rewrite: () => [['let width = 64', 'let width = 8']] },
  // qk RMSNorm in every block, rotary positions over t in the temporal ones, adaLN-single tables
  'stdit3-xl-2.vdm': { dims: VIDEO, rewrite: () => [['let d = 1152, depth = 28, heads = 16, p = 2', 'let d = 32, depth = 1, heads = 2, p = 2'], ['l=300, c=4096', 'l=4, c=16']] },
  // joint attention over [text; video] tokens (flatten, concat, slice, unflatten), two-stream adaptive norms
  'cogvideox-2b.vdm': { dims: { b: 1, t: 2, h: 8, w: 8 }, rewrite: () => [['let heads = 30, dim_head = 64, depth = 30, p = 2, temb_dim = 512', 'let heads = 2, dim_head = 16, depth = 1, p = 2, temb_dim = 16'], ['l=226, c=4096', 'l=4, c=16']] },
  'lightweight-depthwise.vdm': { dims: VIDEO, rewrite: () => [['width = 64, depth = 4', 'width = 16, depth = 2']] },
  'video-swin.vdm': {
    dims: { b: 1, t: 4, h: 32, w: 32 },
    rewrite: () => [['widths = (96, 192, 384, 768), depths = (2, 2, 6, 2), heads = (3, 6, 12, 24)', 'widths = (8, 16, 32, 64), depths = (2, 2, 2, 2), heads = (1, 2, 4, 8)'],
      ['c=96,', 'c=8,'], ['c=768,', 'c=64,'], ['window: (8, 7, 7)', 'window: (2, 2, 2)']],
  },
};

/** The spec at reduced sizes, checked from a rewritten copy (its imports are the standard library's). */
function reducedGraph(file: string, { dims, rewrite }: Case): Graph {
  let text = fs.readFileSync(path.join(specs, file), 'utf8');
  for (const [from, to] of rewrite?.(text) ?? []) {
    assert.ok(text.includes(from), `${file}: the reduction expects '${from}' in the spec`);
    text = text.split(from).join(to);
  }
  const copy = path.join(tempDir(), file);
  fs.writeFileSync(copy, text);
  const r = checkFile(copy, { dims });
  assert.ok(r.graph, r.diagnostics.map(formatDiagnostic).join('\n'));
  return r.graph!;
}

function rms(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s / Math.max(v.length, 1));
}

/**
 * ||gpu - ref|| / ||ref|| over a whole tensor, the reference's rms floored at `floor`. A whole
 * model's gradient carries the f32 rounding of every layer behind it, so single elements near a
 * cancellation stray further than the tensor does: they are held to relError < 1e-2, which a
 * wrong row or sign still fails by orders of magnitude.
 */
function normError(gpu: ArrayLike<number>, ref: ArrayLike<number>, floor: number): number {
  let d = 0;
  for (let i = 0; i < ref.length; i++) d += (gpu[i] - ref[i]) ** 2;
  return Number.isNaN(d) ? Infinity : Math.sqrt(d / ref.length) / Math.max(rms(ref), floor, Number.MIN_VALUE);
}

/** A data input's values: labels cycle through the classes, scalars sweep their range, the rest a wave. */
function dataValue(i: Graph['inputs'][number]): Float32Array | Int32Array {
  const size = i.axes.reduce((p, [, s]) => p * s, 1);
  if (i.dtype === 'i32') return Int32Array.from({ length: size }, (_, k) => k % Number(i.options.classes ?? 1));
  const r = i.options.range;
  if (Array.isArray(r)) return Float32Array.from({ length: size }, (_, k) => Number(r[0]) + ((k + 1) / (size + 1)) * (Number(r[1]) - Number(r[0])));
  return Float32Array.from({ length: size }, (_, k) => 0.6 * Math.sin(0.7 * k + 0.3));
}

test('every spec of the library is covered by a reduced-size gradient check', () => {
  const files = fs.readdirSync(specs).filter((f) => f.endsWith('.vdm')).sort();
  assert.equal(files.filter((f) => !(f in CASES)), []);
});

for (const [file, c] of Object.entries(CASES)) {
  gpuTest(`${file}: the training step's gradients equal the float64 backward, and two steps stay finite`, async () => {
    const gpu = await openGpu();
    const g = reducedGraph(file, c);
    const program = lowerTraining(g, { adapter: gpu });
    const params = liveParams(g);
    const trainer = Trainer.load(gpu, program, { params });
    try {
      const n = program.noisy.axes.reduce((p, [, s]) => p * s, 1);
      const x0 = Float32Array.from({ length: n }, (_, i) => 0.8 * Math.sin(0.37 * i + 1));
      const data = new Map([...program.dataInputs.keys()].map((name) => [name, dataValue(g.inputs.find((i) => i.name === name)!)]));
      await trainer.step(x0, data, 1, 1e-4, seed);
      const [noise, t, ...grads] = await trainer.read(['train.noise', 'train.t', ...program.arena.map((e) => `grad.${e.path}`)]);
      // float64: the same x_t, timesteps and loss, from what the GPU drew
      const s = noiseSchedule(g.diffusion!.schedule);
      const per = n / program.batch;
      const xt = Float64Array.from(x0, (x, i) => { const [a, b] = noisingCoefficients(s, t[Math.floor(i / per)]); return a * x + b * noise[i]; });
      const time = g.inputs.find((i) => i.kind === 'timestep')!;
      const inputs = new Map<string, NamedTensor>([
        [program.noisy.name, { axes: program.noisy.axes, data: xt }],
        [time.name, { axes: time.axes, data: Float64Array.from(t) }],
        ...[...data].map(([name, v]) => [name, { axes: g.inputs.find((i) => i.name === name)!.axes, data: Float64Array.from(v) }] as const),
      ]);
      const ev = evaluate(g, inputs, params);
      const out = ev.outputs.get(g.outputs[0].name)!;
      const loss = diffusionLoss(g.diffusion!, s, program.noisy.axes, out.data, x0, noise, t);
      const ref = backward(g, ev, params, new Map([[g.outputs[0].name, { axes: out.axes, data: loss.grad }]]));
      // a gradient that is zero by construction (a per-channel bias just before a norm that removes
      // it) is judged against the model's gradient scale, not its own rounding-level size
      const scale = rms(Float64Array.from(program.arena.flatMap((e) => [...ref.params.get(e.path)!])));
      program.arena.forEach((e, k) => {
        const want = ref.params.get(e.path)!;
        const floor = 1e-2 * scale;
        const whole = normError(grads[k], want, floor);
        const each = rms(want) > floor ? relError(grads[k], want) : 0;
        assert.ok(whole < 1e-4 && each < 1e-2, `${file}: gradient of ${e.path}: relative error ${whole} (largest element's ${each}) (replay: VDM_TEST_SEED=${seed})`);
      });
      const first = await trainer.stats();
      assert.ok(Math.abs(first.loss - loss.total) <= 1e-5 * loss.total, `${file}: loss ${first.loss} vs float64 ${loss.total}`);
      await trainer.step(x0, data, 2, 1e-4, seed);
      const second = await trainer.stats();
      assert.ok(Number.isFinite(second.loss) && second.loss > 0, `${file}: loss ${second.loss} at step 2`);
      assert.ok(Number.isFinite(second.gradNorm) && second.gradNorm > 0, `${file}: gradient norm ${second.gradNorm}`);
      assert.is(second.nonfinite.count, 0, `${file}: non-finite gradient in ${second.nonfinite.path}`);
    } finally {
      trainer.release();
    }
  });
}

test.run();
