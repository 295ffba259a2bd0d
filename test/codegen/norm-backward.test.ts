import { test } from 'uvu';
import { gpuTest } from '../gpu.ts';
import * as assert from 'uvu/assert';
import { groupNormView, normLanesFor, normReference } from '../../src/codegen/kernels/norm.ts';
import {
  normBackwardReference, normParamsBackwardKernel, normRowsBackwardKernel, sumToViewKernel, sumToViewParams, sumToViewReference,
  type NormBackwardOutputs, type NormBackwardParams,
} from '../../src/codegen/kernels/norm-backward.ts';
import type { KernelSpec } from '../../src/codegen/kernels/kernel.ts';
import { alongAxes, contiguous, extent, numel, permute, type View } from '../../src/codegen/kernels/view.ts';
import { openGpu } from '../../src/runtime/gpu.ts';
import { runKernel } from '../runtime/kernels.ts';
import { expectMatches, rand, randomArray, seed } from './ref-check.ts';

type Name = 'x' | 'dy' | 'weight' | 'bias' | 'scale' | 'shift';
type Data = Partial<Record<Name, Float32Array>>;
const INPUTS: Name[] = ['x', 'dy', 'weight', 'bias', 'scale', 'shift'];
const OUTPUTS = ['dx', 'stats', 'dweight', 'dbias', 'dscale', 'dshift'] as const;

/** Host arguments in the kernel's binding order: inputs from `bufs`, outputs as element counts. */
function argsFor(spec: KernelSpec, p: NormBackwardParams, bufs: Record<string, Float32Array>) {
  return spec.bindings.map((b) => (b.access === 'read_write' ? extent(p[b.name as (typeof OUTPUTS)[number]]!) : bufs[b.name]));
}

const rowCount = (p: NormBackwardParams) => numel(p.x.shape.slice(0, p.x.shape.length - p.normalizedAxes));

/**
 * Runs the row kernel (dx, stats) and, where gradients are requested, the parameter kernel on the
 * GPU's stats; each output against normBackwardReference. Also the subgroup row kernel, where the adapter has one.
 */
async function check(p0: NormBackwardParams, what: string, data: Data = {}) {
  const p: NormBackwardParams = { stats: contiguous([rowCount(p0), 3]), ...p0 };
  for (const k of INPUTS) if (p[k]) data[k] ??= randomArray(extent(p[k]!), -2, 2);
  const ref = normBackwardReference(p, data as Data & { x: Float32Array; dy: Float32Array });
  const rowsSpec = normRowsBackwardKernel(p);
  const rowOuts = rowsSpec.bindings.filter((b) => b.access === 'read_write').map((b) => b.name as 'dx' | 'stats');
  const got = await expectMatches(rowsSpec, argsFor(rowsSpec, p, data as Record<string, Float32Array>), rowOuts.map((k) => ref[k]!), `${what} rows`);
  const stats = got[rowOuts.indexOf('stats')];
  const lanes = normLanesFor(await openGpu());
  if (lanes && p.workgroupSize === undefined) {
    await expectMatches(normRowsBackwardKernel({ ...p, subgroupLanes: lanes }), argsFor(rowsSpec, p, data as Record<string, Float32Array>),
      rowOuts.map((k) => ref[k]!), `${what} rows [subgroup ${lanes}]`);
  }
  const grads = (['dweight', 'dbias', 'dscale', 'dshift'] as const).filter((g) => p[g]);
  let params: Float32Array[] = [];
  if (grads.length) {
    const spec = normParamsBackwardKernel(p);
    params = await expectMatches(spec, argsFor(spec, p, { ...data, stats } as Record<string, Float32Array>), grads.map((g) => ref[g]!), `${what} params`);
  }
  return { ref, got, params, p, data };
}

// ---------------------------------------------------------------- finite differences

/**
 * The references' gradients against central differences of loss = Σ dy · y through normReference,
 * for every element of each parameter buffer and a sample of x. Buffers shared by several operands
 * (scale and shift chunks of one projection) get the sum of their gradients.
 */
function finiteDifferences(p: NormBackwardParams, data: Record<Name, Float64Array>, what: string) {
  const shape = p.x.shape;
  const y = contiguous(shape);
  const dyAt = (flat: number) => {
    let r = flat, o = p.dy.offset;
    for (let a = shape.length - 1; a >= 0; a--) { o += (r % shape[a]) * p.dy.strides[a]; r = Math.floor(r / shape[a]); }
    return data.dy[o];
  };
  const loss = () => {
    const out = normReference({ ...p, y }, data);
    let s = 0;
    for (let i = 0; i < numel(shape); i++) s += dyAt(i) * out[i];
    return s;
  };
  const ref = normBackwardReference(p, data);
  const gradOf: Record<string, keyof NormBackwardOutputs> = { x: 'dx', weight: 'dweight', bias: 'dbias', scale: 'dscale', shift: 'dshift' };
  const buffers = new Set((['x', 'weight', 'bias', 'scale', 'shift'] as const).filter((k) => p[k]).map((k) => data[k]));
  for (const buf of buffers) {
    const analytic = (j: number) => (['x', 'weight', 'bias', 'scale', 'shift'] as const)
      .filter((k) => p[k] && data[k] === buf)
      .reduce((s, k) => { const v = ref[gradOf[k]]?.[j]; return s + (v === undefined || Number.isNaN(v) ? 0 : v); }, 0);
    const picks = buf === data.x ? Array.from({ length: 12 }, () => Math.floor(rand() * buf.length)) : [...buf.keys()];
    const scale = Math.sqrt(picks.reduce((s, j) => s + analytic(j) ** 2, 0) / picks.length);
    for (const j of picks) {
      const h = 1e-5, keep = buf[j];
      buf[j] = keep + h; const up = loss();
      buf[j] = keep - h; const down = loss();
      buf[j] = keep;
      const fd = (up - down) / (2 * h);
      const err = Math.abs(fd - analytic(j)) / (Math.abs(fd) + 1e-3 * scale);
      assert.ok(err < 1e-5, `${what}: element ${j}: finite difference ${fd} vs reference ${analytic(j)} (replay: VDM_TEST_SEED=${seed})`);
    }
  }
}

const rand64 = (n: number, lo = -1.5, hi = 1.5) => Float64Array.from({ length: n }, () => lo + (hi - lo) * rand());

test('the float64 backward references agree with finite differences of normReference', () => {
  // layer norm, affine, and a per-batch modulation whose scale and shift are chunks of one [B, 2C] buffer
  const [B, N, C] = [2, 3, 6];
  const shape = [B, N, C];
  const perBatch = (offset: number): View => ({ shape, strides: [2 * C, 0, 1], offset });
  const projection = rand64(B * 2 * C);
  const layer: NormBackwardParams = {
    kind: 'layer', x: contiguous(shape), dy: contiguous(shape), dx: contiguous(shape), normalizedAxes: 1, eps: 1e-3,
    weight: alongAxes(shape, [2]), bias: alongAxes(shape, [2]), scale: perBatch(C), shift: perBatch(0),
    dweight: alongAxes(shape, [2]), dbias: alongAxes(shape, [2]), dscale: perBatch(C), dshift: perBatch(0),
  };
  const d = (n: number) => rand64(n);
  finiteDifferences(layer, { x: d(B * N * C), dy: d(B * N * C), weight: d(C), bias: d(C), scale: projection, shift: projection }, 'layer + adaLN');
  // group norm (3 groups) over a channel-first tensor, per-channel affine
  const g = groupNormView(contiguous([2, 6, 2, 3]), 1, 3);
  const group: NormBackwardParams = {
    kind: 'group', x: g.view, dy: g.view, dx: g.view, normalizedAxes: g.normalizedAxes, eps: 1e-4,
    weight: g.perChannel(), bias: g.perChannel(), dweight: g.perChannel(), dbias: g.perChannel(),
  };
  finiteDifferences(group, { x: d(72), dy: d(72), weight: d(6), bias: d(6), scale: d(0), shift: d(0) }, 'group');
  // rms with weight and a per-row modulation (its gradient sums over the normalised axis)
  const rmsShape = [4, 5];
  const rms: NormBackwardParams = {
    kind: 'rms', x: contiguous(rmsShape), dy: contiguous(rmsShape), dx: contiguous(rmsShape), normalizedAxes: 1, eps: 1e-2,
    weight: alongAxes(rmsShape, [1]), scale: alongAxes(rmsShape, [0]), shift: alongAxes(rmsShape, [0], 4),
    dweight: alongAxes(rmsShape, [1]), dscale: alongAxes(rmsShape, [0]), dshift: alongAxes(rmsShape, [0], 4),
  };
  const mod = d(8);
  finiteDifferences(rms, { x: d(20), dy: d(20), weight: d(5), bias: d(0), scale: mod, shift: mod }, 'rms');
});

gpuTest('layernorm over [B, N, C] with weight and bias: dx, dweight and dbias (sums over B and N)', async () => {
  const shape = [2, 37, 48];
  const x = Float32Array.from(randomArray(numel(shape), -2, 2), (v, i) => v * (1 + (i % 5)) + (i % 7)); // uneven rows
  const c = alongAxes(shape, [2]);
  const { got } = await check({
    kind: 'layer', x: contiguous(shape), dy: contiguous(shape), dx: contiguous(shape), normalizedAxes: 1, eps: 1e-6,
    weight: c, bias: c, dweight: c, dbias: c,
  }, 'layernorm affine', { x });
  // the stats row kernel stores (pivot = first element of the row, mean of x - pivot, rstd)
  assert.is(got[1][3], x[48], 'pivot of row 1');
});

gpuTest('DiT adaLN: per-batch scale and shift broadcast over tokens get [B, C] gradients', async () => {
  const [B, N, C] = [3, 19, 24];
  const shape = [B, N, C];
  const perBatch = (offset: number): View => ({ shape, strides: [6 * C, 0, 1], offset }); // chunks of a [B, 6C] projection
  const projection = randomArray(B * 6 * C);
  const { params } = await check({
    kind: 'layer', x: contiguous(shape), dy: contiguous(shape), dx: contiguous(shape), normalizedAxes: 1, eps: 1e-6,
    scale: perBatch(C), shift: perBatch(0), dscale: perBatch(C), dshift: perBatch(0),
  }, 'adaLN', { scale: projection, shift: projection });
  assert.ok(Number.isNaN(params[0][0]) && Number.isNaN(params[1][C]), 'each gradient writes its own chunk only');
});

gpuTest('groupnorm (4 groups) channel-first with affine; the per-channel sums by both strategies', async () => {
  const shape = [2, 12, 3, 5, 7];
  const g = groupNormView(contiguous(shape), 1, 4);
  const weight = randomArray(24), bias = weight; // weight and bias at offsets 0 and 12 of one buffer
  const base: NormBackwardParams = {
    kind: 'group', x: g.view, dy: g.view, dx: g.view, normalizedAxes: g.normalizedAxes, eps: 1e-5,
    weight: g.perChannel(0), bias: g.perChannel(12), dweight: g.perChannel(0), dbias: g.perChannel(0), stats: contiguous([8, 3]),
  };
  for (const strategy of ['thread', 'workgroup'] as const) {
    const p = { ...base, strategy };
    assert.is(/workgroup_sum/.test(normParamsBackwardKernel(p).wgsl), strategy === 'workgroup');
    await check(p, `groupnorm ${strategy}`, { weight, bias });
  }
});

gpuTest('groupnorm channel-last and rmsnorm of a permuted view with weight and per-row modulation', async () => {
  const g = groupNormView(contiguous([2, 3, 4, 5, 8]), 4, 2); // B, T, H, W, C: each group strided in memory
  await check({
    kind: 'group', x: g.view, dy: g.view, dx: g.view, normalizedAxes: g.normalizedAxes, eps: 1e-5,
    weight: g.perChannel(), dweight: g.perChannel(),
  }, 'groupnorm channel-last');
  const [B, C, H, W] = [2, 20, 3, 5];
  const x = permute(contiguous([B, C, H, W]), [0, 2, 3, 1]); // [B, H, W, C] over channel-first memory
  const rows = alongAxes(x.shape, [0, 1, 2]);
  await check({
    kind: 'rms', x, dy: contiguous(x.shape), dx: x, normalizedAxes: 1, eps: 1e-6,
    weight: alongAxes(x.shape, [3]), scale: rows, shift: rows,
    dweight: alongAxes(x.shape, [3]), dscale: rows, dshift: rows,
  }, 'rmsnorm permuted');
});

gpuTest('every option, rows longer than the workgroup (300), one row, and a stats-only row pass', async () => {
  const shape = [7, 5];
  const [ch, rw] = [alongAxes(shape, [1]), alongAxes(shape, [0])];
  const full: NormBackwardParams = {
    kind: 'layer', x: contiguous(shape), dy: contiguous(shape), dx: contiguous(shape), normalizedAxes: 1, eps: 1e-3,
    weight: ch, bias: ch, scale: rw, shift: rw, dweight: ch, dbias: ch, dscale: rw, dshift: rw,
  };
  await check(full, 'all options');
  const long = [3, 300];
  await check({ ...full, x: contiguous(long), dy: contiguous(long), dx: contiguous(long), weight: alongAxes(long, [1]), bias: undefined, scale: undefined, shift: undefined,
    dweight: alongAxes(long, [1]), dbias: undefined, dscale: undefined, dshift: undefined }, 'long rows');
  await check({ ...full, workgroupSize: 256, normalizedAxes: 2, weight: contiguous(shape), dweight: contiguous(shape), dscale: undefined, dshift: undefined,
    scale: undefined, shift: undefined, dbias: alongAxes(shape, [1]) }, 'whole tensor one row');
  const statsOnly = normRowsBackwardKernel({ ...full, dx: undefined, stats: contiguous([7, 3]) });
  assert.equal(statsOnly.bindings.map((b) => b.name), ['x', 'stats']);
});

gpuTest('the kernels are deterministic: two runs give the same bits', async () => {
  const shape = [5, 130];
  const c = alongAxes(shape, [1]);
  const p: NormBackwardParams = { kind: 'layer', x: contiguous(shape), dy: contiguous(shape), dx: contiguous(shape), normalizedAxes: 1, eps: 1e-5,
    stats: contiguous([5, 3]), weight: c, dweight: c, strategy: 'workgroup' };
  const bufs = { x: randomArray(650), dy: randomArray(650), weight: randomArray(130) };
  const rows = normRowsBackwardKernel(p);
  const [dx1, stats] = await runKernel(rows, argsFor(rows, p, bufs));
  const [dx2] = await runKernel(rows, argsFor(rows, p, bufs));
  const params = normParamsBackwardKernel(p);
  const [dw1] = await runKernel(params, argsFor(params, p, { ...bufs, stats }));
  const [dw2] = await runKernel(params, argsFor(params, p, { ...bufs, stats }));
  assert.equal([...dx1], [...dx2]);
  assert.equal([...dw1], [...dw2]);
});

gpuTest('a deliberately wrong kernel fails the comparison', async () => {
  const shape = [4, 33];
  const c = alongAxes(shape, [1]), r = alongAxes(shape, [0]);
  const p: NormBackwardParams = { kind: 'layer', x: contiguous(shape), dy: contiguous(shape), dx: contiguous(shape), normalizedAxes: 1, eps: 1e-5,
    stats: contiguous([4, 3]), weight: c, scale: r, shift: r, dscale: r };
  const bufs = { x: randomArray(132), dy: randomArray(132), weight: randomArray(33), scale: randomArray(4), shift: randomArray(4) };
  const ref = normBackwardReference(p, bufs);
  const rows = normRowsBackwardKernel(p);
  const [, stats] = await runKernel(rows, argsFor(rows, p, bufs));
  // mutations under new keys (the runtime caches pipelines by key)
  const noMean = { ...rows, key: `wrong ${rows.key}`, wgsl: rows.wgsl.replace(' - mg - xh', ' - xh') }; // dx without mean(g)
  const params = normParamsBackwardKernel(p);
  const wrongScale = { ...params, key: `wrong ${params.key}`, wgsl: params.wgsl.replace(' * b_weight[', ' + b_weight[') }; // x̂ + weight
  assert.is.not(noMean.wgsl, rows.wgsl);
  assert.is.not(wrongScale.wgsl, params.wgsl);
  const rejected = (run: Promise<unknown>) => run.then(() => false, (e: Error) => /relative error/.test(e.message));
  assert.ok(await rejected(expectMatches(noMean, argsFor(rows, p, bufs), [ref.dx!, ref.stats], 'dx without mean(g)')), 'dx without mean(g) passed');
  assert.ok(await rejected(expectMatches(wrongScale, argsFor(params, p, { ...bufs, stats }), [ref.dscale!], 'wrong dscale')), 'wrong dscale passed');
  // and the real kernels pass the same judge on the same inputs
  await expectMatches(params, argsFor(params, p, { ...bufs, stats }), [ref.dscale!], 'dscale');
});

gpuTest('sum to a broadcast view through reduce.ts: size-1 axes, stride-0 axes, a strided target', async () => {
  const shape = [3, 5, 70];
  const dy = contiguous(shape);
  const data = randomArray(numel(shape));
  const targets: [string, View][] = [
    ['size-1 axes', contiguous([1, 5, 1])],
    ['stride 0 over tokens', { shape, strides: [140, 0, 1], offset: 70 }],
    ['transposed, no broadcast', permute(contiguous([70, 5, 3]), [2, 1, 0])],
    ['scalar', { shape, strides: [0, 0, 0], offset: 2 }],
  ];
  for (const [what, target] of targets) {
    for (const strategy of ['thread', 'workgroup'] as const) {
      await expectMatches(sumToViewKernel(dy, target, { strategy }), [data, extent(target)], [sumToViewReference(dy, target, data)], `${what} ${strategy}`);
    }
  }
  assert.equal(sumToViewParams(dy, targets[1][1]).axes, [1]);
  // the reference is the plain sum: the scalar target holds the total
  const total = data.reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(sumToViewReference(dy, targets[3][1], data)[2] - total) < 1e-9);
});

test('bad parameters fail with clear messages', () => {
  const v = contiguous([4, 6]);
  const base: NormBackwardParams = { kind: 'layer', x: v, dy: v, dx: v, normalizedAxes: 1, eps: 1e-5 };
  assert.throws(() => normRowsBackwardKernel({ ...base, scale: v }), /both scale and shift/);
  assert.throws(() => normRowsBackwardKernel({ ...base, dweight: alongAxes([4, 6], [1]) }), /dweight without a forward weight/);
  assert.throws(() => normRowsBackwardKernel({ ...base, stats: contiguous([4, 2]) }), /expected \[4, 3\]/);
  assert.throws(() => normRowsBackwardKernel({ ...base, dx: alongAxes([4, 6], [1]) }), /dx cannot broadcast/);
  assert.throws(() => normRowsBackwardKernel({ ...base, dx: { shape: [4, 6], strides: [2, 1], offset: 0 } }), /addresses one element more than once/);
  assert.throws(() => normRowsBackwardKernel({ ...base, dx: undefined }), /nothing to write/);
  const w = alongAxes([4, 6], [1]);
  assert.throws(() => normParamsBackwardKernel({ ...base, weight: w, dweight: w }), /give stats/);
  assert.throws(() => normParamsBackwardKernel(base), /no gradient requested/);
  assert.throws(() => normRowsBackwardKernel({ ...base, workgroupSize: 48 }), /power of two/);
  assert.throws(() => sumToViewParams(v, { shape: [4, 6], strides: [1, 1], offset: 0 }), /more than once/);
});

test.run();
