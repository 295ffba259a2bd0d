// The loss curve as a standalone SVG: raw losses as a faint line, an exponential moving average
// over them as a solid one, step on x, loss on y (logarithmic when the losses span more than a
// decade, as they do early in training). Written beside the checkpoints, so a browser shows how a
// run is going without any tool; plain string building, no dependencies.
import { writeFileAtomic } from './safetensors.ts';

export interface LossPoint {
  readonly step: number;
  readonly loss: number;
}

export interface LossCurveOptions {
  /** The spec or model name, shown in the title. */
  readonly spec: string;
  readonly width?: number;
  readonly height?: number;
  /** EMA weight of the past, in [0, 1): 0 draws the raw points again, 0.9 (default) is smooth. */
  readonly smoothing?: number;
  /** Above this many raw points, each bucket of steps is drawn by its lowest and highest loss. */
  readonly maxPoints?: number;
}

const MARGIN = { left: 64, right: 20, top: 40, bottom: 46 };

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
const round = (x: number) => Math.round(x * 100) / 100;
/** Strips float noise from a tick value (0.30000000000000004 -> 0.3). */
const clean = (x: number) => Number(x.toPrecision(12));

/** Tick values at 1, 2 or 5 times a power of ten, about `count` of them, covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(clean(k * step));
  return out;
}

/** Short tick labels: 1500 -> 1.5k, 0.00012 -> 1.2e-4, 0.25 -> 0.25. */
export function tickLabel(x: number): string {
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 1e6) return `${clean(x / 1e6)}M`;
  if (a >= 1e4) return `${clean(x / 1e3)}k`;
  if (a < 1e-3) return x.toExponential(1).replace(/\.0e/, 'e');
  return String(clean(x));
}

/** Debiased EMA (as TensorBoard smooths): early points are not pulled towards zero. */
export function emaSmooth(values: readonly number[], weight: number): number[] {
  const out: number[] = [];
  let s = 0;
  let w = 1;
  for (const v of values) {
    s = weight * s + (1 - weight) * v;
    w *= weight;
    out.push(weight === 0 ? v : s / (1 - w));
  }
  return out;
}

/** At most ~`max` points: each bucket keeps its lowest and highest loss, in step order, so spikes stay visible. */
function downsample(points: readonly LossPoint[], max: number): LossPoint[] {
  if (points.length <= max) return [...points];
  const buckets = Math.max(1, Math.floor(max / 2));
  const size = points.length / buckets;
  const out: LossPoint[] = [];
  for (let b = 0; b < buckets; b++) {
    const chunk = points.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    if (!chunk.length) continue;
    let lo = chunk[0], hi = chunk[0];
    for (const p of chunk) { if (p.loss < lo.loss) lo = p; if (p.loss > hi.loss) hi = p; }
    out.push(...(lo === hi ? [lo] : lo.step <= hi.step ? [lo, hi] : [hi, lo]));
  }
  return out;
}

/** Smallest and largest of many values (spreading 100k arguments into Math.min would overflow the stack). */
function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

const pathOf = (xy: readonly (readonly [number, number])[]) =>
  xy.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${round(x)},${round(y)}`).join(' ');

/** The SVG document of a loss curve. Non-finite losses (and, on a log axis, non-positive ones) are left out. */
export function lossCurveSvg(points: readonly LossPoint[], options: LossCurveOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 400;
  const weight = Math.min(Math.max(options.smoothing ?? 0.9, 0), 0.999);
  const finite = points.filter((p) => Number.isFinite(p.step) && Number.isFinite(p.loss));
  const positive = finite.filter((p) => p.loss > 0);
  const [minLoss, maxLoss] = extent(positive.map((p) => p.loss));
  const logScale = positive.length > 1 && maxLoss / minLoss > 10;
  const data = logScale ? positive : finite;

  const title = `${escapeXml(options.spec)}: training loss`;
  const head = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  const x0 = MARGIN.left, x1 = width - MARGIN.right, y0 = height - MARGIN.bottom, y1 = MARGIN.top;
  if (data.length === 0) {
    return [...head, `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${title}</text>`,
      `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#666">no losses logged yet</text>`, '</svg>', ''].join('\n');
  }

  // Axes' domains. y: whole decades on a log axis, tick-aligned bounds on a linear one.
  let [sLo, sHi] = extent(data.map((p) => p.step));
  if (sLo === sHi) { sLo -= 1; sHi += 1; }
  const ys = data.map((p) => (logScale ? Math.log10(p.loss) : p.loss));
  let yLo: number, yHi: number, yTicks: number[];
  if (logScale) {
    const [lo, hi] = extent(ys);
    yLo = Math.floor(lo);
    yHi = Math.max(Math.ceil(hi), yLo + 1);
    yTicks = [];
    for (let d = yLo; d <= yHi; d++) {
      yTicks.push(d);
      if (yHi - yLo <= 2 && d < yHi) yTicks.push(d + Math.log10(2), d + Math.log10(5));
    }
  } else {
    const [lo, hi] = extent(ys);
    const pad = hi > lo ? 0 : Math.abs(lo) * 0.1 || 1;
    const ticks = niceTicks(lo - pad, hi + pad);
    const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
    yLo = Math.min(ticks[0], clean(Math.floor((lo - pad) / step) * step));
    yHi = Math.max(ticks[ticks.length - 1], clean(Math.ceil((hi + pad) / step) * step));
    yTicks = niceTicks(yLo, yHi);
  }
  const sx = (s: number) => x0 + ((s - sLo) / (sHi - sLo)) * (x1 - x0);
  const sy = (v: number) => y0 - ((v - yLo) / (yHi - yLo)) * (y0 - y1);

  const out = [...head];
  const smoothed = emaSmooth(ys, weight);
  const last = data[data.length - 1];
  const lastSmoothed = logScale ? 10 ** smoothed[smoothed.length - 1] : smoothed[smoothed.length - 1];
  out.push(`<text x="${x0}" y="22" font-size="15" font-weight="bold">${title}</text>`);
  out.push(`<text x="${x1}" y="22" text-anchor="end" fill="#444">step ${last.step}  loss ${lastSmoothed.toPrecision(4)} (smoothed)</text>`);

  // Grid and ticks.
  out.push('<g class="grid" stroke="#e5e5e5" stroke-width="1">');
  for (const t of yTicks) out.push(`<line x1="${x0}" y1="${round(sy(t))}" x2="${x1}" y2="${round(sy(t))}"/>`);
  const xTicks = niceTicks(sLo, sHi, 6).filter((t) => t >= sLo && t <= sHi);
  for (const t of xTicks) out.push(`<line x1="${round(sx(t))}" y1="${y1}" x2="${round(sx(t))}" y2="${y0}"/>`);
  out.push('</g>');
  out.push(`<g class="axes" stroke="#333" stroke-width="1"><line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}"/></g>`);
  out.push('<g class="y-ticks" text-anchor="end" fill="#333">');
  for (const t of yTicks) {
    const minor = logScale && !Number.isInteger(t);
    out.push(`<text x="${x0 - 6}" y="${round(sy(t) + 4)}"${minor ? ' fill="#888"' : ''}>${escapeXml(tickLabel(logScale ? clean(10 ** t) : t))}</text>`);
  }
  out.push('</g>');
  out.push('<g class="x-ticks" text-anchor="middle" fill="#333">');
  for (const t of xTicks) out.push(`<text x="${round(sx(t))}" y="${y0 + 16}">${escapeXml(tickLabel(t))}</text>`);
  out.push('</g>');
  out.push(`<text x="${(x0 + x1) / 2}" y="${height - 8}" text-anchor="middle">step</text>`);
  out.push(`<text x="16" y="${(y0 + y1) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(y0 + y1) / 2})">loss${logScale ? ' (log scale)' : ''}</text>`);

  // Lines: the raw points (down-sampled past maxPoints) and the EMA over all of them.
  const raw = downsample(data, options.maxPoints ?? 4000);
  const rawXY = raw.map((p) => [sx(p.step), sy(logScale ? Math.log10(p.loss) : p.loss)] as const);
  const smoothStride = Math.max(1, Math.ceil(data.length / (options.maxPoints ?? 4000)));
  const smoothXY = data.flatMap((p, i) => (i % smoothStride === 0 || i === data.length - 1 ? [[sx(p.step), sy(smoothed[i])] as const] : []));
  out.push(`<path class="raw" d="${pathOf(rawXY)}" fill="none" stroke="#7aa6d6" stroke-width="1" stroke-opacity="0.6"/>`);
  out.push(`<path class="smoothed" d="${pathOf(smoothXY)}" fill="none" stroke="#1f4e99" stroke-width="2"/>`);

  // Legend.
  const lx = x1 - 170, ly = y1 + 8;
  out.push(`<g class="legend"><rect x="${lx}" y="${ly}" width="164" height="40" fill="white" fill-opacity="0.85" stroke="#ccc"/>`,
    `<line x1="${lx + 8}" y1="${ly + 13}" x2="${lx + 30}" y2="${ly + 13}" stroke="#7aa6d6" stroke-width="1.5"/><text x="${lx + 36}" y="${ly + 17}">raw</text>`,
    `<line x1="${lx + 8}" y1="${ly + 29}" x2="${lx + 30}" y2="${ly + 29}" stroke="#1f4e99" stroke-width="2"/><text x="${lx + 36}" y="${ly + 33}">smoothed (EMA ${weight})</text></g>`);
  out.push('</svg>', '');
  return out.join('\n');
}

/** Writes the curve atomically, so a browser refreshing it never sees half a file. */
export function writeLossCurve(file: string, points: readonly LossPoint[], options: LossCurveOptions): void {
  writeFileAtomic(file, [new TextEncoder().encode(lossCurveSvg(points, options))]);
}
