// `vdm export torch`: a spec's model as a self-contained PyTorch nn.Module. The block structure
// comes back from the graph's dotted paths: every scope (a block call, a loop iteration) is one
// class, instances of the same structure share it, a loop of blocks is an nn.ModuleList driven by a
// Python loop, and a layer with parameters is an attribute named as its parameters are, so the
// module's state_dict has vdm's dotted names (or a name map's) in PyTorch's layout (layout.ts).
// Each value is a tensor over the node's named axes in the graph's order; broadcasting by name
// becomes a permute and None-indexing, written out statically.
import type { AxisPair, Graph, GraphNode } from '../compiler/ir/graph.ts';
import { paramLeaf } from '../compiler/ir/graph.ts';
import { patchEmbedOf } from './layout.ts';
import { IDENTITY_MAP, onlyRenames, toTorchName, type NameMap } from './name-maps.ts';
import { objectiveSource, PRELUDE } from './torch-prelude.ts';

export class ExportError extends Error {
  override name = 'ExportError';
}

const UNARY: Readonly<Record<string, (x: string) => string>> = {
  silu: (x) => `F.silu(${x})`, gelu: (x) => `F.gelu(${x})`, gelu_tanh: (x) => `F.gelu(${x}, approximate='tanh')`,
  relu: (x) => `F.relu(${x})`, sigmoid: (x) => `torch.sigmoid(${x})`, tanh: (x) => `torch.tanh(${x})`,
  exp: (x) => `torch.exp(${x})`, log: (x) => `torch.log(${x})`, sqrt: (x) => `torch.sqrt(${x})`,
  rsqrt: (x) => `torch.rsqrt(${x})`, abs: (x) => `torch.abs(${x})`, neg: (x) => `-${x}`, erf: (x) => `torch.erf(${x})`,
};
const BINARY: Readonly<Record<string, string>> = { add: '+', sub: '-', mul: '*', div: '/' };
const SUPPORTED = new Set(['input', 'linear', 'layernorm', 'attention', 'split', 'sinusoidal', 'sincos', 'embed', 'patchify', 'unpatchify',
  'conv', 'conv_transpose', 'groupnorm', 'mean', 'expand', 'concat', 'upsample', 'pool', 'flip', 'gru', 'rmsnorm', 'slice', 'param',
  'flatten', 'unflatten',
  ...Object.keys(UNARY), ...Object.keys(BINARY)]);

const PY_KEYWORDS = new Set(['False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del',
  'elif', 'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal', 'not', 'or', 'pass',
  'raise', 'return', 'try', 'while', 'with', 'yield', 'self', 'torch', 'nn', 'F', 'math',
  // the prelude's helpers
  'patch_order', 'patchify', 'unpatchify', 'conv_over', 'group_norm', 'upsample', 'pool', 'along', 'timestep_embedding', 'sincos_table', 'Attention', 'GRU', 'RMSNorm', 'rms_norm', 'Param', 'pad_to',
  'noise_schedule', 'expand', 'q_sample', 'training_loss', 'vlb_term', 'discretized_log_likelihood', 'DIFFUSION', 'super', 'range', 'len', 'list', 'tuple', 'dict']);

const names = (axes: readonly AxisPair[]) => axes.map(([n]) => n);
const tuple = (xs: readonly string[]) => `(${xs.map((x) => `'${x}'`).join(', ')}${xs.length === 1 ? ',' : ''})`;
const pyNum = (v: number) => (Number.isFinite(v) ? (Number.isInteger(v) ? `${v}` : `${v}`) : v > 0 ? 'math.inf' : '-math.inf');
const lastSegment = (p: string) => p.slice(p.lastIndexOf('.') + 1);
const parentOf = (p: string) => (p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '');
const isIndex = (s: string) => /^\d+$/.test(s);
/** The name of one member of a list: blocks -> block, layers -> layer (res, ups stay). */
const singular = (s: string) => (s.length > 4 && s.endsWith('s') && !s.endsWith('ss') ? s.slice(0, -1) : s);
const camel = (s: string) => s.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('') || 'Block';

/** x (over `from`) over the axes `to`, names of `from` all in `to`: a permute, then None where `to` has more. */
function alignExpr(x: string, from: readonly string[], to: readonly string[]): string {
  const missing = from.filter((n) => !to.includes(n));
  if (missing.length) throw new ExportError(`internal: axes ${missing.join(', ')} are not among ${to.join(', ')}`);
  const sorted = [...from].sort((a, b) => to.indexOf(a) - to.indexOf(b));
  let out = x;
  if (sorted.some((n, i) => n !== from[i])) out = `${x}.permute(${sorted.map((n) => from.indexOf(n)).join(', ')})`;
  if (sorted.length < to.length) {
    const idx = to.map((n) => (sorted.includes(n) ? ':' : 'None'));
    while (idx.length && idx[idx.length - 1] === ':') idx.pop();
    out = `${out}[${idx.join(', ')}]`;
  }
  return out;
}

interface Scope {
  readonly path: string;
  readonly nodes: GraphNode[];
  readonly children: Map<string, Scope>;
  /** every needed node under it */
  all: Set<number>;
  first: number;
  inputs: number[];
  outputs: number[];
  className?: string;
}

interface Ctx {
  readonly graph: Graph;
  /** every node in the model's class (its layers in nested ModuleDicts by dotted path): the fallback when blocks cannot run as units */
  readonly flat: boolean;
  readonly map: NameMap;
  readonly needed: Set<number>;
  readonly reads: (n: GraphNode) => number[];
  readonly consumers: Map<number, number[]>;
  readonly outputs: Set<number>;
  readonly classes: string[];
  readonly bySignature: Map<string, string>;
  readonly usedClassNames: Set<string>;
  /** the model's lines lending each later call of a shared module the module of its first call */
  readonly shareLinks: string[];
}

/** The nodes a node's generated code reads: a patch embedding reads patchify's input. */
function readsOf(graph: Graph) {
  return (n: GraphNode): number[] => (patchEmbedOf(graph, n) ? [graph.nodes[n.inputs[0]].inputs[0]] : [...n.inputs]);
}

/** Where a layer's module sits under its scope, with the map's names: e.g. `adaLN_modulation.1`. */
function attrPath(ctx: Ctx, scope: string, node: GraphNode): string {
  const paths = node.params.map((p) => {
    const leaf = paramLeaf(node, p);
    const mapped = toTorchName(ctx.map, p.path, node.op);
    if (!mapped.endsWith(`.${leaf}`)) throw new ExportError(`map ${ctx.map.name} renames the parameter leaf of ${p.path} (to ${mapped}); an exported module keeps vdm's leaves (weight, bias, qkv.weight)`);
    return mapped.slice(0, -leaf.length - 1);
  });
  const mod = paths[0] ?? node.path;
  if (paths.some((p) => p !== mod)) throw new ExportError(`map ${ctx.map.name} splits the parameters of ${node.path} over ${[...new Set(paths)].join(', ')}`);
  const prefix = scope ? `${scope}.` : '';
  if (!mod.startsWith(prefix) || mod.length === prefix.length) {
    throw new ExportError(`map ${ctx.map.name} moves ${node.path} out of its block ${scope || '(the model)'} (to ${mod}); export without the map and convert the checkpoint with vdm convert --map`);
  }
  return mod.slice(prefix.length);
}

/** A layer's module from its scope's class: `@key` is one a shared module lent it (self._shared). */
const accessOf = (rel: string) => (rel.startsWith('@') ? `self._shared['${rel.slice(1)}']`
  : `self${rel.split('.').map((s) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `.${s}` : `['${s}']`)).join('')}`);

/** A scope's module from the model's: list members by index. */
const scopeAccess = (path: string) => `self${path ? path.split('.').map((s) => (isIndex(s) ? `[${s}]` : `.${s}`)).join('') : ''}`;

/** The parameters a node reads but an earlier call of a shared module owns. */
const sharesOf = (n: GraphNode): readonly { leaf: string; path: string }[] => (n as { shares?: readonly { leaf: string; path: string }[] }).shares ?? [];
const hasParams = (n: GraphNode) => n.params.length > 0 || sharesOf(n).length > 0;

/** The module a layer is, as a constructor call. */
function constructorOf(graph: Graph, n: GraphNode): string {
  const inAxes = graph.nodes[n.inputs[0]]?.axes ?? [];
  const size = (axes: readonly AxisPair[], a: string) => axes.find(([m]) => m === a)![1];
  const bias = n.params.some((p) => p.path.endsWith('bias'));
  switch (n.op) {
    case 'linear': {
      const pe = patchEmbedOf(graph, n);
      const out = Number(n.attrs.out);
      if (pe) {
        const k = pe.kernel.map((e) => e.size).join(', ');
        return `nn.Conv${pe.kernel.length}d(${pe.channels}, ${out}, kernel_size=(${k}${pe.kernel.length === 1 ? ',' : ''}), stride=(${k}${pe.kernel.length === 1 ? ',' : ''})${bias ? '' : ', bias=False'})`;
      }
      const over = Array.isArray(n.attrs.over) ? (n.attrs.over as string[]) : [String(n.attrs.axis)];
      return `nn.Linear(${over.reduce((k, a) => k * size(inAxes, a), 1)}, ${out}${bias ? '' : ', bias=False'})`;
    }
    case 'layernorm': return `nn.LayerNorm(${size(inAxes, String(n.attrs.axis))}, eps=${pyNum(Number(n.attrs.eps))})`;
    case 'rmsnorm': return `RMSNorm(${size(inAxes, String(n.attrs.axis))}, eps=${pyNum(Number(n.attrs.eps))})`;
    case 'param': return `Param(${n.params[0].shape.join(', ')})`;
    case 'gru': return `GRU(${size(inAxes, 'c')}, ${Number(n.attrs.hidden)})`;
    case 'groupnorm': return `nn.GroupNorm(${Number(n.attrs.groups)}, ${size(inAxes, 'c')}, eps=${pyNum(Number(n.attrs.eps))})`;
    case 'conv': {
      const over = n.attrs.over as string[];
      const per = (k: string) => { const v = over.map((a) => Number((n.attrs[k] as Record<string, number>)[a])); return `(${v.join(', ')}${v.length === 1 ? ',' : ''})`; };
      return `nn.Conv${over.length}d(${size(inAxes, 'c')}, ${Number(n.attrs.out)}, kernel_size=${per('kernel')}, stride=${per('stride')}, padding=${per('padding')}, `
        + `dilation=${per('dilation')}${Number(n.attrs.groups) !== 1 ? `, groups=${Number(n.attrs.groups)}` : ''}${bias ? '' : ', bias=False'})`;
    }
    case 'conv_transpose': {
      // PyTorch's ConvTranspose weight [in, out / groups, k...] is vdm's, value for value
      const over = n.attrs.over as string[];
      const per = (k: string) => { const v = over.map((a) => Number((n.attrs[k] as Record<string, number>)[a])); return `(${v.join(', ')}${v.length === 1 ? ',' : ''})`; };
      return `nn.ConvTranspose${over.length}d(${size(inAxes, 'c')}, ${Number(n.attrs.out)}, kernel_size=${per('kernel')}, stride=${per('stride')}, padding=${per('padding')}, `
        + `output_padding=${per('output_padding')}, dilation=${per('dilation')}${Number(n.attrs.groups) !== 1 ? `, groups=${Number(n.attrs.groups)}` : ''}${bias ? '' : ', bias=False'})`;
    }
    case 'embed': return `nn.Embedding(${Number(n.attrs.classes)}, ${Number(n.attrs.dim)})`;
    case 'attention': {
      const ctx = n.attrs.context_over ? graph.nodes[n.inputs[1]].axes : null;
      const cross = ctx ? `, context_dim=${size(ctx, 'c')}, context_axes=${tuple(names(ctx))}, context_over=${tuple(n.attrs.context_over as string[])}` : '';
      const dict = (v: unknown) => `{${Object.entries(v as Record<string, number>).map(([a, k]) => `'${a}': ${k}`).join(', ')}}`;
      const table = n.params.find((p) => p.path.endsWith('rel_bias'));
      const win = n.attrs.window ? `, window=${dict(n.attrs.window)}, shift=${dict(n.attrs.shift)}` : '';
      const padded = n.attrs.padded ? `, padded=${dict(n.attrs.padded)}` : '';
      const bw = table && n.attrs.bias_window ? `, bias_window=${dict(n.attrs.bias_window)}` : '';
      // the options are attributes only where the spec gives them
      const opts = [['qkv_bias', n.attrs.qkv_bias], ['out_bias', n.attrs.out_bias], ['dim_head', n.attrs.dim_head], ['qk_norm', n.attrs.qk_norm]]
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `, ${k}=${typeof v === 'boolean' ? (v ? 'True' : 'False') : typeof v === 'string' ? `'${v}'` : Number(v)}`).join('')
        + (n.attrs.rope ? `, rope=[${(n.attrs.rope as [string, number][]).map(([a, w]) => `('${a}', ${w})`).join(', ')}]` : '')
        + (n.attrs.causal ? ', causal=True' : '')
        + (n.attrs.key_mask ? `, key_mask_axes=${tuple(names(graph.nodes[n.inputs[n.inputs.length - 1]].axes))}` : '');
      return `Attention(${size(inAxes, 'c')}, heads=${Number(n.attrs.heads)}, axes=${tuple(names(inAxes))}, over=${tuple(n.attrs.over as string[])}${n.attrs.bias ? '' : ', bias=False'}${cross}${win}${padded}${table ? `, rel_bias=${table.shape[0]}` : ''}${bw}${opts})`;
    }
    default: throw new ExportError(`internal: no module for ${n.op}`);
  }
}

/** The supported attributes of a node, or why not. */
function unsupportedWhy(n: GraphNode): string | undefined {
  if (!SUPPORTED.has(n.op)) return n.op;
  if (n.op === 'conv' && (n.attrs.over as string[]).length > 3) return 'conv over more than 3 axes';
  return undefined;
}

/** x (over `axes`) padded with zeros to whole patches when the patchify node pads (pad: true). */
function padPatches(patchifyNode: GraphNode, x: string, axes: readonly AxisPair[]): string {
  if (patchifyNode.attrs.pad !== true) return x;
  const patch = patchifyNode.attrs.patch as Record<string, number>;
  const sizes = axes.map(([a, size]) => (patch[a] ? Math.ceil(size / patch[a]) * patch[a] : size));
  return `pad_to(${x}, [${sizes.join(', ')}], 0)`;
}

/** One node's statement in a class's forward: `name = expr`. */
function nodeExpr(ctx: Ctx, n: GraphNode, v: (id: number) => string, attr: string | undefined): string {
  const { graph } = ctx;
  const input = (i: number) => graph.nodes[n.inputs[i]];
  const outNames = names(n.axes);
  const keep = (expr: string, axes: readonly string[]) => alignExpr(expr, axes, outNames);
  const along = (mod: string, i: number, axis: string) => {
    const axes = names(input(i).axes);
    const dim = axes.indexOf(axis);
    const e = dim === axes.length - 1 ? `${mod}(${v(n.inputs[i])})` : `along(${mod}, ${v(n.inputs[i])}, ${dim})`;
    return keep(e, axes);
  };
  if (UNARY[n.op]) return keep(UNARY[n.op](v(n.inputs[0])), names(input(0).axes));
  if (BINARY[n.op]) {
    const op = BINARY[n.op];
    if (n.inputs.length === 1) {
      const x = alignExpr(v(n.inputs[0]), names(input(0).axes), outNames);
      const s = pyNum(Number(n.attrs.scalar));
      return n.attrs.side === 'left' ? `${s} ${op} ${x}` : `${x} ${op} ${s}`;
    }
    return n.inputs.map((id, i) => alignExpr(v(id), names(input(i).axes), outNames)).join(` ${op} `);
  }
  switch (n.op) {
    case 'linear': {
      const pe = patchEmbedOf(graph, n);
      if (pe) {
        const src = graph.nodes[input(0).inputs[0]];
        return keep(`conv_over(${accessOf(attr!)}, ${padPatches(input(0), v(src.id), src.axes)}, ${tuple(names(src.axes))}, ${tuple(pe.kernel.map((e) => e.axis))})`, names(src.axes));
      }
      if (Array.isArray(n.attrs.over)) {
        // several axes: x permuted to (others..., over...), the last ones flattened into the features
        const over = n.attrs.over as string[];
        const axes = names(input(0).axes);
        const order = [...axes.filter((a) => !over.includes(a)), ...over];
        const xs = `${v(n.inputs[0])}.permute(${order.map((a) => axes.indexOf(a)).join(', ')}).flatten(-${over.length})`;
        return keep(`${accessOf(attr!)}(${xs})`, [...order.slice(0, order.length - over.length), String(n.attrs.axis)]);
      }
      return along(accessOf(attr!), 0, String(n.attrs.axis));
    }
    case 'layernorm': {
      if (hasParams(n)) return along(accessOf(attr!), 0, String(n.attrs.axis));
      const axes = names(input(0).axes);
      const axis = String(n.attrs.axis);
      const c = input(0).axes.find(([m]) => m === axis)![1];
      const dim = axes.indexOf(axis);
      const x = v(n.inputs[0]);
      const e = dim === axes.length - 1 ? `F.layer_norm(${x}, (${c},), eps=${pyNum(Number(n.attrs.eps))})`
        : `F.layer_norm(${x}.movedim(${dim}, -1), (${c},), eps=${pyNum(Number(n.attrs.eps))}).movedim(-1, ${dim})`;
      return keep(e, axes);
    }
    case 'attention': {
      // the key mask (last input) by keyword: forward(x, context=None, key_mask=None)
      const args = n.inputs.map((i, k) => (n.attrs.key_mask && k === n.inputs.length - 1 ? `key_mask=${v(i)}` : v(i)));
      return keep(`${accessOf(attr!)}(${args.join(', ')})`, names(input(0).axes));
    }
    case 'conv':
    case 'conv_transpose': return keep(`conv_over(${accessOf(attr!)}, ${v(n.inputs[0])}, ${tuple(names(input(0).axes))}, ${tuple(n.attrs.over as string[])})`, names(input(0).axes));
    case 'groupnorm':
      return keep(`group_norm(${v(n.inputs[0])}, ${tuple(names(input(0).axes))}, ${tuple(n.attrs.over as string[])}, ${Number(n.attrs.groups)}, ${pyNum(Number(n.attrs.eps))}${hasParams(n) ? `, ${accessOf(attr!)}` : ''})`, names(input(0).axes));
    case 'mean': {
      const axes = names(input(0).axes);
      const over = n.attrs.over as string[];
      return keep(`${v(n.inputs[0])}.mean(dim=(${over.map((a) => axes.indexOf(a)).join(', ')}${over.length === 1 ? ',' : ''}))`, axes.filter((a) => !over.includes(a)));
    }
    case 'expand': {
      const axes = names(input(0).axes);
      const sizes = Object.entries(n.attrs.sizes as Record<string, number>);
      const x = v(n.inputs[0]);
      return keep(`${x}[(...${', None'.repeat(sizes.length)})].expand(*${x}.shape, ${sizes.map(([, k]) => k).join(', ')})`, [...axes, ...sizes.map(([a]) => a)]);
    }
    case 'rmsnorm': {
      if (hasParams(n)) return along(accessOf(attr!), 0, String(n.attrs.axis));
      const axes = names(input(0).axes);
      return keep(`rms_norm(${v(n.inputs[0])}, ${axes.indexOf(String(n.attrs.axis))}, ${pyNum(Number(n.attrs.eps))})`, axes);
    }
    case 'param': return keep(`${accessOf(attr!)}.weight`, names(n.axes));
    case 'slice': {
      const axes = names(input(0).axes);
      const start = Number(n.attrs.start);
      return keep(`${v(n.inputs[0])}.narrow(${axes.indexOf(String(n.attrs.axis))}, ${start}, ${Number(n.attrs.end) - start})`, axes);
    }
    case 'flatten': {
      // the merged axes moved last in the order listed, then flattened row-major
      const axes = names(input(0).axes);
      const over = n.attrs.over as string[];
      const kept = axes.filter((a) => !over.includes(a));
      const x = alignExpr(v(n.inputs[0]), axes, [...kept, ...over]);
      return keep(over.length > 1 ? `${x}.flatten(${kept.length})` : x, [...kept, String(n.attrs.into)]);
    }
    case 'unflatten': {
      // the split axis moved last, then read as the new axes (row-major)
      const axes = names(input(0).axes);
      const axis = String(n.attrs.axis);
      const kept = axes.filter((a) => a !== axis);
      const sizes = Object.entries(n.attrs.sizes as Record<string, number>);
      const x = alignExpr(v(n.inputs[0]), axes, [...kept, axis]);
      return keep(`${x}.unflatten(-1, (${sizes.map(([, k]) => k).join(', ')}${sizes.length === 1 ? ',' : ''}))`, [...kept, ...sizes.map(([a]) => a)]);
    }
    case 'flip': {
      const axes = names(input(0).axes);
      return keep(`${v(n.inputs[0])}.flip(${axes.indexOf(String(n.attrs.axis))})`, axes);
    }
    case 'gru': {
      const axes = names(input(0).axes);
      return keep(`${accessOf(attr!)}(${v(n.inputs[0])}, ${tuple(axes)}, '${String(n.attrs.over)}'${n.attrs.reverse ? ', reverse=True' : ''})`, axes);
    }
    case 'upsample':
    case 'pool': {
      const axes = names(input(0).axes);
      const k = Object.entries(n.attrs[n.op === 'pool' ? 'kernel' : 'factor'] as Record<string, number>).map(([a, f]) => `'${a}': ${f}`).join(', ');
      return keep(`${n.op}(${v(n.inputs[0])}, ${tuple(axes)}, {${k}}, '${String(n.attrs.mode)}')`, axes);
    }
    case 'concat': {
      const axis = String(n.attrs.axis);
      return `torch.cat([${n.inputs.map((id, i) => alignExpr(v(id), names(input(i).axes), outNames)).join(', ')}], dim=${outNames.indexOf(axis)})`;
    }
    case 'split': {
      const axes = names(input(0).axes);
      return keep(`${v(n.inputs[0])}.chunk(${Number(n.attrs.n)}, dim=${axes.indexOf(String(n.attrs.axis))})[${Number(n.attrs.index)}]`, axes);
    }
    case 'sinusoidal':
      return keep(`timestep_embedding(${v(n.inputs[0])}, ${Number(n.attrs.dim)}, max_period=${pyNum(Number(n.attrs.max_period))})`, [...names(input(0).axes), 'c']);
    case 'sincos': return `${accessOf(attr!)}`;
    case 'embed': return keep(`${accessOf(attr!)}(${v(n.inputs[0])}.long())`, [...names(input(0).axes), 'c']);
    case 'patchify':
    case 'unpatchify': {
      const axes = names(input(0).axes);
      const patch = Object.entries(n.attrs.patch as Record<string, number>).map(([a, p]) => `'${a}': ${p}`).join(', ');
      const x = n.op === 'patchify' ? padPatches(n, v(n.inputs[0]), input(0).axes) : v(n.inputs[0]);
      const order = Array.isArray(n.attrs.order) ? `, order=${tuple(n.attrs.order.map(String))}` : '';
      return keep(`${n.op}(${x}, ${tuple(axes)}, {${patch}}${order})`, axes);
    }
    default: throw new ExportError(`internal: ${n.op}`);
  }
}

function buildScopes(ctx: Ctx): Scope {
  const root: Scope = { path: '', nodes: [], children: new Map(), all: new Set(), first: Infinity, inputs: [], outputs: [] };
  const scopeAt = (path: string): Scope => {
    if (!path) return root;
    const parent = scopeAt(parentOf(path));
    const name = lastSegment(path);
    let s = parent.children.get(name);
    if (!s) { s = { path, nodes: [], children: new Map(), all: new Set(), first: Infinity, inputs: [], outputs: [] }; parent.children.set(name, s); }
    return s;
  };
  for (const n of ctx.graph.nodes) {
    if (n.op === 'input' || !ctx.needed.has(n.id)) continue;
    scopeAt(ctx.flat ? '' : parentOf(n.path)).nodes.push(n);
  }
  const fill = (s: Scope): void => {
    for (const c of s.children.values()) fill(c);
    s.all = new Set([...s.nodes.map((n) => n.id), ...[...s.children.values()].flatMap((c) => [...c.all])]);
    s.first = Math.min(...s.all);
    const ins = new Set<number>();
    const outs = new Set<number>();
    for (const id of s.all) {
      for (const r of ctx.reads(ctx.graph.nodes[id])) if (!s.all.has(r)) ins.add(r);
      if (ctx.outputs.has(id) || (ctx.consumers.get(id) ?? []).some((c) => ctx.needed.has(c) && !s.all.has(c))) outs.add(id);
    }
    s.inputs = [...ins].sort((a, b) => a - b);
    s.outputs = [...outs].sort((a, b) => a - b);
  };
  fill(root);
  return root;
}

const isList = (s: Scope) => s.nodes.length === 0 && s.children.size > 0 && [...s.children.keys()].every(isIndex);

/**
 * The argument at which each member of a list feeds the next, when the whole list (n members from
 * items[0]) can run as a Python loop: one class, one output each, read only by the next member, the
 * other arguments the same values. -1 when not.
 */
function loopOf(ctx: Ctx, items: readonly ({ kind: string; scope?: Scope; list?: string; index?: number })[], list: string, n: number): number {
  if (n < 2 || items.length < n) return -1;
  const members = items.slice(0, n);
  if (!members.every((m, k) => m.kind === 'scope' && m.list === list && m.index === k && m.scope!.className === members[0].scope!.className)) return -1;
  let at = -1;
  for (let k = 1; k < n; k++) {
    const prev = members[k - 1].scope!, next = members[k].scope!;
    if (prev.outputs.length !== 1 || next.inputs.length !== prev.inputs.length) return -1;
    const out = prev.outputs[0];
    const pos = next.inputs.indexOf(out);
    if (pos < 0 || (at >= 0 && pos !== at)) return -1;
    at = pos;
    if (!next.inputs.every((id, j) => j === pos || id === prev.inputs[j])) return -1;
    if (ctx.outputs.has(out) || (ctx.consumers.get(out) ?? []).some((c) => ctx.needed.has(c) && !next.all.has(c))) return -1;
  }
  return members[n - 1].scope!.outputs.length === 1 ? at : -1;
}

/** Generates the class of a scope (its children's first) and returns its name. */
function classOf(ctx: Ctx, s: Scope, rootName?: string): string {
  // Items: own nodes, child scopes, and the members of a child list, in order of their first node.
  type Item = { kind: 'node'; node: GraphNode; first: number } | { kind: 'scope'; scope: Scope; access: string; list?: string; index?: number; first: number };
  const items: Item[] = s.nodes.map((node) => ({ kind: 'node' as const, node, first: node.id }));
  const init: string[] = [];
  const modules = new Map<string, string>(); // relative attr path -> constructor
  for (const [name, c] of s.children) {
    if (modules.has(name) || s.nodes.some((n) => lastSegment(n.path) === name && (n.params.length || n.op === 'sincos'))) {
      throw new ExportError(`${c.path} is both a layer and a block; export cannot give both the name`);
    }
    if (isList(c)) {
      const members = [...c.children.entries()].sort((a, b) => Number(a[0]) - Number(b[0]));
      if (members.some(([k], i) => Number(k) !== i)) throw new ExportError(`${c.path}: its members are not numbered 0, 1, ...`);
      const cls = members.map(([, m]) => classOf(ctx, m));
      init.push(cls.every((x) => x === cls[0])
        ? `self.${name} = nn.ModuleList([${cls[0]}() for _ in range(${cls.length})])`
        : `self.${name} = nn.ModuleList([${cls.map((x) => `${x}()`).join(', ')}])`);
      members.forEach(([k, m]) => items.push({ kind: 'scope', scope: m, access: `self.${name}[${k}]`, list: name, index: Number(k), first: m.first }));
    } else {
      init.push(`self.${name} = ${classOf(ctx, c)}()`);
      items.push({ kind: 'scope', scope: c, access: `self.${name}`, first: c.first });
    }
  }
  items.sort((a, b) => a.first - b.first);
  // Layers and buffers of this scope.
  const attrs = new Map<number, string>();
  for (const n of s.nodes) {
    if (n.op === 'sincos') {
      const leaf = lastSegment(n.path);
      const over = n.attrs.over as string[];
      const scale = Array.isArray(n.attrs.scale) ? `, scales=(${(n.attrs.scale as number[]).map(pyNum).join(', ')}${over.length === 1 ? ',' : ''})` : '';
      init.push(`self.register_buffer('${leaf}', sincos_table((${over.map((a) => n.axes.find(([m]) => m === a)![1]).join(', ')}${over.length === 1 ? ',' : ''}), ${Number(n.attrs.dim)}${scale}), persistent=False)`);
      attrs.set(n.id, leaf);
    } else if (n.params.length) {
      const rel = attrPath(ctx, s.path, n);
      modules.set(rel, constructorOf(ctx.graph, n));
      attrs.set(n.id, rel);
    } else if (sharesOf(n).length) {
      // a later call of a shared module: the model lends it the first call's module (not registered
      // here, so the state dict holds the parameters once, under the first call's names)
      const path = sharesOf(n)[0].path;
      const owner = ctx.graph.nodes.find((m) => m.params.some((p) => p.path === path));
      if (!owner) throw new ExportError(`${n.path} shares ${path}, which no layer owns`);
      const ownerScope = ctx.flat ? '' : parentOf(owner.path);
      if (ownerScope === s.path) { attrs.set(n.id, attrPath(ctx, s.path, owner)); continue; }
      const key = lastSegment(n.path);
      if ([...attrs.values()].includes(`@${key}`)) throw new ExportError(`${s.path || 'the model'} has two shared layers named ${key}`);
      if (!init.includes('self._shared = {}')) init.unshift('self._shared = {}');
      attrs.set(n.id, `@${key}`);
      ctx.shareLinks.push(`${scopeAccess(s.path)}._shared['${key}'] = ${scopeAccess(ownerScope)}${accessOf(attrPath(ctx, ownerScope, owner)).slice(4)}`);
    }
  }
  // Nested containers for dotted attribute paths (a map's `adaLN_modulation.1`).
  type Tree = Map<string, Tree | string>;
  const tree: Tree = new Map();
  for (const [rel, ctor] of modules) {
    const segs = rel.split('.');
    let t = tree;
    segs.slice(0, -1).forEach((seg) => { if (!(t.get(seg) instanceof Map)) t.set(seg, new Map()); t = t.get(seg) as Tree; });
    t.set(segs[segs.length - 1], ctor);
  }
  const render = (t: Tree): string => `nn.ModuleDict({${[...t].map(([k, v]) => `'${k}': ${typeof v === 'string' ? v : render(v)}`).join(', ')}})`;
  for (const [k, v] of tree) init.push(`self.${k} = ${typeof v === 'string' ? v : render(v)}`);
  if (rootName) init.push(...ctx.shareLinks);

  // Names of values in forward.
  const used = new Set<string>(['self']);
  const fresh = (base: string) => {
    let b = base.replace(/[^A-Za-z0-9_]/g, '_');
    if (!/^[A-Za-z_]/.test(b) || PY_KEYWORDS.has(b)) b = `v_${b}`;
    let name = b;
    for (let i = 2; used.has(name); i++) name = `${b}_${i}`;
    used.add(name);
    return name;
  };
  const vars = new Map<number, string>();
  // A block's main argument (the first with the axes of its first output) is x.
  const firstOut = s.outputs[0] === undefined ? '' : names(ctx.graph.nodes[s.outputs[0]].axes).join();
  const main = s.path === '' ? -1 : s.inputs.findIndex((id) => names(ctx.graph.nodes[id].axes).join() === firstOut);
  const args = s.inputs.map((id, k) => {
    const n = ctx.graph.nodes[id];
    const name = fresh(n.op === 'input' ? String(n.attrs.name) : k === main ? 'x' : lastSegment(n.path));
    vars.set(id, name);
    return name;
  });
  const v = (id: number) => {
    const name = vars.get(id);
    if (name === undefined) throw new ExportError(`${ctx.graph.nodes[id].path} is read before it is computed in ${s.path || 'the model'}; export cannot order its blocks`);
    return name;
  };
  const body: string[] = [];
  const sig: unknown[] = [s.inputs.map((id) => ctx.graph.nodes[id].axes)];
  const ref = (id: number) => (s.all.has(id) ? `n${id - s.first}` : `a${s.inputs.indexOf(id)}`);
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    if (it.kind === 'node') {
      const n = it.node;
      const name = fresh(lastSegment(n.path));
      body.push(`${name} = ${nodeExpr(ctx, n, v, attrs.get(n.id))}`);
      vars.set(n.id, name);
      sig.push([n.op, n.attrs, n.axes, n.params.map((p) => p.shape), attrs.get(n.id), n.inputs.map(ref)]);
      continue;
    }
    // A whole list whose members share a class, each feeding the next one at the same argument: a loop.
    const argsOf = (m: Scope) => m.inputs.map((id) => v(id));
    const loop = it.list !== undefined && it.index === 0 ? loopOf(ctx, items.slice(i), it.list, s.children.get(it.list)!.children.size) : -1;
    if (loop >= 0) {
      const members = items.slice(i, i + s.children.get(it.list!)!.children.size) as (typeof it)[];
      const lastOut = members[members.length - 1].scope.outputs[0];
      const h = fresh('h');
      const a = argsOf(it.scope);
      const loopVar = fresh(singular(it.list!) === it.list ? 'layer' : singular(it.list!));
      body.push(`${h} = ${a[loop]}`, `for ${loopVar} in self.${it.list}:`, `    ${h} = ${loopVar}(${a.map((x, k) => (k === loop ? h : x)).join(', ')})`);
      vars.set(lastOut, h);
      sig.push(['loop', it.list, members.length, it.scope.className, it.scope.inputs.map(ref), ref(lastOut)]);
      i += members.length - 1;
      continue;
    }
    const outs = it.scope.outputs.map((id) => fresh(it.list !== undefined ? `${it.list}_${it.index}` : lastSegment(it.scope.path)));
    body.push(`${outs.length ? `${outs.join(', ')} = ` : ''}${it.access}(${argsOf(it.scope).join(', ')})`);
    it.scope.outputs.forEach((id, k) => vars.set(id, outs[k]));
    sig.push([it.scope.className, it.access, it.scope.inputs.map(ref), it.scope.outputs.map(ref)]);
  }
  const outputs = s.path === '' ? ctx.graph.outputs.map((o) => o.node) : s.outputs;
  if (s.path === '') {
    body.push(ctx.graph.outputs.length === 1 ? `return ${v(outputs[0])}`
      : `return {${ctx.graph.outputs.map((o) => `'${o.name}': ${v(o.node)}`).join(', ')}}`);
  } else {
    body.push(`return ${outputs.map(v).join(', ')}`);
  }
  sig.push(outputs.map(ref), init);
  const key = JSON.stringify(sig);
  const known = ctx.bySignature.get(key);
  if (known && !rootName) return (s.className = known);
  let name = rootName ?? camel(isIndex(lastSegment(s.path)) ? singular(lastSegment(parentOf(s.path))) : lastSegment(s.path));
  if (ctx.usedClassNames.has(name)) for (let i = 2; ; i++) if (!ctx.usedClassNames.has(`${name}${i}`)) { name = `${name}${i}`; break; }
  ctx.usedClassNames.add(name);
  ctx.bySignature.set(key, name);
  s.className = name;
  const argDoc = s.inputs.map((id, k) => `${args[k]} [${ctx.graph.nodes[id].axes.map(([a, n]) => `${a}=${n}`).join(', ')}]`).join(', ');
  const outDoc = outputs.map((id) => `[${ctx.graph.nodes[id].axes.map(([a, n]) => `${a}=${n}`).join(', ')}]`).join(', ');
  const doc = rootName ? `Model ${ctx.graph.model} of ${ctx.graph.file.replace(/^.*[\\/]/, '')}` : `${s.path.replace(/\.\d+(\.|$)/g, '.N$1')} in vdm's dotted names`;
  ctx.classes.push([
    `class ${name}(nn.Module):`,
    `    """${doc}: ${argDoc} -> ${outDoc}."""`,
    '',
    '    def __init__(self):',
    '        super().__init__()',
    ...(init.length ? init.map((l) => `        ${l}`) : ['        pass']),
    '',
    `    def forward(self${args.map((a) => `, ${a}`).join('')}):`,
    ...body.map((l) => `        ${l}`),
  ].join('\n'));
  return name;
}

export interface ExportResult {
  readonly source: string;
  readonly className: string;
  readonly classes: number;
}

/** The Python source of the model as a PyTorch module, with the diffusion objective when the spec has one. */
export function exportTorch(graph: Graph, options: { readonly map?: NameMap; readonly command?: string } = {}): ExportResult {
  if (options.map && !onlyRenames(options.map)) {
    throw new ExportError(`map ${options.map.name} splits or reorders tensors (a packed qkv as to_q, to_k, to_v, say), which the exported module keeps whole; export without the map and convert the checkpoint with vdm convert --map ${options.map.name}`);
  }
  const bad = new Map<string, string[]>();
  for (const n of graph.nodes) {
    const why = unsupportedWhy(n);
    if (why) bad.set(why, [...(bad.get(why) ?? []), n.path]);
  }
  if (bad.size) {
    throw new ExportError(`model ${graph.model} uses what vdm export torch does not write yet: ${[...bad].map(([why, paths]) => `${why} (${paths.slice(0, 3).join(', ')}${paths.length > 3 ? `, ... ${paths.length} in all` : ''})`).join('; ')}`);
  }
  const reads = readsOf(graph);
  const consumers = new Map<number, number[]>();
  for (const n of graph.nodes) for (const r of reads(n)) consumers.set(r, [...(consumers.get(r) ?? []), n.id]);
  const outputs = new Set(graph.outputs.map((o) => o.node));
  const needed = new Set<number>();
  const stack = [...outputs];
  while (stack.length) {
    const id = stack.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    stack.push(...reads(graph.nodes[id]));
  }
  const className = graph.model.replace(/[^A-Za-z0-9_]/g, '_');
  const build = (flat: boolean): Ctx => {
    const ctx: Ctx = { graph, flat, map: options.map ?? IDENTITY_MAP, needed, reads, consumers, outputs, classes: [], bySignature: new Map(), usedClassNames: new Set(), shareLinks: [] };
    const root = buildScopes(ctx);
    // The model's forward takes every input, in declared order, used or not.
    root.inputs = graph.inputs.map((i) => graph.nodes.find((n) => n.op === 'input' && n.attrs.name === i.name)!.id);
    classOf(ctx, root, className);
    return ctx;
  };
  let ctx: Ctx;
  try {
    ctx = build(false);
  } catch (e) {
    // Blocks whose computations interleave (a shared module's first call named apart from the loop
    // that makes it) cannot run as units: every node in graph order in the model's class instead.
    if (!(e instanceof ExportError && / is read before it is computed in /.test(e.message))) throw e;
    ctx = build(true);
  }
  const header = `# ${className}: model ${graph.model} of ${graph.file.replace(/^.*[\\/]/, '')}, written by vdm export torch${options.command ? ` (${options.command})` : ''}.
# Tensors are laid out over vdm's named axes in the order the spec declares them (${graph.inputs.map((i) => `${i.name} [${names(i.axes).join(', ')}]`).join(', ')});
# parameter names are ${options.map && options.map.rules.length ? `those of map ${options.map.name}` : "vdm's dotted paths"} in PyTorch's layout (nn.Linear [out, in]); vdm convert
# --to torch writes a vdm checkpoint this way, and converts this module's state_dict back.
`;
  const objective = graph.diffusion ? objectiveSource(graph, graph.diffusion) : '';
  return { source: `${header}${PRELUDE}\n\n${ctx.classes.join('\n\n\n')}\n${objective}`, className, classes: ctx.classes.length };
}
