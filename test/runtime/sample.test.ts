// Sampling through the pipeline (sampleSpec) on the adapter: the whole loop against the float64
// reference sampler (the model evaluated by evaluate.ts), DDIM eta 0 under guidance and DDPM with a
// learned sigma; the same seed gives byte-identical files; guidance at scale 1 is the conditional
// sample; EMA weights by default; and what cannot be sampled is refused with a clear message.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { checkFile } from '../../src/compiler/frontend/check.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import { liveParams } from '../../src/compiler/reference/evaluate.ts';
import { referenceSample } from '../../src/compiler/reference/sampling.ts';
import { sampleSpec, type SampleResult, type SampleSpecOptions } from '../../src/pipeline.ts';
import { saveCheckpoint, SpecMismatchError } from '../../src/runtime/checkpoint.ts';
import { readSafetensors } from '../../src/runtime/safetensors.ts';
import { sampleConditions, SampleSetupError } from '../../src/runtime/sample-run.ts';
import { SAMPLE_FILES } from '../../src/runtime/video-out.ts';
import { relError } from '../codegen/ref-check.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vdm-sample-'));
const write = (name: string, text: string) => { const f = path.join(dir, name); fs.writeFileSync(f, text); return f; };

// A class-conditional denoiser with a null class and guidance; its dims as trained: b = 3.
const LABELLED = (freq: number) => `model Denoiser {
  dims b = 3, c = 2, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  input y : label[b](classes: 4, null: true)
  e = linear(silu(linear(sinusoidal(s, dim: ${freq}), 8)), 8) + embed(y, classes: 5, dim: 8) as y_embedder
  z = silu(linear(x, 8) + e)
  z = z + gelu_tanh(linear(z, 8)) * 0.5
  output out : video[b, c, t, h, w] = linear(z, 2)
}

diffusion {
  schedule cosine(steps: 60, s: 0.008)
  predict  epsilon
  loss     mse
  sampler  ddim(steps: 6, eta: 0.0)
  guidance cfg(scale: 2.0, dropout: 0.25)
}
`;
// Learned sigma (noise, then variance channels), v-less epsilon, DDPM, channels 3 (RGB files).
const LEARNED = `model Sigma {
  dims b = 2, c = 3, t = 3, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  e = linear(silu(linear(sinusoidal(s, dim: 16), 8)), 8)
  z = silu(linear(x, 8) + e)
  output out : video[b, c=2*c, t, h, w] = linear(z, 6)
}

diffusion {
  schedule linear(beta_start: 1e-4, beta_end: 0.05, steps: 50)
  predict  epsilon(learned_sigma: true)
  loss     mse + vlb
  sampler  ddpm(steps: 5)
}
`;
// Text-conditioned, image-shaped.
const TEXT = `model Captioned {
  dims b = 2, c = 1, h = 4, w = 4
  input x : image[b, c, h, w]
  input s : timestep[b]
  input txt : text[b, l=3, c=8]
  e = linear(sinusoidal(s, dim: 8), 8) + mean(linear(txt, 8), over: l)
  output out : image[b, c, h, w] = linear(silu(linear(x, 8) + e), 1)
}

diffusion {
  schedule cosine(steps: 20, s: 0.008)
  predict  v
  sampler  ddim(steps: 4, eta: 0.0)
  guidance cfg(scale: 3.0, dropout: 0.1)
}
`;
// The class-conditional denoiser under rectified flow (Open-Sora 1.2's process, shifted levels).
const FLOWED = LABELLED(16).replace(/diffusion \{[^]*\}/, `diffusion {
  schedule rectified_flow(steps: 50, shift: 3.0)
  predict  v
  loss     mse
  sampler  euler(steps: 5)
  guidance cfg(scale: 2.0, dropout: 0.25)
}`);
const labelled = write('labelled.vdm', LABELLED(16));
const flowed = write('flowed.vdm', FLOWED);
const wider = write('wider.vdm', LABELLED(32));
const learned = write('learned.vdm', LEARNED);
const text = write('text.vdm', TEXT);

const graphOf = (file: string, dims?: Record<string, number>) => {
  const r = checkFile(file, { dims });
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.graph;
};
const f32 = (m: Map<string, Float64Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));

/** A run folder with one checkpoint: EMA and weights differ. */
function run(spec: string, name: string): { dir: string; ema: Map<string, Float32Array>; weights: Map<string, Float32Array> } {
  const g = graphOf(spec);
  const out = path.join(dir, name);
  const ema = f32(liveParams(g, 3, 0.3));
  const weights = f32(liveParams(g, 4, 0.3));
  saveCheckpoint(out, g, { step: 12, params: weights, ema, rng: { seed: 0 }, data: {}, options: {} });
  return { dir: out, ema, weights };
}
const runs = { flowed: run(flowed, 'flowed'), labelled: run(labelled, 'labelled'), learned: run(learned, 'learned'), text: run(text, 'text') };

async function sample(source: string, options: SampleSpecOptions): Promise<SampleResult> {
  const r = await sampleSpec(source, { mp4: false, ...options }, { stream: { write: () => true } });
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.result;
}

/** The float64 sampler on the same checkpoint weights and conditions. */
function reference(spec: string, r: SampleResult, params: Map<string, Float32Array>): Float64Array {
  const s = r.settings;
  const g: Graph = graphOf(spec, { b: s.guidance === null ? s.n : 2 * s.n });
  const conditions = sampleConditions(g, s).inputs;
  const inputs = new Map([...conditions].map(([name, data]) => [name, { axes: g.inputs.find((i) => i.name === name)!.axes, data: Float64Array.from(data) }]));
  return referenceSample(g, new Map([...params].map(([k, v]) => [k, Float64Array.from(v)])), inputs,
    { sampler: s.sampler, steps: s.steps, eta: s.eta, guidance: s.guidance, clip: s.clip, seed: s.seed });
}

gpuTest('DDIM eta 0 under guidance (conditional and unconditional in one batch) matches the float64 sampler', async () => {
  const r = await sample(runs.labelled.dir, { spec: labelled, out: path.join(dir, 'o-ddim'), settings: { n: 3, steps: 4, guidance: 3, clip: false, seed: 5 } });
  assert.is(r.weights, 'ema');
  assert.equal([...r.labels!], [0, 1, 2]);
  assert.equal(r.shape, [3, 2, 2, 4, 4]);
  const ref = reference(labelled, r, runs.labelled.ema);
  const err = relError(r.samples, ref);
  assert.ok(err < 1e-4, `relative error ${err}`);
});

gpuTest('rectified flow: Euler from t = 1 under guidance matches the float64 sampler; the process is the flow\'s', async () => {
  assert.match(FLOWED, /rectified_flow/);
  const r = await sample(runs.flowed.dir, { spec: flowed, out: path.join(dir, 'o-euler'), settings: { n: 3, guidance: 2.5, seed: 9 } });
  assert.is(r.settings.sampler, 'euler');
  assert.is(r.settings.steps, 5);
  const ref = reference(flowed, r, runs.flowed.ema);
  const err = relError(r.samples, ref);
  if (process.env.VDM_TEST_VERBOSE) console.log(`euler sampler: relative error ${err} against float64`);
  assert.ok(err < 1e-4, `relative error ${err}`);
  // the conditional sample alone (guidance scale 1) differs: the check can fail
  const g6 = graphOf(flowed, { b: 6 });
  const conditions = new Map([...sampleConditions(g6, r.settings).inputs].map(([name, data]) => [name, { axes: g6.inputs.find((i) => i.name === name)!.axes, data: Float64Array.from(data) }]));
  const unguided = referenceSample(g6, new Map([...runs.flowed.ema].map(([k, v]) => [k, Float64Array.from(v)])), conditions,
    { sampler: 'euler', steps: 5, eta: 0, guidance: 1, clip: false, seed: 9 });
  assert.ok(relError(r.samples, unguided) > 1e-2, 'another guidance scale must not match');
});

gpuTest('DDPM with a learned sigma, respaced to 5 of 50 steps, clipped, matches the float64 sampler (Philox noise keyed alike)', async () => {
  const r = await sample(runs.learned.dir, { spec: learned, out: path.join(dir, 'o-ddpm'), settings: { n: 2, seed: 11 } });
  assert.is(r.settings.sampler, 'ddpm');
  assert.is(r.settings.steps, 5);
  const ref = reference(learned, r, runs.learned.ema);
  const err = relError(r.samples, ref);
  assert.ok(err < 1e-4, `relative error ${err}`);
  assert.ok(r.samples.every((v) => v >= -1 && v <= 1), 'the last step returns the clipped x0');
});

gpuTest('the same seed gives byte-identical GIF, PNG and tensors; another seed other samples', async () => {
  const opts = (out: string, seed: number): SampleSpecOptions => ({ spec: labelled, out: path.join(dir, out), settings: { n: 2, seed } });
  const [a, b, c] = [await sample(runs.labelled.dir, opts('same-a', 1)), await sample(runs.labelled.dir, opts('same-b', 1)), await sample(runs.labelled.dir, opts('other', 2))];
  for (const name of [SAMPLE_FILES.gif, SAMPLE_FILES.grid, SAMPLE_FILES.tensors]) {
    const [x, y] = [fs.readFileSync(path.join(a.out, name)), fs.readFileSync(path.join(b.out, name))];
    assert.ok(x.length > 0 && x.equals(y), `${name} differs between two runs of one seed`);
  }
  assert.ok(!fs.readFileSync(path.join(a.out, SAMPLE_FILES.tensors)).equals(fs.readFileSync(path.join(c.out, SAMPLE_FILES.tensors))));
  const st = readSafetensors(path.join(a.out, SAMPLE_FILES.tensors));
  assert.equal(st.tensors.samples.shape, [2, 2, 2, 4, 4]);
  assert.equal([...st.tensors.labels.data], [0, 1]);
  assert.is(st.metadata['vdm.sampler'], 'ddim');
  assert.is(st.metadata['vdm.guidance'], '2');
  assert.equal([...(st.tensors.samples.data as Float32Array)], [...a.samples]);
  assert.equal([...fs.readFileSync(path.join(a.out, SAMPLE_FILES.gif)).subarray(0, 6)], [...Buffer.from('GIF89a')]);
  assert.equal(fs.readdirSync(a.out).filter((f) => f.startsWith('.')), [], 'no temporary files are left');
});

gpuTest('guidance at scale 1 (a batch of 2n) is the conditional sample (a batch of n); EMA by default, --no-ema the weights', async () => {
  const settings = { n: 2, steps: 3, classId: 2, seed: 3 };
  const guided = await sample(runs.labelled.dir, { spec: labelled, out: path.join(dir, 'g1'), settings: { ...settings, guidance: 1 } });
  const plain = await sample(runs.labelled.dir, { spec: labelled, out: path.join(dir, 'g0'), settings: { ...settings, guidance: null } });
  const err = relError(guided.samples, plain.samples);
  assert.ok(err < 1e-4, `relative error ${err}`);
  const raw = await sample(runs.labelled.dir, { spec: labelled, out: path.join(dir, 'raw'), settings: { ...settings, guidance: null, ema: false } });
  assert.is(raw.weights, 'weights');
  assert.ok(relError(raw.samples, plain.samples) > 1e-2, 'the raw weights sample differently');
  const ref = reference(labelled, raw, runs.labelled.weights);
  assert.ok(relError(raw.samples, ref) < 1e-4);
});

gpuTest('a text input is embedded from the caption (zero text unconditional); an image input gives [n, c, h, w] samples', async () => {
  const r = await sample(runs.text.dir, { spec: text, out: path.join(dir, 'text'), settings: { n: 2, caption: 'red square moving up-left', clip: false } });
  assert.equal(r.shape, [2, 1, 4, 4]);
  assert.is(r.labels, null);
  const ref = reference(text, r, runs.text.ema);
  assert.ok(relError(r.samples, ref) < 1e-4);
});

test('what cannot be sampled as asked is refused before the GPU, saying what to do', async () => {
  const refused = async (source: string, options: SampleSpecOptions, kind: new (...a: never[]) => Error, pattern: RegExp) => {
    try {
      await sampleSpec(source, { mp4: false, out: path.join(dir, 'never'), ...options });
    } catch (e) {
      assert.instance(e, kind);
      assert.match((e as Error).message, pattern);
      return;
    }
    assert.unreachable(`${JSON.stringify(options)} was not refused`);
  };
  await refused(runs.labelled.dir, { spec: wider }, SpecMismatchError, /trained on a different spec than [^]*sinusoidal[^]*dim: 16 -> 32[^]*pass the spec it was trained on with --spec/);
  await refused(runs.labelled.dir, {}, SampleSetupError, /holds model Denoiser but not the spec file[^]*--spec/);
  await refused(runs.labelled.dir, { spec: labelled, settings: { classId: 4 } }, SampleSetupError, /--class 4 is not a class of model Denoiser: input 'y' has classes 0 to 3/);
  await refused(runs.text.dir, { spec: text }, SampleSetupError, /takes text input 'txt': pass --caption/);
  await refused(runs.learned.dir, { spec: learned, settings: { guidance: 2 } }, SampleSetupError, /guidance needs a condition to drop[^]*--guidance none/);
  await refused(runs.learned.dir, { spec: learned, settings: { classId: 1 } }, SampleSetupError, /--class: model Sigma takes no class label/);
  await refused(runs.learned.dir, { spec: learned, settings: { steps: 51 } }, SampleSetupError, /--steps 51 is more than the 50 steps/);
  await refused(runs.learned.dir, { spec: learned, settings: { eta: 0.5 } }, SampleSetupError, /--eta applies to --sampler ddim only/);
  await refused(runs.flowed.dir, { spec: flowed, settings: { sampler: 'ddim' } }, SampleSetupError, /--sampler ddim needs a DDPM schedule[^]*samples with euler/);
  await refused(runs.learned.dir, { spec: learned, settings: { sampler: 'euler' } }, SampleSetupError, /--sampler euler integrates a rectified flow/);
  await refused(path.join(dir, 'nowhere'), { spec: learned }, SampleSetupError, /no such checkpoint or run folder/);
  fs.mkdirSync(path.join(dir, 'empty'));
  await refused(path.join(dir, 'empty'), { spec: learned }, SampleSetupError, /holds no checkpoint/);
  assert.not.ok(fs.existsSync(path.join(dir, 'never')), 'nothing was written');
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
