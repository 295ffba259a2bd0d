/**
 * GRU scan along one axis: h_t = GRU(x_t, h_{t-1}) with PyTorch's gate equations
 *   r = sigmoid(xr + W_hr h + b_hr)      z = sigmoid(xz + W_hz h + b_hz)
 *   n = tanh(xn + r * (W_hn h + b_hn))   h' = (1 - z) * n + z * h
 * where xr|xz|xn = W_ih x + b_ih for all steps at once (one GEMM before the scan).
 *
 * Parameters (GruScanParams):
 * - hidden: H.
 * - xp: view [...lead, 3H] of the input projections, gates r|z|n along the last axis (PyTorch order).
 * - axis: which lead axis is scanned; the other lead axes are independent batch rows.
 * - out: view [...lead, H] receiving every h_t.
 * - h0: optional view [...batch lead axes, H] (lead without the scan axis); zeros when absent.
 * - reverse: scan from the last step to the first (h_t from h_{t+1}), as a bidirectional GRU's backward half.
 * - workgroupSize: invocations per batch row; invocation i owns hidden units i, i + workgroupSize, ...
 * One workgroup per batch row runs the steps in order; h lives in workgroup memory (double-buffered,
 * one barrier per step). Bindings in order: xp, whh ([3H, H] row-major, PyTorch weight_hh), bhh ([3H]),
 * [h0], out.
 */
import { FUNCTIONS, helperSet } from './functions.ts';
import { gridFor, type KernelBinding, type KernelSpec } from './kernel.ts';
import { type View } from './view.ts';

export interface GruScanParams {
  hidden: number;
  xp: View;
  axis: number;
  out: View;
  h0?: View;
  reverse?: boolean;
  workgroupSize?: number;
}

function fail(msg: string): never { throw new Error(`gru scan: ${msg}`); }

interface ScanPlan {
  H: number; T: number; rows: number;
  /** batch lead axes: sizes and strides in xp, out, h0 */
  batch: { size: number; x: number; o: number; h: number }[];
  /** scan-axis strides, gate-axis strides */
  xt: number; ot: number; xg: number; og: number; hg: number;
}

function planScan(p: GruScanParams): ScanPlan {
  const H = p.hidden;
  if (!Number.isInteger(H) || H < 1) fail(`hidden size must be a positive integer, got ${H}`);
  const lead = p.xp.shape.slice(0, -1);
  if (p.xp.shape.at(-1) !== 3 * H) fail(`xp's last axis must be 3 * hidden = ${3 * H}, got ${p.xp.shape.at(-1)}`);
  if (!Number.isInteger(p.axis) || p.axis < 0 || p.axis >= lead.length) fail(`axis ${p.axis} is not a lead axis of xp [${p.xp.shape}]`);
  const want = [...lead, H];
  if (p.out.shape.length !== want.length || p.out.shape.some((s, i) => s !== want[i])) fail(`out has shape [${p.out.shape}] but [${want}] is required`);
  const batchIdx = lead.map((_, i) => i).filter((i) => i !== p.axis);
  if (p.h0) {
    const hw = [...batchIdx.map((i) => lead[i]), H];
    if (p.h0.shape.length !== hw.length || p.h0.shape.some((s, i) => s !== hw[i])) fail(`h0 has shape [${p.h0.shape}] but [${hw}] is required`);
  }
  return {
    H, T: lead[p.axis], rows: batchIdx.reduce((a, i) => a * lead[i], 1),
    batch: batchIdx.map((i, j) => ({ size: lead[i], x: p.xp.strides[i], o: p.out.strides[i], h: p.h0 ? p.h0.strides[j] : 0 })),
    xt: p.xp.strides[p.axis], ot: p.out.strides[p.axis],
    xg: p.xp.strides.at(-1)!, og: p.out.strides.at(-1)!, hg: p.h0 ? p.h0.strides.at(-1)! : 0,
  };
}

/** Element offsets of batch row `row` (last batch axis fastest) in xp, out and h0. */
function rowBase(plan: ScanPlan, p: GruScanParams, row: number) {
  const base = { x: p.xp.offset, o: p.out.offset, h: p.h0?.offset ?? 0 };
  for (let i = plan.batch.length - 1; i >= 0; i--) {
    const b = plan.batch[i], c = row % b.size;
    row = Math.floor(row / b.size);
    base.x += c * b.x; base.o += c * b.o; base.h += c * b.h;
  }
  return base;
}

export interface GruInputs { xp: ArrayLike<number>; whh: ArrayLike<number>; bhh: ArrayLike<number>; h0?: ArrayLike<number> }

/** What a backward pass needs per (row, step, unit), index (row * T + t) * H + i in scan order. */
export interface GruSaved { r: Float64Array; z: Float64Array; n: Float64Array; hn: Float64Array; hPrev: Float64Array }

const { sigmoid, tanh } = FUNCTIONS;

/** Float64 reference: out over out's buffer extent (NaN where the view does not reach) and saved gates. */
export function gruReference(p: GruScanParams, x: GruInputs): { out: Float64Array; saved: GruSaved } {
  const plan = planScan(p);
  const { H, T } = plan;
  const extent = p.out.offset + p.out.shape.reduce((s, n, i) => s + (n - 1) * p.out.strides[i], 0) + 1;
  const out = new Float64Array(extent).fill(NaN);
  const size = plan.rows * T * H;
  const saved: GruSaved = { r: new Float64Array(size), z: new Float64Array(size), n: new Float64Array(size), hn: new Float64Array(size), hPrev: new Float64Array(size) };
  for (let row = 0; row < plan.rows; row++) {
    const base = rowBase(plan, p, row);
    let h = Array.from({ length: H }, (_, i) => (x.h0 ? x.h0[base.h + i * plan.hg] : 0));
    for (let s = 0; s < T; s++) {
      const t = p.reverse ? T - 1 - s : s;
      const xo = base.x + t * plan.xt;
      const next = new Array<number>(H);
      for (let i = 0; i < H; i++) {
        const lin = [0, 1, 2].map((g) => {
          let a = x.bhh[g * H + i];
          for (let k = 0; k < H; k++) a += x.whh[(g * H + i) * H + k] * h[k];
          return a;
        });
        const r = sigmoid.f64(x.xp[xo + i * plan.xg] + lin[0]);
        const z = sigmoid.f64(x.xp[xo + (H + i) * plan.xg] + lin[1]);
        const n = tanh.f64(x.xp[xo + (2 * H + i) * plan.xg] + r * lin[2]);
        next[i] = (1 - z) * n + z * h[i];
        const si = (row * T + s) * H + i;
        saved.r[si] = r; saved.z[si] = z; saved.n[si] = n; saved.hn[si] = lin[2]; saved.hPrev[si] = h[i];
        out[base.o + t * plan.ot + i * plan.og] = next[i];
      }
      h = next;
    }
  }
  return { out, saved };
}

/** Float64 x W_ih^T + b_ih for x [rows, I] row-major, W_ih [3H, I]: the xp a GEMM would produce, [rows, 3H]. */
export function gruInputProjection(x: ArrayLike<number>, wih: ArrayLike<number>, bih: ArrayLike<number>, rows: number, inputSize: number): Float64Array {
  const G = bih.length;
  const xp = new Float64Array(rows * G);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < G; g++) {
      let a = bih[g];
      for (let k = 0; k < inputSize; k++) a += wih[g * inputSize + k] * x[r * inputSize + k];
      xp[r * G + g] = a;
    }
  }
  return xp;
}

export function gruScanKernel(p: GruScanParams): KernelSpec {
  const plan = planScan(p);
  const { H, T } = plan;
  const bindings = [{ name: 'xp', access: 'read' as const }, { name: 'whh', access: 'read' as const }, { name: 'bhh', access: 'read' as const },
    ...(p.h0 ? [{ name: 'h0', access: 'read' as const }] : []), { name: 'out', access: 'read_write' as const }];
  const sum = (k: 'x' | 'o' | 'h', off: number) => [`${off}u`, ...plan.batch.map((b, i) => `c${i} * ${b[k]}u`)].join(' + ');
  const row = gruRowKernel({
    what: 'gru scan', H, T, rows: plan.rows, batch: plan.batch, workgroupSize: p.workgroupSize, bindings,
    shared: [`var<workgroup> h: array<f32, ${2 * H}>;`],
    state: (k) => `h[cur + ${k}]`,
    xpAt: (unit) => `xo + ${unit === 'i' ? unit : `(${unit})`} * ${plan.xg}u`,
  });
  return row.spec('gru-scan', [
    `let xb = ${sum('x', p.xp.offset)}; let ob = ${sum('o', p.out.offset)};`,
    p.h0 ? `let hb = ${sum('h', p.h0.offset)};` : '',
    `for (var i = lid; i < H; i += WG) { h[i] = ${p.h0 ? `h0[hb + i * ${plan.hg}u]` : '0.0'}; }`,
    `workgroupBarrier();`,
    `for (var s = 0u; s < T; s++) {`,
    `  let t = ${p.reverse ? 'T - 1u - s' : 's'};`,
    `  let cur = (s % 2u) * H; let nxt = H - cur;`,
    `  let xo = xb + t * ${plan.xt}u;`,
    `  for (var i = lid; i < H; i += WG) {`,
    ...row.recurrence,
    `    let hnew = (1.0 - z) * n + z * h[cur + i];`,
    `    h[nxt + i] = hnew;`,
    `    out[ob + t * ${plan.ot}u + i * ${plan.og}u] = hnew;`,
    `  }`,
    `  workgroupBarrier();`,
    `}`,
  ]);
}

/** What a scan kernel built by gruRowKernel writes around its recurrence. */
export interface GruRowKernel {
  /** unit i's recurrence, indented for the step and unit loops: ar, az, an = W_hh state + b_hh, then the gates r, z, n */
  recurrence: string[];
  /** the kernel: the head, then `body` (lines of the entry point; empty ones are dropped), then its end */
  spec(family: string, body: string[]): KernelSpec;
}

/**
 * What the forward scan and its backward share: one workgroup per batch row whose invocation i owns
 * units i, i + WG, ...; the head (bindings, sizes H, T, WG, the `shared` workgroup arrays, the helpers
 * the gates use, the entry point up to the row's batch coordinates c0, c1, ...) and the recurrence,
 * with the gates in the elementwise kernels' forms (vdm_tanh cannot overflow for large inputs), so
 * the backward recomputes exactly what the forward computed. `state(k)` reads unit k of the state
 * the step starts from, `xpAt(unit)` addresses xp at a gate-major unit index.
 */
export function gruRowKernel(o: {
  what: string; H: number; T: number; rows: number; batch: readonly { size: number }[]; workgroupSize?: number;
  bindings: KernelBinding[]; shared: string[]; state: (k: string) => string; xpAt: (unit: string) => string;
}): GruRowKernel {
  const WG = o.workgroupSize ?? Math.min(64, Math.ceil(o.H / 8) * 8);
  if (!Number.isInteger(WG) || WG < 1) throw new Error(`${o.what}: workgroupSize must be a positive integer, got ${WG}`);
  const dispatch = gridFor(o.rows);
  // generated before the head: it lists the helpers these use
  const { use, definitions } = helperSet();
  const recurrence = [
    `    var ar = bhh[i]; var az = bhh[H + i]; var an = bhh[2u * H + i];`,
    `    for (var k = 0u; k < H; k++) {`,
    `      let hk = ${o.state('k')};`,
    `      ar += whh[i * H + k] * hk; az += whh[(H + i) * H + k] * hk; an += whh[(2u * H + i) * H + k] * hk;`,
    `    }`,
    `    let gr = xp[${o.xpAt('i')}] + ar;`,
    `    let r = ${sigmoid.wgsl('gr', use)};`,
    `    let gz = xp[${o.xpAt('H + i')}] + az;`,
    `    let z = ${sigmoid.wgsl('gz', use)};`,
    `    let gn = xp[${o.xpAt('2u * H + i')}] + r * an;`,
    `    let n = ${tanh.wgsl('gn', use)};`,
  ];
  const spec = (family: string, body: string[]): KernelSpec => {
    const wgsl = [
      ...o.bindings.map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<f32>;`),
      `const H = ${o.H}u; const T = ${o.T}u; const WG = ${WG}u;`,
      ...o.shared,
      ...definitions(),
      `@compute @workgroup_size(${WG})`,
      `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {`,
      `let rem = wid.x + (wid.y + wid.z * ${dispatch[1]}u) * ${dispatch[0]}u;`,
      `if (rem >= ${o.rows}u) { return; }`,
      ...o.batch.map((b, i) => `let c${i} = (rem / ${o.batch.slice(i + 1).reduce((a, x) => a * x.size, 1)}u) % ${b.size}u;`),
      ...body,
      `}`].filter((x) => x !== '').join('\n');
    return { key: `${family}:${hash(wgsl)}`, wgsl, entryPoint: 'main', bindings: o.bindings, dispatch };
  };
  return { recurrence, spec };
}

/** FNV-1a of the WGSL: the cache key follows every compile-time parameter. */
function hash(s: string): string {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
  return (x >>> 0).toString(36) + s.length.toString(36);
}
