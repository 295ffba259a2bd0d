// A training step on the adapter: the gradients it computes from the noise and timesteps it drew
// equal the float64 backward of the same batch; two runs with one seed agree bit for bit; the
// loss of a small denoiser falls.
import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { lowerTraining, trainingMemory, type TrainingProgram } from '../../src/codegen/training.ts';
import { backward } from '../../src/compiler/reference/autodiff.ts';
import { evaluate } from '../../src/compiler/reference/evaluate.ts';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import type { NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { diffusionLoss, noiseSchedule, noisingCoefficients } from '../../src/compiler/reference/diffusion-math.ts';
import { philoxLogitNormalTimesteps, philoxTimesteps } from '../../src/codegen/kernels/philox.ts';
import { STREAMS } from '../../src/codegen/training.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { Trainer } from '../../src/runtime/trainer.ts';
import { relError, seed } from '../codegen/ref-check.ts';
import { liveParams } from '../codegen/lower-check.ts';
import { graphOf } from '../compiler/helpers.ts';

const SPEC = (predict: string) => `model Denoiser {
  dims b = 3, c = 2, t = 2, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  e = linear(silu(linear(sinusoidal(s, dim: 16), 8)), 8)
  z = silu(linear(x, 8) + e)
  z = z + gelu_tanh(linear(z, 8)) * 0.5
  output y : video[b, c, t, h, w] = linear(z, 2)
}

diffusion {
  schedule cosine(steps: 100, s: 0.008)
  predict  ${predict}
  loss     mse
  sampler  ddim(steps: 10, eta: 0.0)
}
`;

const batchOf = (program: TrainingProgram, k: number) => {
  const n = program.noisy.axes.reduce((p, [, s]) => p * s, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + k) * 0.8);
};

async function gradientsMatch(predict: string) {
  const gpu = await openGpu();
  const g: Graph = graphOf(SPEC(predict));
  const program = lowerTraining(g, { adapter: gpu });
  const params = liveParams(g);
  const trainer = Trainer.load(gpu, program, { params });
  try {
    const x0 = batchOf(program, 1);
    await trainer.step(x0, new Map(), 1, 1e-3, seed);
    const [noise, t, ...grads] = await trainer.read(['train.noise', 'train.t', ...program.arena.map((e) => `grad.${e.path}`)]);
    // float64: the same x_t, timesteps and target, from what the GPU drew
    const s = noiseSchedule(g.diffusion!.schedule);
    const per = x0.length / program.batch;
    const xt = new Float64Array(x0.length), target = new Float64Array(x0.length);
    for (let i = 0; i < x0.length; i++) {
      const ab = s.alphasCumprod[t[Math.floor(i / per)]];
      const [a, sg] = [Math.sqrt(ab), Math.sqrt(1 - ab)];
      xt[i] = a * x0[i] + sg * noise[i];
      target[i] = predict === 'epsilon' ? noise[i] : a * noise[i] - sg * x0[i];
    }
    const inputs = new Map<string, NamedTensor>([
      ['x', { axes: program.noisy.axes, data: xt }],
      ['s', { axes: [['b', program.batch]], data: Float64Array.from(t) }],
    ]);
    const ev = evaluate(g, inputs, params);
    const out = ev.outputs.get('y')!;
    const seedT = { axes: out.axes, data: Float64Array.from(out.data, (o, i) => (2 / x0.length) * (o - target[i])) };
    const ref = backward(g, ev, params, new Map([['y', seedT]]));
    let worst = 0;
    program.arena.forEach((e, k) => {
      const err = relError(grads[k], ref.params.get(e.path)!);
      worst = Math.max(worst, err);
      assert.ok(err < 1e-4, `${predict}: gradient of ${e.path}: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
    });
    const loss = out.data.reduce((acc, o, i) => acc + (o - target[i]) ** 2, 0) / x0.length;
    const stats = await trainer.stats();
    assert.ok(Math.abs(stats.loss - loss) <= 1e-5 * loss, `loss ${stats.loss} vs ${loss}`);
    assert.is(stats.nonfinite.count, 0);
    return worst;
  } finally {
    trainer.release();
  }
}

gpuTest('the step\'s gradients equal the float64 backward of the batch it drew (epsilon and v targets)', async () => {
  await gradientsMatch('epsilon');
  await gradientsMatch('v');
});

// Every loss term: the model predicts noise and a variance (learned sigma) or v, over 3 frames.
const TERMS_SPEC = (predict: string, channels: string, schedule: string, loss: string, sampler = 'ddpm(steps: 10)') => `model Denoiser {
  dims b = 3, c = 2, t = 3, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  e = linear(silu(linear(sinusoidal(s, dim: 16), 8)), 8)
  z = silu(linear(x, 8) + e)
  z = z + gelu_tanh(linear(z, 8)) * 0.5
  output y : video[b, c=${channels}, t, h, w] = linear(z, ${channels})
}

diffusion {
  schedule ${schedule}
  predict  ${predict}
  loss     ${loss}
  sampler  ${sampler}
}
`;

/** The step's gradients, loss and per-term values against the float64 loss and backward of the batch it drew. */
async function termsMatch(source: string, needT0: boolean) {
  const gpu = await openGpu();
  const g: Graph = graphOf(source);
  const program = lowerTraining(g, { adapter: gpu });
  const params = liveParams(g);
  const trainer = Trainer.load(gpu, program, { params });
  // a step whose timesteps include 0 (the decoder NLL) and a later one (the KL)
  let step = 1;
  while (needT0 && step < 200) {
    const t = philoxTimesteps({ seed, step, stream: STREAMS.timesteps }, program.batch, program.steps);
    if (t.includes(0) && t.some((v) => v > 0)) break;
    step++;
  }
  try {
    const x0 = batchOf(program, 2);
    await trainer.step(x0, new Map(), step, 1e-3, seed);
    const termNames = program.lossTerms.map((l) => l.buffer);
    const [noise, t, ...rest] = await trainer.read(['train.noise', 'train.t', ...termNames, ...program.arena.map((e) => `grad.${e.path}`)]);
    const [terms, grads] = [rest.slice(0, termNames.length), rest.slice(termNames.length)];
    if (needT0) assert.ok(t.includes(0), `t = 0 drawn: [${t}]`);
    const s = noiseSchedule(g.diffusion!.schedule);
    const per = x0.length / program.batch;
    const xt = Float64Array.from(x0, (x, i) => { const [a, b] = noisingCoefficients(s, t[Math.floor(i / per)]); return a * x + b * noise[i]; });
    const inputs = new Map<string, NamedTensor>([
      ['x', { axes: program.noisy.axes, data: xt }],
      ['s', { axes: [['b', program.batch]], data: Float64Array.from(t) }],
    ]);
    const ev = evaluate(g, inputs, params);
    const out = ev.outputs.get('y')!;
    const loss = diffusionLoss(g.diffusion!, s, program.noisy.axes, out.data, x0, noise, t);
    const ref = backward(g, ev, params, new Map([['y', { axes: out.axes, data: loss.grad }]]));
    let worst = 0;
    program.arena.forEach((e, k) => {
      const err = relError(grads[k], ref.params.get(e.path)!);
      worst = Math.max(worst, err);
      assert.ok(err < 1e-4, `gradient of ${e.path}: relative error ${err} (replay: VDM_TEST_SEED=${seed})`);
    });
    const stats = await trainer.stats();
    const lossErr = Math.abs(stats.loss - loss.total) / loss.total;
    assert.ok(lossErr <= 1e-5, `loss ${stats.loss} vs ${loss.total} (replay: VDM_TEST_SEED=${seed})`);
    program.lossTerms.forEach((l, k) => {
      const want = loss.terms.get(l.term)!;
      assert.ok(Math.abs(terms[k][0] - want) <= 1e-5 * Math.abs(want), `${l.term}: ${terms[k][0]} vs ${want} (replay: VDM_TEST_SEED=${seed})`);
    });
    assert.is(stats.nonfinite.count, 0);
    return { worst, lossErr };
  } finally {
    trainer.release();
  }
}

gpuTest('every loss term: learned sigma (mse + vlb + 0.1 tc) and v (mse + 0.1 tc) step gradients equal the float64 backward', async () => {
  const sigma = await termsMatch(TERMS_SPEC('epsilon(learned_sigma: true)', '2*c', 'cosine(steps: 10, s: 0.008)', 'mse + vlb + 0.1 * temporal_consistency'), true);
  const v = await termsMatch(TERMS_SPEC('v', 'c', 'linear(beta_start: 0.0001, beta_end: 0.1, steps: 50)', 'mse + 0.1 * temporal_consistency'), false);
  if (process.env.VDM_TEST_VERBOSE) console.log(`trainer losses: learned sigma ${JSON.stringify(sigma)}, v ${JSON.stringify(v)}`);
});

gpuTest('rectified flow (shift 3, velocity target): the step\'s gradients, loss and mse equal the float64 backward', async () => {
  const flow = await termsMatch(TERMS_SPEC('v', 'c', 'rectified_flow(steps: 20, shift: 3.0)', 'mse', 'euler(steps: 5)'), false);
  if (process.env.VDM_TEST_VERBOSE) console.log(`trainer rectified flow: ${JSON.stringify(flow)}`);
});

gpuTest('logit-normal timesteps: the step draws the levels the float64 draw gives (up to rounding), and its gradients hold', async () => {
  const source = TERMS_SPEC('v', 'c', 'rectified_flow(steps: 200, shift: 1.0)', 'mse', 'euler(steps: 5)').replace(/\n}\s*$/, '\n  timesteps logit_normal(mean: 0.5, std: 0.8)\n}\n');
  const g = graphOf(source);
  assert.equal(g.diffusion!.timesteps, { kind: 'logit_normal', mean: 0.5, std: 0.8 });
  const gpu = await openGpu();
  const program = lowerTraining(g, { adapter: gpu });
  const trainer = Trainer.load(gpu, program, { params: liveParams(g) });
  try {
    for (const step of [1, 2, 3]) {
      await trainer.step(batchOf(program, step), new Map(), step, 1e-4, seed);
      const [t] = await trainer.read(['train.t']);
      const want = philoxLogitNormalTimesteps({ seed, step, stream: STREAMS.timesteps }, program.batch, program.steps, { mean: 0.5, std: 0.8 });
      assert.ok([...t].every((v, i) => Math.abs(v - want[i]) <= 1), `step ${step}: ${[...t]} vs ${[...want]}`);
    }
  } finally {
    trainer.release();
  }
  await termsMatch(source, false);
});

gpuTest('one seed gives the same losses bit for bit; the loss of a small denoiser falls', async () => {
  const gpu = await openGpu();
  const g = graphOf(SPEC('epsilon'));
  const program = lowerTraining(g, { adapter: gpu });
  const run = async (steps: number) => {
    const trainer = Trainer.load(gpu, program, { params: liveParams(g, 5) }, { weightDecay: 0 });
    const losses: number[] = [];
    try {
      for (let k = 1; k <= steps; k++) {
        await trainer.step(batchOf(program, k % 4), new Map(), k, 3e-3, 42);
        losses.push((await trainer.stats()).loss);
      }
    } finally {
      trainer.release();
    }
    return losses;
  };
  const a = await run(60);
  const b = await run(60);
  assert.equal(a, b, 'same seed, same losses');
  const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;
  assert.ok(mean(a.slice(-15)) < 0.8 * mean(a.slice(0, 15)), `loss fell: ${mean(a.slice(0, 15))} -> ${mean(a.slice(-15))}`);
});

gpuTest('the training step fuses the chains its backward does not read: fewer dispatches, the same gradients', async () => {
  const gpu = await openGpu();
  const g = graphOf(SPEC('epsilon'));
  const gradsOf = async (fuse: boolean) => {
    const program = lowerTraining(g, { adapter: gpu, fuse });
    const trainer = Trainer.load(gpu, program, { params: liveParams(g) });
    try {
      await trainer.step(batchOf(program, 3), new Map(), 1, 1e-3, seed);
      return { steps: program.lowered.steps.length, grads: await trainer.read(program.arena.map((e) => `grad.${e.path}`)) };
    } finally {
      trainer.release();
    }
  };
  const fused = await gradsOf(true), unfused = await gradsOf(false);
  // gelu_tanh(..) * 0.5 and the residual add fuse; silu's and gelu's operands stay stored
  assert.ok(fused.steps < unfused.steps, `fused ${fused.steps} dispatches, unfused ${unfused.steps}`);
  fused.grads.forEach((gr, k) => {
    const err = relError(gr, Float64Array.from(unfused.grads[k]));
    assert.ok(err < 1e-6, `gradient ${k}: fused and unfused differ by ${err}`);
  });
});

gpuTest('parameters split over several arena groups train as in one: same losses, norms and weights', async () => {
  const gpu = await openGpu();
  const g = graphOf(SPEC('epsilon'));
  const run = async (arenaElements?: number) => {
    const program = lowerTraining(g, { adapter: gpu, arenaElements });
    const trainer = Trainer.load(gpu, program, { params: liveParams(g, 3) });
    try {
      const stats = [];
      for (let k = 1; k <= 3; k++) {
        await trainer.step(batchOf(program, k), new Map(), k, 1e-2, seed);
        stats.push(await trainer.stats());
      }
      return { groups: program.arenaGroups.length, stats, state: await trainer.state() };
    } finally {
      trainer.release();
    }
  };
  const one = await run(), split = await run(256);
  assert.is(one.groups, 1);
  assert.ok(split.groups >= 3, `${split.groups} groups`);
  split.stats.forEach((s, k) => {
    assert.ok(Math.abs(s.loss - one.stats[k].loss) <= 1e-6 * one.stats[k].loss, `loss at step ${k + 1}: ${s.loss} vs ${one.stats[k].loss}`);
    assert.ok(Math.abs(s.gradNorm - one.stats[k].gradNorm) <= 1e-6 * one.stats[k].gradNorm, `gradient norm at step ${k + 1}`);
  });
  for (const [path, w] of one.state.params) {
    const err = relError(split.state.params.get(path)!, Float64Array.from(w));
    assert.ok(err < 1e-6, `${path}: ${err}`);
    assert.ok(relError(split.state.m.get(path)!, Float64Array.from(one.state.m.get(path)!)) < 1e-6, `${path}: Adam m`);
  }
});

gpuTest('the planned training memory is what the device holds, within 15 %', async () => {
  const gpu = await openGpu();
  const g = graphOf(SPEC('epsilon'));
  const program = lowerTraining(g, { adapter: gpu });
  const planned = trainingMemory(program);
  const trainer = Trainer.load(gpu, program, { params: liveParams(g) });
  try {
    const actual = trainer.deviceBytes;
    assert.ok(planned.arenas > 0 && planned.activations > 0);
    assert.ok(Math.abs(actual - planned.total) <= 0.15 * planned.total, `planned ${planned.total} B, allocated ${actual} B`);
  } finally {
    trainer.release();
  }
});

test.run();
