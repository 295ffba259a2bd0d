// The diffusion section: entries with defaults (VDM060) and agreement with the model (VDM061).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, codes, graphOf, places } from './helpers.ts';

const MODEL = (out = 'x', extra = '') => `model M {
  dims b = 2, c = 4, t = 3, h = 8, w = 8
  input x : video[b, c, t, h, w]
  input s : timestep[b]
${extra}
  output eps = ${out}
}
`;

test('a full section becomes the graph IR diffusion spec', () => {
  const g = graphOf(`${MODEL('concat(x, x) + linear(embed(y, dim: 8), 8)', '  input y : label[b](classes: 10, null: true)')}
diffusion {
  schedule scaled_linear(steps: 500)
  predict epsilon(learned_sigma: true)
  loss mse + 0.1 * temporal_consistency + vlb * 0.5
  sampler ddim(steps: 25, eta: 0.5)
  guidance cfg(scale: 7.5)
}`);
  assert.equal(g.diffusion, {
    schedule: { kind: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, steps: 500 },
    predict: { target: 'epsilon', learned_sigma: true },
    loss: [{ term: 'mse', weight: 1 }, { term: 'temporal_consistency', weight: 0.1 }, { term: 'vlb', weight: 0.5 }],
    sampler: { kind: 'ddim', steps: 25, eta: 0.5 },
    guidance: { kind: 'cfg', scale: 7.5, dropout: 0.1 },
    noisy_input: 'x',
  });
});

test('defaults: linear schedule, epsilon, mse, ddpm over the schedule steps, no guidance', () => {
  const g = graphOf(`${MODEL()}\ndiffusion {\n  schedule cosine(steps: 200)\n}`);
  assert.equal(g.diffusion, {
    schedule: { kind: 'cosine', steps: 200, s: 0.008 },
    predict: { target: 'epsilon', learned_sigma: false },
    loss: [{ term: 'mse', weight: 1 }],
    sampler: { kind: 'ddpm', steps: 200 },
    guidance: null,
    noisy_input: 'x',
  });
});

test('VDM060: unknown entries, values, settings, terms; repeated entries; bad numbers', () => {
  const r = check(`${MODEL()}
diffusion {
  noise gaussian
  predict score
  loss mse + 0.5 * perceptual
  sampler ddim(stepz: 5)
  schedule linear(beta_start: 0.5, beta_end: 0.1)
  schedule cosine()
}`);
  assert.equal(places(r), ['VDM060@10:3', 'VDM060@11:11', 'VDM060@12:20', 'VDM060@13:16', 'VDM060@14:12', 'VDM060@15:3']);
  assert.is(r.diagnostics[0].hint?.startsWith('entries:'), true);
});

test('VDM061: prediction shape, learned sigma channels, vlb, guidance and temporal terms against the model', () => {
  assert.equal(codes(check(`${MODEL('mean(x, over: t)')}\ndiffusion { predict v }`)), ['VDM061']);
  const sigma = check(`${MODEL()}\ndiffusion { predict epsilon(learned_sigma: true) }`);
  assert.equal(codes(sigma), ['VDM061']);
  assert.match(sigma.diagnostics[0].hint!, /c=8/);
  assert.equal(codes(check(`${MODEL()}\ndiffusion { loss mse + vlb }`)), ['VDM061']);
  assert.equal(codes(check(`${MODEL()}\ndiffusion { guidance cfg(scale: 3) }`)), ['VDM061']);
  assert.equal(codes(check(`${MODEL('x', '  input y : label[b](classes: 10)')}\ndiffusion { guidance cfg() }`)), ['VDM061']);
  graphOf(`${MODEL('x + linear(mean(txt, over: l), 4)', '  input txt : text[b, l = 7, c = 16]')}\ndiffusion { guidance cfg() }`);
  // a droppable condition the output does not depend on: guidance would change nothing
  const unused = check(`${MODEL('x', '  input txt : text[b, l = 7, c = 16]')}\ndiffusion { guidance cfg() }`);
  assert.equal(codes(unused), ['VDM061']);
  assert.match(unused.diagnostics[0].message, /does not depend on it/);
  // temporal_consistency on a one-frame video
  const oneFrame = check(`${MODEL().replace('t = 3', 't = 1')}\ndiffusion { loss mse + temporal_consistency }`);
  assert.equal(codes(oneFrame), ['VDM061']);
  assert.match(oneFrame.diagnostics[0].message, /has t = 1/);
  const image = `model M {\n  dims b = 1\n  input x : image[b, c = 4, h = 8, w = 8]\n  output o = x\n}\n`;
  assert.equal(codes(check(`${image}diffusion { loss temporal_consistency }`)), ['VDM061']);
  const noNoisy = 'model M {\n  dims b = 1\n  input s : timestep[b]\n  output o = s\n}\n';
  assert.equal(codes(check(`${noNoisy}diffusion { predict x0 }`)), ['VDM061']);
});

test('a diffusion section without a model: VDM050', () => {
  assert.equal(codes(check('diffusion { predict v }')), ['VDM050']);
});


test('timesteps: uniform by default (absent from the spec), logit_normal with its settings, out-of-range settings refused', () => {
  assert.is(graphOf(`${MODEL()}\ndiffusion {\n  schedule rectified_flow\n}`).diffusion!.timesteps, undefined);
  assert.is(graphOf(`${MODEL()}\ndiffusion {\n  timesteps uniform\n}`).diffusion!.timesteps, undefined);
  assert.equal(graphOf(`${MODEL()}\ndiffusion {\n  schedule rectified_flow\n  timesteps logit_normal\n}`).diffusion!.timesteps, { kind: 'logit_normal', mean: 0, std: 1 });
  assert.equal(graphOf(`${MODEL()}\ndiffusion {\n  timesteps logit_normal(mean: -0.5, std: 1.5)\n}`).diffusion!.timesteps, { kind: 'logit_normal', mean: -0.5, std: 1.5 });
  const bad = (entry: string) => check(`${MODEL()}\ndiffusion {\n  ${entry}\n}`);
  assert.equal(codes(bad('timesteps logit_normal(std: 0)')), ['VDM060']);
  assert.match(bad('timesteps logit_normal(std: 0)').diagnostics[0].message, /std must be above 0 and at most 10/);
  assert.equal(codes(bad('timesteps logit_normal(mean: 11)')), ['VDM060']);
  assert.equal(codes(bad('timesteps lognormal')), ['VDM060']);
  assert.match(bad('timesteps lognormal').diagnostics[0].hint ?? '', /logit_normal/);
  assert.equal(codes(bad('timesteps logit_normal(sd: 1)')), ['VDM060']);
});

test('rectified flow: the section with its defaults (v, mse, euler 30) and a shift', () => {
  const g = graphOf(`${MODEL()}\ndiffusion {\n  schedule rectified_flow(shift: 3)\n}`);
  assert.equal(g.diffusion, {
    schedule: { kind: 'rectified_flow', steps: 1000, shift: 3 },
    predict: { target: 'v', learned_sigma: false },
    loss: [{ term: 'mse', weight: 1 }],
    sampler: { kind: 'euler', steps: 30 },
    guidance: null,
    noisy_input: 'x',
  });
  assert.equal(codes(check(`${MODEL()}\ndiffusion {\n  schedule rectified_flow(shift: 0)\n}`)), ['VDM060']);
  assert.equal(codes(check(`${MODEL()}\ndiffusion {\n  schedule rectified_flow(steps: 10)\n  sampler euler(steps: 11)\n}`)), ['VDM060']);
});

test('VDM062: rectified flow refuses epsilon/x0, vlb, temporal_consistency, ddpm and ddim; euler needs rectified flow', () => {
  const rf = (body: string) => check(`${MODEL()}\ndiffusion {\n  schedule rectified_flow\n${body}\n}`);
  assert.equal(places(rf('  predict x0')), ['VDM062@11:11']);
  assert.equal(places(rf('  loss mse + 0.1 * temporal_consistency')), ['VDM062@11:3']);
  assert.equal(places(rf('  sampler ddim(steps: 50)')), ['VDM062@11:11']);
  assert.equal(rf('  sampler ddpm').diagnostics[0].hint, 'sampler euler(steps: 30)');
  assert.equal(places(check(`${MODEL()}\ndiffusion {\n  schedule cosine\n  sampler euler(steps: 20)\n}`)), ['VDM062@11:11']);
  assert.equal(codes(rf('  predict v\n  loss mse\n  sampler euler(steps: 30)')), []);
});

test.run();
