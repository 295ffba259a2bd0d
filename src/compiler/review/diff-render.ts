// Renders a GraphDiff as text (colored on a terminal) or as a Markdown comment for a pull request.
import type { Json } from '../ir/json.ts';
import type { Delta, GraphDiff, ModuleChange, ValueChange } from './diff.ts';

/** 4 significant digits with K/M/G/T (decimal) units: 32.93M, 6.061G. */
export function human(n: number): string {
  const abs = Math.abs(n);
  for (const [unit, size] of [['T', 1e12], ['G', 1e9], ['M', 1e6], ['K', 1e3]] as const) {
    if (abs >= size) return `${(n / size).toPrecision(4)}${unit}`;
  }
  return String(n);
}

/** Binary units for memory: 1.250 GiB. */
export function bytes(n: number): string {
  const abs = Math.abs(n);
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (abs >= size) return `${(n / size).toPrecision(4)} ${unit}`;
  }
  return `${n} B`;
}

const signed = (s: string, n: number) => (n > 0 ? `+${s}` : s);
const percent = (d: Delta) => (d.relative === null ? 'new' : `${d.relative > 0 ? '+' : ''}${(d.relative * 100).toFixed(1)}%`);
const shape = (s: number[] | null) => (s ? `[${s.join(', ')}]` : '-');
const json = (v: Json) => (v === null ? 'none' : typeof v === 'object' ? JSON.stringify(v).replace(/"/g, '').replace(/,/g, ', ').replace(/:/g, ': ') : String(v));
const times = (count: number) => (count > 1 ? ` (${count}x)` : '');

interface Row { mark: '+' | '-' | '~'; text: string }

/** The parameter shapes of a small module, inline: ` (weight [4, 32], bias [32])`. */
const leaves = (m: ModuleChange) =>
  (m.leaves.length <= 4 ? ` (${m.leaves.map((l) => `${l.path} ${shape(l.shape)}`).join(', ')})` : '');

/** The change sections as marked rows, shared by both renderers. */
function sections(d: GraphDiff, code: (s: string) => string): [string, Row[]][] {
  const values = (list: ValueChange[]): Row[] => list.map((c) => (c.a === null
    ? { mark: '+', text: `${code(c.name)}: ${c.b}` }
    : c.b === null ? { mark: '-', text: `${code(c.name)}: ${c.a}` } : { mark: '~', text: `${code(c.name)}: ${c.a} -> ${c.b}` }));
  const out: [string, Row[]][] = [
    ['model', d.a.model === d.b.model ? [] : [{ mark: '~', text: `${d.a.model} -> ${d.b.model}` }]],
    ['dims', values(d.dims)],
    ['inputs', values(d.inputs)],
    ['outputs', values(d.outputs)],
    ['modules', [
      ...d.modules.added.map((m): Row => ({ mark: '+', text: `${code(m.path)}${times(m.count)}: +${human(m.params)} params${leaves(m)}` })),
      ...d.modules.removed.map((m): Row => ({ mark: '-', text: `${code(m.path)}${times(m.count)}: -${human(m.params)} params${leaves(m)}` })),
      ...d.modules.renamed.map((m): Row => ({ mark: '~', text: `${code(m.from)} renamed to ${code(m.to)}${times(m.count)} (${human(m.params)} params, same shapes)` })),
    ]],
    ['parameters', d.params.map((p): Row => ({
      mark: p.a === null ? '+' : p.b === null ? '-' : '~',
      text: `${code(p.path)}${times(p.count)}: ${p.a === null ? shape(p.b) : p.b === null ? shape(p.a) : `${shape(p.a)} -> ${shape(p.b)}`}`,
    }))],
    ['attention', d.attention.map((c): Row => ({ mark: '~', text: `${code(c.path)}${times(c.count)} ${c.attr}: ${json(c.a)} -> ${json(c.b)}` }))],
    ['factorization', d.factorization.map((f): Row => ({ mark: '~', text: `${f.op} at ${code(f.at)}: ${f.a.join(' + ')} -> ${f.b.join(' + ')}` }))],
    ['layer settings', d.layers.map((c): Row => ({ mark: '~', text: `${code(c.path)}${times(c.count)} (${c.op}) ${c.attr}: ${json(c.a)} -> ${json(c.b)}` }))],
    ['shapes', d.shapes.map((c): Row => ({ mark: '~', text: `${code(c.path)}${times(c.count)} (${c.op}): ${c.a} -> ${c.b}` }))],
    ['diffusion', values(d.diffusion)],
    ['structure', d.structure ? [{ mark: '~', text: d.structure }] : []],
  ];
  return out.filter(([, rows]) => rows.length);
}

function totalsRows(d: GraphDiff): [string, string, string, string, string][] {
  const t = d.totals;
  return [
    ['params', human(t.params.a), human(t.params.b), signed(human(t.params.delta), t.params.delta), percent(t.params)],
    ['MACs', human(t.macs.a), human(t.macs.b), signed(human(t.macs.delta), t.macs.delta), percent(t.macs)],
    ['activation memory', bytes(t.activationBytes.a), bytes(t.activationBytes.b), signed(bytes(t.activationBytes.delta), t.activationBytes.delta), percent(t.activationBytes)],
  ];
}

const ANSI = { '+': '\x1b[32m', '-': '\x1b[31m', '~': '\x1b[33m', bold: '\x1b[1m', dim: '\x1b[2m', reset: '\x1b[0m' };

export function renderText(d: GraphDiff, color: boolean): string {
  const paint = (style: keyof typeof ANSI, s: string) => (color ? `${ANSI[style]}${s}${ANSI.reset}` : s);
  const lines = [paint('bold', `vdm diff ${d.a.label} (${d.a.model}) -> ${d.b.label} (${d.b.model})`)];
  if (d.same) {
    lines.push('no change: both build the same model (same layers, shapes, parameters and diffusion process)');
    return lines.join('\n') + '\n';
  }
  const rows = [['', 'A', 'B', 'change', ''], ...totalsRows(d)];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  lines.push('');
  for (const r of rows) {
    const line = `${r[0].padEnd(widths[0])}  ${r[1].padStart(widths[1])}  ${r[2].padStart(widths[2])}  ${r[3].padStart(widths[3])}  ${r[4]}`.trimEnd();
    lines.push(r === rows[0] ? paint('dim', line) : line);
  }
  for (const [title, list] of sections(d, (s) => s)) {
    lines.push('', paint('bold', title));
    for (const row of list) lines.push(paint(row.mark, `  ${row.mark} ${row.text}`));
  }
  return lines.join('\n') + '\n';
}

const MARKDOWN_ROWS = 50;

export function renderMarkdown(d: GraphDiff): string {
  const code = (s: string) => `\`${s}\``;
  const lines = [`### Architecture diff: ${code(d.a.label)} -> ${code(d.b.label)}`, ''];
  if (d.same) {
    lines.push(`No change in meaning: both build ${code(d.b.model)} with the same layers, shapes, parameters and diffusion process.`);
    return lines.join('\n') + '\n';
  }
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  lines.push(`| | ${cell(d.a.model)} | ${cell(d.b.model)} | change | relative |`, '|---|---:|---:|---:|---:|');
  for (const r of totalsRows(d)) lines.push(`| ${r.map(cell).join(' | ')} |`);
  const word = { '+': 'added', '-': 'removed', '~': 'changed' } as const;
  for (const [title, list] of sections(d, code)) {
    lines.push('', `**${title[0].toUpperCase()}${title.slice(1)}**`, '', '| | |', '|---|---|');
    for (const row of list.slice(0, MARKDOWN_ROWS)) lines.push(`| ${word[row.mark]} | ${cell(row.text)} |`);
    if (list.length > MARKDOWN_ROWS) lines.push(`| | ... and ${list.length - MARKDOWN_ROWS} more |`);
  }
  lines.push('', '<sub>MACs = multiply-accumulates per forward pass (FLOPs = 2 x MACs); activation memory = sum of f32 node outputs.</sub>');
  return lines.join('\n') + '\n';
}
