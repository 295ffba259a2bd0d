// `vdm diff`: compares two checked graphs by meaning. Nothing here looks at source text or spans,
// so a change of layout or comments is no change. Parameters are matched by dotted path; a layer
// is a parametric node (its path is unique); a whole sub-module that vanished on one side and
// appeared with the same parameter shapes under another name on the other is a rename.
import type { Graph, GraphNode, GraphInput } from '../ir/graph.ts';
import type { Json } from '../ir/json.ts';
import { compressPaths, parentOf, prefixes } from './diff-paths.ts';
import { costsOf } from '../ir/cost.ts';

export interface Totals { params: number; macs: number; activationBytes: number }
export interface Delta { a: number; b: number; delta: number; relative: number | null }
export interface ValueChange { name: string; a: string | null; b: string | null }
/** A module (path prefix) present on one side only; `count` > 1 when compressed (blocks.{12-27}). */
export interface ModuleChange {
  path: string; count: number; params: number;
  /** Parameters of one such module, relative to it, with shapes. */
  leaves: { path: string; shape: number[] }[];
}
export interface Rename { from: string; to: string; count: number; params: number }
export interface ParamChange { path: string; count: number; a: number[] | null; b: number[] | null }
export interface AttrChange { path: string; count: number; op: string; attr: string; a: Json; b: Json }
/** The convs (or attentions) under one module became more or fewer: 3x3x3 -> 1x3x3 + 3x1x1. */
export interface Factorization { op: string; at: string; a: string[]; b: string[] }
export interface ShapeChange { path: string; count: number; op: string; a: string; b: string }

export interface GraphDiff {
  a: { label: string; model: string };
  b: { label: string; model: string };
  same: boolean;
  totals: { params: Delta; macs: Delta; activationBytes: Delta };
  dims: ValueChange[];
  inputs: ValueChange[];
  outputs: ValueChange[];
  modules: { added: ModuleChange[]; removed: ModuleChange[]; renamed: Rename[] };
  params: ParamChange[];
  attention: AttrChange[];
  layers: AttrChange[];
  factorization: Factorization[];
  shapes: ShapeChange[];
  diffusion: ValueChange[];
  /** A difference none of the lists above names (an activation swapped, a residual moved), or null. */
  structure: string | null;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function totalsOf(g: Graph): Totals {
  const { params, macs, activationBytes } = costsOf(g);
  return { params, macs, activationBytes };
}

const delta = (a: number, b: number): Delta => ({ a, b, delta: b - a, relative: a === 0 ? (b === 0 ? 0 : null) : (b - a) / a });
export const showAxes = (axes: readonly (readonly [string, number])[]) => `[${axes.map(([n, s]) => `${n}=${s}`).join(', ')}]`;
const canon = (v: Json) => JSON.stringify(v);

function showInput(i: GraphInput): string {
  const opts = Object.entries(i.options).map(([k, v]) => `${k}: ${canon(v)}`).join(', ');
  return `${i.kind}${showAxes(i.axes)}${opts ? `(${opts})` : ''}`;
}

/** Changes between two name -> display-string maps (added: a null, removed: b null). */
function compareMaps(a: Map<string, string>, b: Map<string, string>): ValueChange[] {
  const out: ValueChange[] = [];
  for (const [name, va] of a) if (b.get(name) !== va) out.push({ name, a: va, b: b.get(name) ?? null });
  for (const [name, vb] of b) if (!a.has(name)) out.push({ name, a: null, b: vb });
  return out;
}

function flatten(value: unknown, prefix: string, out: Map<string, string>): Map<string, string> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, typeof value === 'string' ? value : canon(value as Json));
  return out;
}

function diffusionMap(g: Graph): Map<string, string> {
  if (!g.diffusion) return new Map();
  const { loss, ...rest } = g.diffusion;
  const out = flatten(rest, '', new Map());
  out.set('loss', loss.map((t) => (t.weight === 1 ? t.term : `${t.weight} * ${t.term}`)).join(' + '));
  if (!rest.timesteps) out.set('timesteps.kind', 'uniform'); // the default is stored as no entry
  return out;
}

/** Parametric nodes by path (paths of parametric calls are unique). */
function layers(g: Graph): Map<string, GraphNode> {
  const m = new Map<string, GraphNode>();
  for (const n of g.nodes) if (n.params.length) m.set(n.path, n);
  return m;
}

/**
 * The layers, and the later calls of shared modules counted where the layer they read is: sharing
 * the weights of a cell is no factorization of it.
 */
function withSharedCalls(g: Graph, ls: Map<string, GraphNode>): Map<string, GraphNode> {
  const m = new Map(ls);
  for (const n of g.nodes) {
    const owner = n.shares?.[0];
    if (owner) m.set(`${owner.path.slice(0, owner.path.length - owner.leaf.length - 1)}#${n.id}`, n);
  }
  return m;
}

function leafParams(g: Graph): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const n of g.nodes) for (const p of n.params) m.set(p.path, [...p.shape]);
  return m;
}

function modulePrefixes(ls: Map<string, GraphNode>): Set<string> {
  const s = new Set<string>();
  for (const path of ls.keys()) for (const p of prefixes(path)) s.add(p);
  return s;
}

/** Top-most modules of `mine` absent from `other`, with the leaf parameters under each. */
function onlyHere(mine: Set<string>, other: Set<string>, leaves: Map<string, number[]>): Map<string, [string, number[]][]> {
  const tops = new Map<string, [string, number[]][]>();
  for (const m of mine) {
    if (other.has(m) || (parentOf(m) && !other.has(parentOf(m)))) continue;
    tops.set(m, []);
  }
  for (const [leaf, shape] of leaves) {
    for (const p of prefixes(parentOf(leaf))) {
      const list = tops.get(p);
      if (list) { list.push([leaf.slice(p.length + 1), shape]); break; }
    }
  }
  return tops;
}

const signature = (leaves: [string, number[]][]) => leaves.map(([rel, s]) => `${rel}:${s.join('x')}`).sort().join(';');
const paramCount = (leaves: [string, number[]][]) => leaves.reduce((t, [, s]) => t + numel(s), 0);

function moduleChanges(la: Map<string, GraphNode>, lb: Map<string, GraphNode>, pa: Map<string, number[]>, pb: Map<string, number[]>) {
  const ma = modulePrefixes(la), mb = modulePrefixes(lb);
  const removed = onlyHere(ma, mb, pa), added = onlyHere(mb, ma, pb);
  // Renames: same parameter shapes under a new name; prefer partners with the same parent.
  const renames: { from: string; to: string; params: number }[] = [];
  for (const samePlace of [true, false]) {
    for (const [r, rl] of removed) {
      const sig = signature(rl);
      for (const [a, al] of added) {
        if ((samePlace && parentOf(a) !== parentOf(r)) || signature(al) !== sig) continue;
        renames.push({ from: r, to: a, params: paramCount(rl) });
        removed.delete(r);
        added.delete(a);
        break;
      }
    }
  }
  const asChange = (m: Map<string, [string, number[]][]>) => compressPaths([...m], ([p]) => p, ([, l]) => signature(l),
    (members, path): ModuleChange => ({
      path, count: members.length, params: members.reduce((t, [, l]) => t + paramCount(l), 0),
      leaves: members[0][1].map(([rel, shape]) => ({ path: rel, shape })),
    }));
  // Group renames by their old path; a new path keeps its loop indices in step with the old one.
  const digits = (p: string) => p.split('.').filter((x) => /^\d+$/.test(x)).join('.');
  const renameKey = (r: { from: string; to: string }) =>
    digits(r.from) === digits(r.to) ? r.to.split('.').map((x) => (/^\d+$/.test(x) ? '#' : x)).join('.') : r.to;
  const renamed = compressPaths(renames, (r) => r.from, renameKey,
    (members): Rename => {
      const from = compressPaths(members, (m) => m.from, () => '', (_, p) => p)[0];
      const to = compressPaths(members, (m) => m.to, () => '', (_, p) => p)[0];
      return { from, to, count: members.length, params: members.reduce((t, m) => t + m.params, 0) };
    });
  return { added: asChange(added), removed: asChange(removed), renamed, ma, mb };
}

/** Shape changes of parameters on both sides, and parameters added/removed inside surviving modules. */
function paramChanges(pa: Map<string, number[]>, pb: Map<string, number[]>, ma: Set<string>, mb: Set<string>): ParamChange[] {
  const raw: { path: string; a: number[] | null; b: number[] | null }[] = [];
  // the module a parameter belongs to: its longest module prefix (attn for attn.q_norm.weight)
  const owner = (p: string, m: Set<string>) => prefixes(parentOf(p)).reverse().find((q) => m.has(q)) ?? parentOf(p);
  for (const [p, sa] of pa) {
    const sb = pb.get(p);
    if (sb && sb.join() !== sa.join()) raw.push({ path: p, a: sa, b: sb });
    else if (!sb && mb.has(owner(p, ma))) raw.push({ path: p, a: sa, b: null });
  }
  for (const [p, sb] of pb) if (!pa.has(p) && ma.has(owner(p, mb))) raw.push({ path: p, a: null, b: sb });
  return compressPaths(raw, (r) => r.path, (r) => `${r.a}|${r.b}`, (m, path) => ({ path, count: m.length, a: m[0].a, b: m[0].b }));
}

/** Every node by path, op and occurrence (a split's outputs share one path). Inputs are compared apart. */
function nodesByKey(g: Graph): Map<string, GraphNode> {
  const seen = new Map<string, number>();
  const m = new Map<string, GraphNode>();
  for (const n of g.nodes) {
    if (n.op === 'input') continue;
    const base = `${n.path}#${n.op}`;
    const k = seen.get(base) ?? 0;
    seen.set(base, k + 1);
    m.set(`${base}#${k}`, n);
  }
  return m;
}

/** Settings (attributes) of every node on both sides; output shapes of layers (parametric nodes). */
function attrChanges(a: Graph, b: Graph) {
  const raw: Omit<AttrChange, 'count'>[] = [];
  const shapes: Omit<ShapeChange, 'count'>[] = [];
  const nb = nodesByKey(b);
  for (const [key, x] of nodesByKey(a)) {
    const y = nb.get(key);
    if (!y) continue;
    for (const attr of new Set([...Object.keys(x.attrs), ...Object.keys(y.attrs)])) {
      const va = x.attrs[attr] ?? null, vb = y.attrs[attr] ?? null;
      if (canon(va) !== canon(vb)) raw.push({ path: x.path, op: x.op, attr, a: va, b: vb });
    }
    const sa = showAxes(x.axes), sb = showAxes(y.axes);
    if (sa !== sb && x.params.length) shapes.push({ path: x.path, op: x.op, a: sa, b: sb });
  }
  const attrs = compressPaths(raw, (r) => r.path, (r) => `${r.op}|${r.attr}|${canon(r.a)}|${canon(r.b)}`,
    (m, path): AttrChange => ({ ...m[0], path, count: m.length }));
  return {
    attention: attrs.filter((c) => c.op === 'attention'),
    layers: attrs.filter((c) => c.op !== 'attention'),
    shapes: compressPaths(shapes, (s) => s.path, (s) => `${s.op}|${s.a}|${s.b}`, (m, path): ShapeChange => ({ ...m[0], path, count: m.length })),
  };
}

const AXIS_ORDER = ['t', 'h', 'w'];
const axisRank = (a: string) => (AXIS_ORDER.includes(a) ? AXIS_ORDER.indexOf(a) : AXIS_ORDER.length);

/** How one conv or attention reads in a factorization line, given the axes of its group. */
function describe(n: GraphNode, axes: string[]): string {
  if (n.op === 'conv' || n.op === 'conv_transpose') {
    const k = n.attrs.kernel as Record<string, number>;
    return axes.map((a) => k[a] ?? 1).join('x');
  }
  const over = n.attrs.over as string[];
  const win = n.attrs.window as Record<string, number> | null;
  return `(${over.join(', ')})${win ? ` window ${over.map((a) => win[a]).join('x')}` : ''}`;
}

/** Repeats counted, in order of first appearance: [a, b, a, b] -> ['2 x a', '2 x b']. */
function tally(items: string[]): string[] {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].map(([item, n]) => (n === 1 ? item : `${n} x ${item}`));
}

/**
 * Groups each side's convs and attentions by their deepest module present on both sides; where the
 * number of them in a group changed (one full 3D conv became a spatial and a temporal one), the
 * group is reported with both lists.
 */
function factorizations(la: Map<string, GraphNode>, lb: Map<string, GraphNode>, ma: Set<string>, mb: Set<string>): Factorization[] {
  const anchor = (path: string, other: Set<string>) => prefixes(path).reverse().find((p) => other.has(p)) ?? '';
  const out: Factorization[] = [];
  for (const op of ['conv', 'conv_transpose', 'attention']) {
    const groups = new Map<string, { a: GraphNode[]; b: GraphNode[] }>();
    const add = (ls: Map<string, GraphNode>, other: Set<string>, side: 'a' | 'b') => {
      for (const [path, n] of ls) {
        if (n.op !== op) continue;
        const at = anchor(path, other);
        if (!groups.has(at)) groups.set(at, { a: [], b: [] });
        groups.get(at)![side].push(n);
      }
    };
    add(la, mb, 'a');
    add(lb, ma, 'b');
    for (const [at, g] of groups) {
      if (!g.a.length || !g.b.length || g.a.length === g.b.length) continue;
      const axes = [...new Set([...g.a, ...g.b].flatMap((n) => (n.attrs.over as string[]) ?? []))]
        .sort((x, y) => axisRank(x) - axisRank(y) || x.localeCompare(y));
      out.push({ op, at: at || '(model)', a: tally(g.a.map((n) => describe(n, axes))), b: tally(g.b.map((n) => describe(n, axes))) });
    }
  }
  return out;
}

export function diffGraphs(a: Graph, b: Graph, labels: { a: string; b: string }): GraphDiff {
  const ta = totalsOf(a), tb = totalsOf(b);
  const la = layers(a), lb = layers(b);
  const pa = leafParams(a), pb = leafParams(b);
  const { added, removed, renamed, ma, mb } = moduleChanges(la, lb, pa, pb);
  const { attention, layers: layerAttrs, shapes } = attrChanges(a, b);
  const outputsOf = (g: Graph) => new Map(g.outputs.map((o) => [o.name, showAxes(g.nodes[o.node].axes)]));
  const diff: GraphDiff = {
    a: { label: labels.a, model: a.model },
    b: { label: labels.b, model: b.model },
    same: false,
    totals: {
      params: delta(ta.params, tb.params), macs: delta(ta.macs, tb.macs), activationBytes: delta(ta.activationBytes, tb.activationBytes),
    },
    dims: compareMaps(new Map(Object.entries(a.dims).map(([k, v]) => [k, String(v)])), new Map(Object.entries(b.dims).map(([k, v]) => [k, String(v)]))),
    inputs: compareMaps(new Map(a.inputs.map((i) => [i.name, showInput(i)])), new Map(b.inputs.map((i) => [i.name, showInput(i)]))),
    outputs: compareMaps(outputsOf(a), outputsOf(b)),
    modules: { added, removed, renamed },
    params: paramChanges(pa, pb, ma, mb),
    attention,
    layers: layerAttrs,
    factorization: factorizations(withSharedCalls(a, la), withSharedCalls(b, lb), ma, mb),
    shapes,
    diffusion: compareMaps(diffusionMap(a), diffusionMap(b)),
    structure: null,
  };
  const listed = [diff.dims, diff.inputs, diff.outputs, diff.modules.added, diff.modules.removed, diff.modules.renamed,
    diff.params, diff.attention, diff.layers, diff.factorization, diff.shapes, diff.diffusion].some((l) => l.length > 0);
  const totalsDiffer = Object.values(diff.totals).some((d) => d.delta !== 0);
  const structural = firstStructuralDifference(a, b);
  if (!listed && structural) diff.structure = structural;
  diff.same = a.model === b.model && !listed && !totalsDiffer && !structural;
  return diff;
}

/**
 * The fallback for changes the sections above do not name: the first place where the sequences
 * of ops (with attributes, shapes, wiring and parameter inits; no paths or spans) differ.
 */
function firstStructuralDifference(a: Graph, b: Graph): string | null {
  const key = (n: GraphNode) => JSON.stringify([n.op, n.inputs, n.attrs, n.axes, n.dtype, n.params.map((p) => [p.shape, p.init])]);
  const count = Math.max(a.nodes.length, b.nodes.length);
  for (let i = 0; i < count; i++) {
    const na = a.nodes[i], nb = b.nodes[i];
    if (na && nb && key(na) === key(nb)) continue;
    const show = (n: GraphNode | undefined) => (n ? `${n.op}${n.path ? ` (${n.path})` : ''}` : 'nothing');
    return `the graphs part at node ${i}: ${show(na)} became ${show(nb)} (${a.nodes.length} -> ${b.nodes.length} nodes)`;
  }
  return null;
}
