// Standard-library options that follow the original implementations: resblock's per-frame
// GroupNorm (an image ResBlock inflated to video), mlp's absolute hidden width, cross_attention
// without its LayerNorm (PixArt / STDiT), and stdit_block (Open-Sora 1.2's STDiT3Block: a shared
// t0 projection plus each block's scale_shift_table). Each against a float64 formulation written
// independently (the frame-by-frame 2D block, the ratio form, the attention written out, t0 read
// as [b, 6, d] plus the table), parameter shapes against the PyTorch modules' and gradients
// against finite differences, with perturbed parameters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Graph } from '../../src/compiler/ir/graph.ts';
import { sizeIn, stridesOf, type NamedTensor } from '../../src/compiler/ir/named-tensor.ts';
import { evaluate, exampleInputs, initParams, liveParams } from '../../src/compiler/reference/evaluate.ts';
import { parameterList } from '../../src/pipeline.ts';
import { expectGradients } from './grad-check.ts';
import { graphOf, paramPaths, paramShape, totalParams } from './helpers.ts';

function get(t: NamedTensor, at: Record<string, number>): number {
  const s = stridesOf(t.axes);
  return t.data[t.axes.reduce((o, [n], i) => o + at[n] * s[i], 0)];
}

const maxAbs = (a: NamedTensor, b: NamedTensor) => {
  assert.equal(a.axes, b.axes);
  return a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i])), 0);
};

/** The model's first output with the given parameters (renamed by `rename` from `params`' names). */
function run(g: Graph, inputs: ReadonlyMap<string, NamedTensor>, params: ReadonlyMap<string, Float64Array>, rename = (p: string) => p): NamedTensor {
  const mine = new Map(paramPaths(g).map((p) => [p, params.get(rename(p))!]));
  for (const [p, v] of mine) assert.ok(v, `no value for ${p}`);
  return evaluate(g, inputs, mine).outputs.get(g.outputs[0].name)!;
}

// ---------------------------------------------------------------- resblock per_frame

const resSpec = (t: number, opts: string) => `import "std/conv.vdm"
model Res {
  dims b = 2, c = 4, t = ${t}, h = 4, w = 4
  input x : video[b, c, t, h, w]
  input s : timestep[b]
  temb = sinusoidal(s, dim: 8)
  output out = resblock(x, temb, out: 6, groups: 2${opts}) as res
}
`;

test('resblock per_frame: each frame is the 2D block run on that frame alone; the default differs; same parameters', () => {
  const video = graphOf(resSpec(3, ', per_frame: true'));
  const plain = graphOf(resSpec(3, ''));
  const image = graphOf(resSpec(1, ''));
  assert.equal(paramPaths(video), paramPaths(plain));
  assert.is(totalParams(video), totalParams(plain));
  const norm1 = video.nodes.find((n) => n.path === 'res.norm1')!;
  assert.equal(norm1.attrs.over, ['h', 'w']);
  assert.equal(plain.nodes.find((n) => n.path === 'res.norm1')!.attrs.over, ['t', 'h', 'w']);
  const inputs = exampleInputs(video, 4);
  // frames on different scales, so statistics over all frames are not those of one frame
  const x = inputs.get('x')!;
  const scaled = { axes: x.axes, data: x.data.map((v, i) => v * (1 + Math.floor(i / 16) % 3) + (Math.floor(i / 16) % 3)) };
  const withX = new Map(inputs).set('x', scaled);
  const params = liveParams(video, 6);
  const got = run(video, withX, params);
  let worst = 0;
  for (let f = 0; f < 3; f++) {
    const frame: NamedTensor = { axes: x.axes.map(([n, s]) => [n, n === 't' ? 1 : s]), data: new Float64Array(2 * 4 * 16) };
    for (let b = 0; b < 2; b++) for (let c = 0; c < 4; c++) for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) {
      frame.data[((b * 4 + c) * 4 + h) * 4 + w] = get(scaled, { b, c, t: f, h, w });
    }
    const one = run(image, new Map(withX).set('x', frame), params);
    for (let b = 0; b < 2; b++) for (let c = 0; c < 6; c++) for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) {
      worst = Math.max(worst, Math.abs(get(got, { b, c, t: f, h, w }) - get(one, { b, c, t: 0, h, w })));
    }
  }
  assert.ok(worst < 1e-12, `per-frame block against the 2D block: ${worst}`);
  assert.ok(maxAbs(run(plain, withX, params), got) > 1e-2, 'statistics over all frames give another result');
});

test('resblock per_frame: gradients against finite differences', () => {
  expectGradients(graphOf(resSpec(2, ', per_frame: true')), 'per-frame resblock', 1e-6, { samples: 20 });
});

// ---------------------------------------------------------------- mlp hidden

const mlpSpec = (opts: string) => `import "std/layers.vdm"
model Mlp {
  dims b = 2, c = 8, t = 2, h = 2, w = 2
  input x : video[b, c, t, h, w]
  output out = mlp(x, ${opts}) as mlp
}
`;

test('mlp hidden: an absolute width (fc1 [d, hidden], fc2 [hidden, d]); hidden: 4d is ratio: 4; gradients', () => {
  const g = graphOf(mlpSpec('hidden: 20'));
  assert.equal(paramShape(g, 'mlp.fc1.weight'), [8, 20]);
  assert.equal(paramShape(g, 'mlp.fc2.weight'), [20, 8]);
  assert.equal(paramShape(graphOf(mlpSpec('hidden: 4096')), 'mlp.fc1.bias'), [4096]);
  const a = graphOf(mlpSpec('hidden: 32')), r = graphOf(mlpSpec('ratio: 4'));
  const inputs = exampleInputs(a, 2), params = liveParams(a, 3);
  assert.is(maxAbs(run(a, inputs, params), run(r, inputs, params)), 0);
  // hidden wins over ratio when both are given
  assert.equal(paramShape(graphOf(mlpSpec('ratio: 2, hidden: 12')), 'mlp.fc1.weight'), [8, 12]);
  expectGradients(g, 'mlp hidden', 1e-6, { samples: 20 });
});

// ---------------------------------------------------------------- cross_attention norm

const crossSpec = (body: string) => `import "std/attention.vdm"
model Cross {
  dims b = 2, c = 8, t = 2, h = 2, w = 3
  input x : video[b, c, t, h, w]
  input txt : text[b, l=3, c=6]
  ${body}
}
`;

test('cross_attention norm: false is x + attention(x, context) with no norm parameters; the default keeps its norm', () => {
  const g = graphOf(crossSpec('output out = cross_attention(x, txt, 2, norm: false) as cross'));
  assert.equal(paramPaths(g), ['cross.attn.q.weight', 'cross.attn.q.bias', 'cross.attn.kv.weight', 'cross.attn.kv.bias', 'cross.attn.proj.weight', 'cross.attn.proj.bias']);
  assert.equal(paramShape(g, 'cross.attn.kv.weight'), [6, 16]);
  const written = graphOf(crossSpec('output out = x + attention(x, over: (t, h, w), heads: 2, context: txt) as attn'));
  const inputs = exampleInputs(g, 5), params = liveParams(g, 7);
  assert.ok(maxAbs(run(written, inputs, params, (p) => `cross.${p}`), run(g, inputs, params)) < 1e-15);
  const normed = graphOf(crossSpec('output out = cross_attention(x, txt, 2) as cross'));
  assert.equal(paramPaths(normed).slice(0, 2), ['cross.norm.weight', 'cross.norm.bias']);
  expectGradients(g, 'cross-attention without norm', 1e-6, { samples: 20 });
});

// ---------------------------------------------------------------- stdit_block

const D = 16;
const stditSpec = `import "std/dit.vdm"
model STDiTBits {
  dims b = 2, c = 4, t = 2, h = 2, w = 3
  input x   : video[b, c, t, h, w]
  input s   : timestep[b]
  input txt : text[b, l=3, c=${D}]
  temb = timestep_embedder(s, ${D}, freq: 32)
  t0 = linear(silu(temb), 6 * ${D}) as t_block
  z = linear(x, ${D})
  z = stdit_block(z, t0, txt, 2) as spatial
  z = stdit_block(z, t0, txt, 2, over: t) as temporal
  output out = linear(z, c)
}
`;

test("stdit_block: STDiT3Block's parameter shapes (qk-norm aside), t_block [d, 6d], the table drawn randn / sqrt(d)", () => {
  const g = graphOf(stditSpec);
  const d = D;
  const want: Record<string, number[]> = {
    'scale_shift_table.weight': [6, d],
    'attn.qkv.weight': [d, 3 * d], 'attn.qkv.bias': [3 * d], 'attn.proj.weight': [d, d], 'attn.proj.bias': [d],
    'cross_attn.q.weight': [d, d], 'cross_attn.q.bias': [d], 'cross_attn.kv.weight': [d, 2 * d], 'cross_attn.kv.bias': [2 * d],
    'cross_attn.proj.weight': [d, d], 'cross_attn.proj.bias': [d],
    'mlp.fc1.weight': [d, 4 * d], 'mlp.fc1.bias': [4 * d], 'mlp.fc2.weight': [4 * d, d], 'mlp.fc2.bias': [d],
  };
  for (const block of ['spatial', 'temporal']) {
    assert.equal(paramPaths(g).filter((p) => p.startsWith(`${block}.`)), Object.keys(want).map((k) => `${block}.${k}`));
    for (const [k, shape] of Object.entries(want)) assert.equal(paramShape(g, `${block}.${k}`), shape, k);
  }
  // per block: PyTorch's count of STDiT3Block without q_norm / k_norm: 6d + (3d^2 + 3d) + (d^2 + d) + cross (d^2 + d + 2d^2 + 2d + d^2 + d) + mlp (8d^2 + 5d)
  const perBlock = 6 * d + 3 * d * d + 3 * d + d * d + d + 4 * d * d + 4 * d + 8 * d * d + 5 * d;
  const blockParams = g.nodes.filter((n) => n.path.startsWith('spatial.')).reduce((s, n) => s + n.params.reduce((t, p) => t + p.shape.reduce((a, b) => a * b, 1), 0), 0);
  assert.is(blockParams, perBlock);
  assert.equal(paramShape(g, 't_block.weight'), [d, 6 * d]);
  const table = g.nodes.flatMap((n) => n.params).find((p) => p.path === 'spatial.scale_shift_table.weight')!;
  assert.is(table.init, 'scaled_normal');
  // drawn with std 1/sqrt(d): 96 draws, sample std within a factor 1.5
  const v = initParams(g, 3).get('spatial.scale_shift_table.weight')!;
  const sd = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  assert.ok(sd > 0.25 / 1.5 && sd < 0.25 * 1.5, `std ${sd}`);
  assert.is(parameterList(g).find((p) => p.path === 'spatial.scale_shift_table.weight')!.distribution, 'normal, std 0.250 (1/sqrt(16))');
});

test('stdit_block: shift, scale and gate are t0 read as [b, 6, d] plus the table, row by row (t2i_modulate on the normed x)', () => {
  const g = graphOf(stditSpec);
  const inputs = exampleInputs(g, 8), params = liveParams(g, 9);
  const ev = evaluate(g, inputs, params);
  const t0 = ev.values[g.nodes.find((n) => n.path === 't_block')!.id];
  assert.equal(t0.axes, [['b', 2], ['c', 6 * D]]);
  for (const block of ['spatial', 'temporal']) {
    const table = params.get(`${block}.scale_shift_table.weight`)!;
    const parts = g.nodes.filter((n) => n.op === 'split' && n.path.startsWith(`${block}`) && sizeIn(n.axes, 'c') === D);
    assert.is(parts.length, 6);
    parts.sort((a, b) => Number(a.attrs.index) - Number(b.attrs.index)).forEach((n, k) => {
      const v = ev.values[n.id];
      for (let b = 0; b < 2; b++) for (let j = 0; j < D; j++) {
        const want = t0.data[b * 6 * D + k * D + j] + table[k * D + j];
        assert.ok(Math.abs(get(v, { b, c: j }) - want) < 1e-15, `${block} part ${k} b=${b} c=${j}`);
      }
    });
  }
  // the first modulate reads norm1(x) * (1 + scale_msa) + shift_msa: the output moves with the table
  const moved = new Map(params);
  moved.set('spatial.scale_shift_table.weight', params.get('spatial.scale_shift_table.weight')!.map((x, i) => (i < D ? x + 0.5 : x)));
  assert.ok(maxAbs(evaluate(g, inputs, moved).outputs.get('out')!, ev.outputs.get('out')!) > 1e-3);
});

test('stdit_block: gradients of every parameter (the table included) and inputs against finite differences', () => {
  const g = graphOf(stditSpec.replace('t = 2, h = 2, w = 3', 't = 2, h = 2, w = 2'));
  const r = expectGradients(g, 'stdit blocks', 1e-6, { samples: 4, maxTensors: 40 });
  assert.ok(r.compared >= 100, `${r.compared} entries compared`);
});

test.run();
