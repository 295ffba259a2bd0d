// Reverse-mode gradients of conv, pool, upsample, patchify and unpatchify against central finite
// differences: every attribute, axis orders other than x's, h != w, odd sizes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PRIMITIVES } from '../../src/compiler/primitives/index.ts';
import type { Primitive, VjpCall } from '../../src/compiler/primitives/types.ts';
import { expectGradients, gradientCheck } from './grad-check.ts';
import { graphOf, model } from './helpers.ts';

/** A graph whose loss depends on `op` (an expression over z = linear(x, ...)) non-linearly. */
const around = (op: string, dims: string, zc = 3) => graphOf(model([
  `  z = linear(x, ${zc})`,
  `  y = ${op}`,
  '  output o = y * y + y',
].join('\n'), '', dims));

// ---------------------------------------------------------------- conv

test('conv over (t, h, w), kernel 3x3x3, padding 1', () => {
  const g = around('conv(z, over: (t, h, w), kernel: 3, padding: 1, out: 2)', 'b = 1, c = 2, t = 2, h = 3, w = 4');
  expectGradients(g, 'conv 3d', 1e-6, { samples: 40 });
});

test('conv over (h, w) with stride 2, odd sizes, h != w', () => {
  const g = around('conv(z, over: (h, w), kernel: 3, stride: 2, padding: 1, out: 3)', 'b = 2, c = 2, t = 1, h = 5, w = 7');
  expectGradients(g, 'conv stride 2', 1e-6, { samples: 40 });
  const h = around('conv(z, over: (h, w), kernel: (h: 2, w: 3), stride: (h: 2, w: 3), padding: (h: 0, w: 1), out: 2)', 'b = 1, c = 2, t = 2, h = 5, w = 7');
  expectGradients(h, 'conv stride (2, 3)', 1e-6, { samples: 40 });
});

test('conv over t with dilation, "same" and explicit padding', () => {
  const g = around('conv(z, over: t, kernel: 3, dilation: 2)', 'b = 1, c = 2, t = 6, h = 2, w = 3');
  expectGradients(g, 'conv dilated t', 1e-6, { samples: 40 });
  const h = around('conv(z, over: t, kernel: 2, dilation: 3, stride: 2, padding: (t: 1), out: 2)', 'b = 1, c = 2, t = 7, h = 1, w = 2');
  expectGradients(h, 'conv dilated strided t', 1e-6, { samples: 40 });
});

test('conv with groups and depthwise', () => {
  const g = around('conv(z, over: (h, w), kernel: (h: 3, w: 2), out: 6, padding: (h: 1, w: 0), dilation: (h: 1, w: 2), groups: 2)',
    'b = 1, c = 2, t = 1, h = 3, w = 4', 4);
  expectGradients(g, 'conv groups 2', 1e-6, { samples: 40 });
  const d = around('conv(z, over: t, kernel: 3, groups: 4)', 'b = 2, c = 2, t = 3, h = 2, w = 3', 4);
  expectGradients(d, 'conv depthwise t', 1e-6, { samples: 40 });
  const d2 = around('conv(z, over: (h, w), kernel: 3, out: 8, groups: 4, bias: false)', 'b = 1, c = 2, t = 1, h = 3, w = 4', 4);
  expectGradients(d2, 'conv depthwise (h, w), channel multiplier 2', 1e-6, { samples: 40 });
});

test('conv over (w, h) reversed and (h, t): weight kernel axes in the order of over', () => {
  const g = around('conv(z, over: (w, h), kernel: (w: 3, h: 2), stride: (w: 2, h: 1), padding: "valid", bias: false)',
    'b = 1, c = 2, t = 2, h = 3, w = 5');
  expectGradients(g, 'conv over (w, h)', 1e-6, { samples: 40 });
  const h = around('conv(z, over: (h, t), kernel: (h: 3, t: 2), padding: (h: 1, t: 1), out: 2)', 'b = 1, c = 2, t = 2, h = 3, w = 2');
  expectGradients(h, 'conv over (h, t)', 1e-6, { samples: 40 });
});

test('conv: a chained pair (stride 2 then a 3x3), so dx of the second feeds the first', () => {
  const g = graphOf(model([
    '  a = conv(x, over: (h, w), kernel: 3, stride: 2, out: 3)',
    '  output o = tanh(conv(a, over: (h, w), kernel: 3, out: 2))',
  ].join('\n'), '', 'b = 1, c = 2, t = 1, h = 5, w = 6'));
  expectGradients(g, 'conv chain', 1e-6, { samples: 40 });
});

// ---------------------------------------------------------------- pool

for (const mode of ['avg', 'max']) {
  test(`pool ${mode}: per-axis kernel (h != w), a bare kernel, and t alone`, () => {
    expectGradients(around(`pool(z, kernel: (h: 2, w: 3), mode: "${mode}")`, 'b = 2, c = 2, t = 1, h = 4, w = 6'),
      `pool ${mode} (h: 2, w: 3)`, 1e-6, { samples: 40 });
    expectGradients(around(`pool(z, kernel: 2, mode: "${mode}")`, 'b = 1, c = 2, t = 2, h = 2, w = 4'),
      `pool ${mode} 2`, 1e-6, { samples: 40 });
    expectGradients(around(`pool(z, kernel: (w: 2, t: 3), mode: "${mode}")`, 'b = 1, c = 2, t = 3, h = 1, w = 4'),
      `pool ${mode} (w: 2, t: 3)`, 1e-6, { samples: 40 });
  });
}

// ---------------------------------------------------------------- upsample

for (const mode of ['nearest', 'linear']) {
  test(`upsample ${mode}: per-axis factors (h != w), a bare factor, like: y`, () => {
    expectGradients(around(`upsample(z, factor: (t: 2, h: 3, w: 2), mode: "${mode}")`, 'b = 1, c = 2, t = 2, h = 2, w = 3'),
      `upsample ${mode} (t: 2, h: 3, w: 2)`, 1e-6, { samples: 40 });
    expectGradients(around(`upsample(z, factor: 2, mode: "${mode}")`, 'b = 2, c = 1, t = 1, h = 3, w = 2'),
      `upsample ${mode} 2`, 1e-6, { samples: 40 });
    expectGradients(around(`upsample(z, factor: (w: 4, h: 2), mode: "${mode}")`, 'b = 1, c = 2, t = 1, h = 2, w = 3'),
      `upsample ${mode} (w: 4, h: 2)`, 1e-6, { samples: 40 });
    const g = graphOf(model([
      '  z = linear(x, 2)',
      '  s = pool(z, kernel: (h: 2, w: 2))',
      `  y = upsample(s, like: z, mode: "${mode}")`,
      '  output o = y * z',
    ].join('\n'), '', 'b = 1, c = 2, t = 1, h = 4, w = 6'));
    expectGradients(g, `upsample ${mode} like: z`, 1e-6, { samples: 40 });
  });
}

// ---------------------------------------------------------------- patchify, unpatchify

for (const patch of ['(t: 1, h: 2, w: 2)', '(t: 2, h: 2, w: 2)', '(w: 2, h: 3)']) {
  test(`patchify and unpatchify, patch ${patch}`, () => {
    const dims = 'b = 2, c = 2, t = 2, h = 6, w = 4';
    expectGradients(graphOf(model([
      '  z = linear(x, 3)',
      `  output o = linear(patchify(z, patch: ${patch}) * patchify(tanh(z), patch: ${patch}), 2)`,
    ].join('\n'), '', dims)), `patchify ${patch}`, 1e-6, { samples: 40 });
    const volume = { '(t: 1, h: 2, w: 2)': 4, '(t: 2, h: 2, w: 2)': 8, '(w: 2, h: 3)': 6 }[patch]!;
    expectGradients(graphOf(model([
      `  z = linear(x, ${2 * volume})`,
      `  output o = linear(unpatchify(z, patch: ${patch}) * unpatchify(tanh(z), patch: ${patch}), 3)`,
    ].join('\n'), '', 'b = 1, c = 2, t = 2, h = 3, w = 2')), `unpatchify ${patch}`, 1e-6, { samples: 40 });
  });
}

// ---------------------------------------------------------------- the check itself

test('the check fails when a backward rule here is wrong', () => {
  const cases: [string, string, string, (r: ReturnType<NonNullable<Primitive['vjp']>>) => void][] = [
    ['conv', 'conv(z, over: (h, w), kernel: 3, stride: 2, out: 2)', 'b = 1, c = 2, t = 1, h = 3, w = 5',
      (r) => { r.params!.get('weight')![1] *= 1.01; }],
    ['pool', 'pool(z, kernel: (h: 2, w: 2), mode: "max")', 'b = 1, c = 2, t = 1, h = 2, w = 4',
      (r) => { r.inputs[0]!.data[0] += 0.1; }],
    ['upsample', 'upsample(z, factor: (w: 2), mode: "linear")', 'b = 1, c = 2, t = 1, h = 2, w = 3',
      (r) => { r.inputs[0]!.data[1] *= 1.01; }],
    ['patchify', 'patchify(z, patch: (h: 2, w: 2))', 'b = 1, c = 2, t = 1, h = 2, w = 4',
      (r) => { const d = r.inputs[0]!.data; [d[0], d[1]] = [d[1], d[0]]; }],
  ];
  for (const [name, op, dims, spoil] of cases) {
    const g = around(op, dims);
    const prim = PRIMITIVES.get(name)! as { vjp?: (c: VjpCall) => ReturnType<NonNullable<Primitive['vjp']>> };
    const right = prim.vjp!;
    try {
      prim.vjp = (c) => { const r = right(c); spoil(r); return r; };
      assert.ok(gradientCheck(g, { samples: 1000 }).worst > 1e-4, `${name}: a spoiled rule passes`);
    } finally {
      prim.vjp = right;
    }
    assert.ok(gradientCheck(g, { samples: 1000 }).worst < 1e-6, name);
  }
});

test.run();
