// Backward of the embedding gather (embed.ts): dtable[r, :] = Σ dy[i, :] over the ids i that read
// row r (ids clamped as the gather clamps them), every table row written once, unread rows 0.
// Deterministic without atomics: every sum runs over i in ascending order, whichever path computes it.
//  - embedBackwardKernel: one kernel, one invocation per (row, channel) that scans all n ids.
//    Cost rows · dim · n id reads; fine while the batch of ids is small (class labels).
//  - embedLinksKernel + embedChainSumKernel: one invocation per row threads that row's ids into a
//    linked list (rows · n id reads, no dim factor), then one invocation per (row, channel) walks
//    its list: (rows + n) · dim reads of dy. For many ids (tokens) or a wide table.
// Both give bit-identical sums (same terms, same order).
import { flatKernel, type KernelSpec } from './kernel.ts';
import { extent, type View } from './view.ts';

export interface EmbedBackwardParams {
  /** [rows, dim]: the table gradient; every element is written */
  dtable: View;
  /** number of ids, read as i32 from ids[idsOffset ..] */
  n: number;
  idsOffset?: number;
  /** [n, dim]: d loss / d gather output */
  dy: View;
  workgroupSize?: number;
}

function check(p: EmbedBackwardParams): [number, number] {
  if (p.dtable.shape.length !== 2 || p.dtable.shape.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`embed backward: dtable must have shape [rows, dim] (got [${p.dtable.shape}])`);
  }
  if (!Number.isInteger(p.n) || p.n < 1) throw new Error(`embed backward: n must be a positive integer (got ${p.n})`);
  const [rows, dim] = p.dtable.shape;
  if (p.dy.shape.length !== 2 || p.dy.shape[0] !== p.n || p.dy.shape[1] !== dim) {
    throw new Error(`embed backward: dy has shape [${p.dy.shape}], expected [${p.n}, ${dim}]`);
  }
  if ([p.dtable, p.dy].some((v) => v.strides.some((s) => s < 0))) throw new Error('embed backward: negative strides are not supported');
  const [s0, s1] = p.dtable.strides;
  if (rows > 1 && dim > 1 && s0 < dim * s1 && s1 < rows * s0) throw new Error('embed backward: dtable addresses one element more than once');
  if ((rows > 1 && s0 === 0) || (dim > 1 && s1 === 0)) throw new Error('embed backward: dtable cannot broadcast');
  return [rows, dim];
}

const wgOf = (p: EmbedBackwardParams) => {
  const wg = p.workgroupSize ?? 64;
  if (!Number.isInteger(wg) || wg < 1) throw new Error(`embed backward: workgroupSize must be a positive integer (got ${wg})`);
  return wg;
};

const rowOf = (p: EmbedBackwardParams, rows: number, i: string) => `clamp(b_ids[${p.idsOffset ?? 0}u + ${i}], 0, ${rows - 1})`;
const dyAt = (p: EmbedBackwardParams, i: string) => `b_dy[${p.dy.offset}u + ${i} * ${p.dy.strides[0]}u + c * ${p.dy.strides[1]}u]`;
const dtableAt = (p: EmbedBackwardParams) => `b_dtable[${p.dtable.offset}u + row * ${p.dtable.strides[0]}u + c * ${p.dtable.strides[1]}u]`;

/**
 * Invocation (row, channel) of dtable: `sum` adds that row's dy terms (c is the channel) into acc,
 * which is then stored. The id source (ids or links, i32) and dy are bound before dtable.
 */
function dtableKernel(p: EmbedBackwardParams, family: string, key: unknown[], source: 'ids' | 'links', sum: (rows: number) => string[]): KernelSpec {
  const [rows, dim] = check(p);
  const wg = wgOf(p);
  return flatKernel({
    key: `${family}:${JSON.stringify([...key, wg])}`,
    decls: [
      `@group(0) @binding(0) var<storage, read> b_${source}: array<i32>;`,
      '@group(0) @binding(1) var<storage, read> b_dy: array<f32>;',
      '@group(0) @binding(2) var<storage, read_write> b_dtable: array<f32>;',
    ],
    wg,
    total: rows * dim,
    body: [`let c = flat % ${dim}u;`, `let row = flat / ${dim}u;`, 'var acc = 0.0;', ...sum(rows), `${dtableAt(p)} = acc;`],
    bindings: [{ name: source, access: 'read' }, { name: 'dy', access: 'read' }, { name: 'dtable', access: 'read_write' }],
  });
}

/** One kernel: invocation (row, channel) sums dy over the ids equal to row. Bindings: ids (i32), dy, dtable. */
export const embedBackwardKernel = (p: EmbedBackwardParams): KernelSpec =>
  dtableKernel(p, 'embed-backward', [p.dtable, p.n, p.idsOffset ?? 0, p.dy], 'ids', (rows) => [
    `for (var i: u32 = 0u; i < ${p.n}u; i++) {`,
    `  if (u32(${rowOf(p, rows, 'i')}) == row) { acc += ${dyAt(p, 'i')}; }`,
    '}',
  ]);

/** Elements (i32) of the links buffer: rows heads, then n next pointers. */
export const embedLinksLength = (p: EmbedBackwardParams) => check(p)[0] + p.n;

/**
 * links[r] = the first id position reading row r, links[rows + i] = the next position after i reading
 * the same row (-1 ends a list). Invocation r writes links[r] and the next pointers of its own ids
 * only: each position belongs to exactly one row. Bindings: ids (i32), links (i32, embedLinksLength).
 */
export function embedLinksKernel(p: EmbedBackwardParams): KernelSpec {
  const [rows] = check(p);
  const wg = wgOf(p);
  return flatKernel({
    key: `embed-links:${JSON.stringify([rows, p.n, p.idsOffset ?? 0, wg])}`,
    decls: [
      '@group(0) @binding(0) var<storage, read> b_ids: array<i32>;',
      '@group(0) @binding(1) var<storage, read_write> b_links: array<i32>;',
    ],
    wg,
    total: rows,
    body: [
      'var prev = -1;',
      `for (var i: u32 = 0u; i < ${p.n}u; i++) {`,
      `  if (u32(${rowOf(p, rows, 'i')}) == flat) {`,
      `    if (prev < 0) { b_links[flat] = i32(i); } else { b_links[${rows}u + u32(prev)] = i32(i); }`,
      '    prev = i32(i);',
      '  }',
      '}',
      `if (prev < 0) { b_links[flat] = -1; } else { b_links[${rows}u + u32(prev)] = -1; }`,
    ],
    bindings: [{ name: 'ids', access: 'read' }, { name: 'links', access: 'read_write' }],
  });
}

/** Invocation (row, channel) sums dy along the row's list. Bindings: links (i32), dy, dtable. */
export const embedChainSumKernel = (p: EmbedBackwardParams): KernelSpec =>
  dtableKernel(p, 'embed-chain-sum', [p.dtable, p.n, p.dy], 'links', (rows) => [
    'var i = b_links[row];',
    // bounded by n, so a corrupt list cannot hang the device
    `for (var k: u32 = 0u; k < ${p.n}u && i >= 0; k++) {`,
    `  acc += ${dyAt(p, 'u32(i)')};`,
    `  i = b_links[${rows}u + u32(i)];`,
    '}',
  ]);

/** Float64 reference: the dtable buffer (extent(dtable) elements, NaN where the view does not reach). */
export function embedBackwardReference(p: EmbedBackwardParams, ids: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  const [rows, dim] = check(p);
  const out = new Float64Array(extent(p.dtable)).fill(NaN);
  const at = (r: number, c: number) => p.dtable.offset + r * p.dtable.strides[0] + c * p.dtable.strides[1];
  for (let r = 0; r < rows; r++) for (let c = 0; c < dim; c++) out[at(r, c)] = 0;
  for (let i = 0; i < p.n; i++) {
    const r = Math.min(Math.max(ids[(p.idsOffset ?? 0) + i], 0), rows - 1);
    for (let c = 0; c < dim; c++) out[at(r, c)] += dy[p.dy.offset + i * p.dy.strides[0] + c * p.dy.strides[1]];
  }
  return out;
}
