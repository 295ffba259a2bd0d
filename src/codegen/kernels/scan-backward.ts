/**
 * Backpropagation through time over the GRU scan of scan.ts: every batch row in parallel, the steps
 * in the opposite order of the forward scan. For the step at t (state before it hp = hprev[t]):
 *   recomputed: a = W_hh hp + b_hh, r = sigmoid(xr + a_r), z = sigmoid(xz + a_z), n = tanh(xn + r a_n)
 *   d = dy[t] + (carried from the later step)
 *   dz = d (hp - n) z (1 - z)   dn = d (1 - z) (1 - n^2)   dr = dn a_n r (1 - r)
 *   dxp[t] = dr | dz | dn        dhp[t] = dr | dz | dn r     (d of W_ih x + b_ih, d of W_hh hp + b_hh)
 *   carried to the earlier step: d z + W_hh^T dhp[t]
 * The weight gradients are not summed here (that would need atomics or a per-row copy of W_hh):
 * dW_hh = sum over rows and steps of dhp^T hprev and db_hh = sum of dhp are one GEMM and one
 * reduction over the (row, step) pairs, and dxp feeds the input projection's backward the same way.
 *
 * Parameters (GruScanBackwardParams):
 * - hidden: H; axis: the scanned lead axis (the others are batch rows); reverse: as the forward scan.
 * - xp: view [...lead, 3H], the input projections (r|z|n), as the forward scan read them.
 * - hprev: view [...lead, H], the state each step started from: h at the previous scanned step, h0
 *   (or zeros) at the first. Given rather than rebuilt from h so that h0 costs no extra binding and
 *   the dW_hh GEMM reads the same buffer.
 * - dy: view [...lead, H], d loss / d h at every step.
 * - dxp, dhp: views [...lead, 3H] written.
 * - dh0: optional view [...batch lead axes, H] written: d loss / d (the state before the first scanned step).
 * - workgroupSize: invocations per batch row; invocation i owns units i, i + workgroupSize, ...
 * One workgroup per batch row; hp, the carried gradient and dhp of the step live in workgroup memory,
 * two barriers per step. Bindings in order: xp, whh ([3H, H] row-major), bhh ([3H]), hprev, dy, dxp,
 * dhp, [dh0]: at most 8 storage buffers, WebGPU's default limit.
 */
import { FUNCTIONS } from './functions.ts';
import type { KernelSpec } from './kernel.ts';
import { gruRowKernel } from './scan.ts';
import { extent, type View } from './view.ts';

export interface GruScanBackwardParams {
  hidden: number;
  axis: number;
  xp: View;
  hprev: View;
  dy: View;
  dxp: View;
  dhp: View;
  dh0?: View;
  reverse?: boolean;
  workgroupSize?: number;
}

function fail(msg: string): never { throw new Error(`gru scan backward: ${msg}`); }

type Lead = 'xp' | 'hprev' | 'dy' | 'dxp' | 'dhp';
const LEAD: readonly Lead[] = ['xp', 'hprev', 'dy', 'dxp', 'dhp'];

interface Plan {
  H: number; T: number; rows: number;
  /** per batch lead axis: its size and its stride in every view (dh0: 0 when absent) */
  batch: { size: number; strides: Record<Lead | 'dh0', number> }[];
  /** per view: stride along the scan axis and along the gate/unit axis */
  step: Record<Lead, number>; unit: Record<Lead | 'dh0', number>;
}

function checkShape(v: View, want: readonly number[], what: string): void {
  if (!v || v.shape.length !== want.length || v.shape.some((s, i) => s !== want[i])) {
    fail(`${what} has shape [${v?.shape}] but [${want}] is required`);
  }
}

function plan(p: GruScanBackwardParams): Plan {
  const H = p.hidden;
  if (!Number.isInteger(H) || H < 1) fail(`hidden size must be a positive integer, got ${H}`);
  if (p.xp.shape.at(-1) !== 3 * H) fail(`xp's last axis must be 3 * hidden = ${3 * H}, got ${p.xp.shape.at(-1)}`);
  const lead = p.xp.shape.slice(0, -1);
  if (!Number.isInteger(p.axis) || p.axis < 0 || p.axis >= lead.length) fail(`axis ${p.axis} is not a lead axis of xp [${p.xp.shape}]`);
  for (const k of LEAD) checkShape(p[k], [...lead, k === 'hprev' || k === 'dy' ? H : 3 * H], k);
  const batchIdx = lead.map((_, i) => i).filter((i) => i !== p.axis);
  if (p.dh0) checkShape(p.dh0, [...batchIdx.map((i) => lead[i]), H], 'dh0');
  const pick = (f: (v: View) => number) => Object.fromEntries(LEAD.map((k) => [k, f(p[k])])) as Record<Lead, number>;
  return {
    H, T: lead[p.axis], rows: batchIdx.reduce((a, i) => a * lead[i], 1),
    batch: batchIdx.map((i, j) => ({ size: lead[i], strides: { ...pick((v) => v.strides[i]), dh0: p.dh0 ? p.dh0.strides[j] : 0 } })),
    step: pick((v) => v.strides[p.axis]),
    unit: { ...pick((v) => v.strides.at(-1)!), dh0: p.dh0 ? p.dh0.strides.at(-1)! : 0 },
  };
}

/** Element offset of every view's first element in batch row `row` (last batch axis fastest). */
function rowBase(pl: Plan, p: GruScanBackwardParams, row: number): Record<Lead | 'dh0', number> {
  const base = { ...Object.fromEntries(LEAD.map((k) => [k, p[k].offset])), dh0: p.dh0?.offset ?? 0 } as Record<Lead | 'dh0', number>;
  for (let i = pl.batch.length - 1; i >= 0; i--) {
    const b = pl.batch[i], c = row % b.size;
    row = Math.floor(row / b.size);
    for (const k of [...LEAD, 'dh0'] as const) base[k] += c * b.strides[k];
  }
  return base;
}

export interface GruBackwardInputs {
  xp: ArrayLike<number>; whh: ArrayLike<number>; bhh: ArrayLike<number>; hprev: ArrayLike<number>; dy: ArrayLike<number>;
}

/** Float64 reference: dxp, dhp and dh0 over their views' buffer extents (NaN where a view does not reach). */
export function gruScanBackwardReference(p: GruScanBackwardParams, d: GruBackwardInputs): { dxp: Float64Array; dhp: Float64Array; dh0?: Float64Array } {
  const pl = plan(p);
  const { H, T } = pl;
  const dxp = new Float64Array(extent(p.dxp)).fill(NaN);
  const dhp = new Float64Array(extent(p.dhp)).fill(NaN);
  const dh0 = p.dh0 ? new Float64Array(extent(p.dh0)).fill(NaN) : undefined;
  const { sigmoid, tanh } = FUNCTIONS;
  const hp = new Float64Array(H), carry = new Float64Array(H), dg = new Float64Array(3 * H);
  for (let row = 0; row < pl.rows; row++) {
    const base = rowBase(pl, p, row);
    carry.fill(0);
    for (let s = T - 1; s >= 0; s--) {
      const t = p.reverse ? T - 1 - s : s;
      const at = (k: Lead, j: number) => base[k] + t * pl.step[k] + j * pl.unit[k];
      for (let k = 0; k < H; k++) hp[k] = d.hprev[at('hprev', k)];
      for (let i = 0; i < H; i++) {
        const a = [0, 1, 2].map((g) => {
          let acc = d.bhh[g * H + i];
          for (let k = 0; k < H; k++) acc += d.whh[(g * H + i) * H + k] * hp[k];
          return acc;
        });
        const r = sigmoid.f64(d.xp[at('xp', i)] + a[0]);
        const z = sigmoid.f64(d.xp[at('xp', H + i)] + a[1]);
        const n = tanh.f64(d.xp[at('xp', 2 * H + i)] + r * a[2]);
        const dh = carry[i] + d.dy[at('dy', i)];
        const dz = dh * (hp[i] - n) * z * (1 - z);
        const dn = dh * (1 - z) * (1 - n * n);
        const dr = dn * a[2] * r * (1 - r);
        dxp[at('dxp', i)] = dr; dxp[at('dxp', H + i)] = dz; dxp[at('dxp', 2 * H + i)] = dn;
        dhp[at('dhp', i)] = dr; dhp[at('dhp', H + i)] = dz; dhp[at('dhp', 2 * H + i)] = dn * r;
        dg[i] = dr; dg[H + i] = dz; dg[2 * H + i] = dn * r;
        carry[i] = dh * z;
      }
      for (let k = 0; k < H; k++) {
        let acc = carry[k];
        for (let g = 0; g < 3 * H; g++) acc += d.whh[g * H + k] * dg[g];
        carry[k] = acc;
      }
    }
    if (dh0) for (let k = 0; k < H; k++) dh0[base.dh0 + k * pl.unit.dh0] = carry[k];
  }
  return { dxp, dhp, dh0 };
}

export function gruScanBackwardKernel(p: GruScanBackwardParams): KernelSpec {
  const pl = plan(p);
  const { H, T } = pl;
  const read = (name: string) => ({ name, access: 'read' as const });
  const write = (name: string) => ({ name, access: 'read_write' as const });
  const bindings = [read('xp'), read('whh'), read('bhh'), read('hprev'), read('dy'), write('dxp'), write('dhp'), ...(p.dh0 ? [write('dh0')] : [])];
  const baseOf = (k: Lead | 'dh0', off: number) => `let ${k}B = ${[`${off}u`, ...pl.batch.map((b, i) => `c${i} * ${b.strides[k]}u`)].join(' + ')};`;
  // element j (gate-major unit index) of view k at the current step t
  const at = (k: Lead, j: string) => `${k}B + t * ${pl.step[k]}u + (${j}) * ${pl.unit[k]}u`;
  // the gates exactly as the forward scan computes them
  const row = gruRowKernel({
    what: 'gru scan backward', H, T, rows: pl.rows, batch: pl.batch, workgroupSize: p.workgroupSize, bindings,
    shared: [`var<workgroup> hp: array<f32, ${H}>;`, `var<workgroup> carry: array<f32, ${H}>;`, `var<workgroup> dg: array<f32, ${3 * H}>;`],
    state: (k) => `hp[${k}]`,
    xpAt: (unit) => at('xp', unit),
  });
  return row.spec('gru-scan-backward', [
    ...LEAD.map((k) => baseOf(k, p[k].offset)),
    p.dh0 ? baseOf('dh0', p.dh0.offset) : '',
    // carry[i] is only ever touched by the invocation owning unit i: no barrier for it
    `for (var i = lid; i < H; i += WG) { carry[i] = 0.0; }`,
    `for (var q = 0u; q < T; q++) {`,
    `  let s = T - 1u - q;`,
    `  let t = ${p.reverse ? 'T - 1u - s' : 's'};`,
    `  for (var i = lid; i < H; i += WG) { hp[i] = hprev[${at('hprev', 'i')}]; }`,
    // also orders the previous step's dg reads before this step's dg writes
    `  workgroupBarrier();`,
    `  for (var i = lid; i < H; i += WG) {`,
    ...row.recurrence,
    `    let d = carry[i] + dy[${at('dy', 'i')}];`,
    `    let dz = d * (hp[i] - n) * z * (1.0 - z);`,
    `    let dn = d * (1.0 - z) * (1.0 - n * n);`,
    `    let dr = dn * an * r * (1.0 - r);`,
    `    dxp[${at('dxp', 'i')}] = dr; dxp[${at('dxp', 'H + i')}] = dz; dxp[${at('dxp', '2u * H + i')}] = dn;`,
    `    dhp[${at('dhp', 'i')}] = dr; dhp[${at('dhp', 'H + i')}] = dz; dhp[${at('dhp', '2u * H + i')}] = dn * r;`,
    `    dg[i] = dr; dg[H + i] = dz; dg[2u * H + i] = dn * r;`,
    `    carry[i] = d * z;`,
    `  }`,
    `  workgroupBarrier();`,
    `  for (var k = lid; k < H; k += WG) {`,
    `    var acc = carry[k];`,
    `    for (var g = 0u; g < 3u * H; g++) { acc += whh[g * H + k] * dg[g]; }`,
    `    carry[k] = acc;`,
    `  }`,
    `}`,
    p.dh0 ? `for (var k = lid; k < H; k += WG) { dh0[dh0B + k * ${pl.unit.dh0}u] = carry[k]; }` : '',
  ]);
}
