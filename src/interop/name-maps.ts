// Name maps between vdm's dotted parameter paths and the names of another implementation's state
// dict. A map is a list of rules, each a pair of patterns over dotted names: `{n}` stands for one
// segment, `{n*}` for one or more; the first rule whose pattern matches a name rewrites it, and a
// name no rule matches stays as it is. `ignore` names tensors of the other side that vdm computes
// itself (a fixed position table), which conversion lists instead of refusing.
//
// A rule may also convert by rule where the other implementation lays a tensor out differently:
// `torch` a list of names splits the tensor into equal parts along the first axis of PyTorch's
// layout (a packed qkv as to_q, to_k, to_v), `features` reorders its last axis (neighbours
// concatenated in another order than the spec's patchify; a group of -1 is what the others leave,
// and `axis: "first"` reorders a Linear's outputs instead, its weight's rows and its bias), `op` limits a rule to the
// parameters of one kind of layer (an attention's proj, not a patch embedding's), and
// `kernel: "full"` keeps a patch embedding's size-1 patch axes in its conv kernel (Open-Sora's
// Conv3d [out, C, 1, 2, 2], where DiT's Conv2d is [out, C, 2, 2]; the values are the same).
//
// A user's map is a JSON file:
//   { "rules": [ { "vdm": "blocks.{n}.ada.{p*}", "torch": "blocks.{n}.adaLN_modulation.1.{p*}" } ],
//     "ignore": [ { "torch": "pos_embed", "why": "a fixed sin-cos table" } ] }
import fs from 'node:fs';

export class NameMapError extends Error {
  override name = 'NameMapError';
}

export interface NameRule {
  readonly vdm: string;
  /** the other side's name; several: equal parts along the first axis of PyTorch's layout, in order */
  readonly torch: string | readonly string[];
  /** only parameters of a layer of this op (attention, linear, conv, ...) */
  readonly op?: string;
  /**
   * The last axis of PyTorch's layout (`axis: "first"`: the first, a Linear's outputs) is, in vdm's
   * order, [groups[0], groups[1], ..., rest]; the other implementation orders the groups as `order`
   * lists them (its first group is vdm's order[0]). One group may be -1: what the others leave.
   */
  readonly features?: { readonly groups: readonly number[]; readonly order: readonly number[]; readonly axis?: 'first' | 'last' };
  /** "full": a patch embedding's conv kernel keeps its size-1 patch axes ([out, C, 1, 2, 2]) */
  readonly kernel?: 'full';
}

export interface IgnoredName {
  readonly torch: string;
  readonly why: string;
}

export interface NameMap {
  readonly name: string;
  readonly rules: readonly NameRule[];
  readonly ignore: readonly IgnoredName[];
}

/** The names of the official DiT implementation (facebookresearch/DiT, models.py). */
const DIT_RULES: readonly NameRule[] = [
  { vdm: 't_embedder.fc1.{p*}', torch: 't_embedder.mlp.0.{p*}' },
  { vdm: 't_embedder.fc2.{p*}', torch: 't_embedder.mlp.2.{p*}' },
  { vdm: 'blocks.{n}.ada.{p*}', torch: 'blocks.{n}.adaLN_modulation.1.{p*}' },
  { vdm: 'final_layer.ada.{p*}', torch: 'final_layer.adaLN_modulation.1.{p*}' },
];
const DIT: NameMap = {
  name: 'dit',
  rules: DIT_RULES,
  ignore: [{ torch: 'pos_embed', why: 'the fixed 2D sin-cos position table, which vdm computes (sincos)' }],
};

/**
 * The names of the official Latte implementation (Vchitect/Latte, models/latte.py): DiT's blocks
 * (spatial and temporal ones alternating in one list), with a fixed temporal table beside the
 * spatial one.
 */
const LATTE: NameMap = {
  name: 'latte',
  rules: DIT_RULES,
  ignore: [
    { torch: 'pos_embed', why: 'the fixed 2D sin-cos position table, which vdm computes (sincos)' },
    { torch: 'temp_embed', why: 'the fixed 1D sin-cos table over frames, which vdm computes (sincos over t)' },
  ],
};

/**
 * The names of the official Video Swin Transformer (SwinTransformer/Video-Swin-Transformer, mmaction
 * Recognizer3D with SwinTransformer3D as `backbone`): the backbone's parameters under `backbone.`;
 * the relative-position table is relative_position_bias_table (the same [prod(2w - 1), heads] rows,
 * query minus key, t most significant); patch merging concatenates the 2 x 2 neighbours in the
 * official order (std/swin.vdm's patch_merging does too), so every tensor is taken as it is. The
 * denoiser's own layers (time_proj, the decoder up.*, head) have no counterpart and keep vdm's names.
 */
const SWIN: NameMap = {
  name: 'swin',
  rules: [
    { vdm: 'patch_embed.{p*}', torch: 'backbone.patch_embed.{p*}' },
    { vdm: 'layers.{n}.blocks.{m}.attn.rel_bias', torch: 'backbone.layers.{n}.blocks.{m}.attn.relative_position_bias_table' },
    { vdm: 'layers.{n}.blocks.{p*}', torch: 'backbone.layers.{n}.blocks.{p*}' },
    { vdm: 'layers.{n}.downsample.{p*}', torch: 'backbone.layers.{n}.downsample.{p*}' },
    { vdm: 'norm.{p}', torch: 'backbone.norm.{p}' },
  ],
  ignore: [
    { torch: 'backbone.layers.{n}.blocks.{m}.attn.relative_position_index', why: 'the table index of each window pair, which vdm derives from the window' },
    { torch: 'cls_head.{p*}', why: 'the classification head, which the denoiser does not have' },
  ],
};

/** A rule for a module named `at` anywhere: at the top level and under any prefix. */
const anywhere = (at: string, to: string | readonly string[], op?: string): NameRule[] => {
  const under = (s: string) => `{scope*}.${s}`;
  return [
    { vdm: `${at}.{p}`, torch: typeof to === 'string' ? `${to}.{p}` : to.map((t) => `${t}.{p}`), op },
    { vdm: under(`${at}.{p}`), torch: typeof to === 'string' ? under(`${to}.{p}`) : to.map((t) => under(`${t}.{p}`)), op },
  ];
};

/**
 * diffusers' naming of the layers it shares with vdm's blocks (diffusers models/attention_processor.py
 * Attention, attention.py FeedForward, resnet.py ResnetBlock2D, embeddings.py TimestepEmbedding),
 * applied wherever they fit: an attention's packed qkv becomes to_q, to_k, to_v (a cross-attention's
 * q and kv: to_q and to_k, to_v) and its proj to_out.0; an MLP's fc1 / fc2 ff.net.0.proj / ff.net.2;
 * a ResBlock's temb_proj time_emb_proj and skip conv_shortcut (norm1, conv1, norm2, conv2 as they
 * are); a timestep embedder's fc1 / fc2 linear_1 / linear_2. Other layers keep vdm's names.
 */
const DIFFUSERS: NameMap = {
  name: 'diffusers',
  rules: [
    ...anywhere('qkv', ['to_q', 'to_k', 'to_v'], 'attention'),
    ...anywhere('q', 'to_q', 'attention'),
    ...anywhere('kv', ['to_k', 'to_v'], 'attention'),
    ...anywhere('proj', 'to_out.0', 'attention'),
    ...anywhere('mlp.fc1', 'ff.net.0.proj', 'linear'),
    ...anywhere('mlp.fc2', 'ff.net.2', 'linear'),
    ...anywhere('temb_proj', 'time_emb_proj', 'linear'),
    ...anywhere('skip', 'conv_shortcut', 'conv'),
    ...anywhere('fc1', 'linear_1', 'linear'),
    ...anywhere('fc2', 'linear_2', 'linear'),
  ],
  ignore: [],
};

/**
 * The names of Open-Sora 1.2's STDiT3 (hpcaitech/Open-Sora, opensora/models/stdit/stdit3.py) for
 * specs/stdit3-xl-2.vdm: the interleaved `blocks.N.spatial` / `blocks.N.temporal` are the official
 * spatial_blocks.N / temporal_blocks.N, a cross-attention's q and kv its q_linear and kv_linear, the
 * adaLN-single tables bare parameters (scale_shift_table, no .weight), the timestep and fps
 * embedders timm-style mlp.0 / mlp.2, the caption MLP y_embedder.y_proj, t_block a Sequential's
 * Linear (t_block.1) and the patch embedding a Conv3d with kernel (1, p, p).
 */
const blocksOf = (kind: string): NameRule[] => [
  { vdm: `blocks.{n}.${kind}.scale_shift_table.weight`, torch: `${kind}_blocks.{n}.scale_shift_table` },
  { vdm: `blocks.{n}.${kind}.cross_attn.q.{p}`, torch: `${kind}_blocks.{n}.cross_attn.q_linear.{p}`, op: 'attention' },
  { vdm: `blocks.{n}.${kind}.cross_attn.kv.{p}`, torch: `${kind}_blocks.{n}.cross_attn.kv_linear.{p}`, op: 'attention' },
  { vdm: `blocks.{n}.${kind}.{p*}`, torch: `${kind}_blocks.{n}.{p*}` },
];
const OPENSORA: NameMap = {
  name: 'opensora',
  rules: [
    { vdm: 'x_embedder.proj.{p}', torch: 'x_embedder.proj.{p}', kernel: 'full' },
    { vdm: 't_embedder.fc1.{p}', torch: 't_embedder.mlp.0.{p}' },
    { vdm: 't_embedder.fc2.{p}', torch: 't_embedder.mlp.2.{p}' },
    { vdm: 'fps_embedder.fc1.{p}', torch: 'fps_embedder.mlp.0.{p}' },
    { vdm: 'fps_embedder.fc2.{p}', torch: 'fps_embedder.mlp.2.{p}' },
    { vdm: 't_block.{p}', torch: 't_block.1.{p}' },
    { vdm: 'y_embedder.{p*}', torch: 'y_embedder.y_proj.{p*}' },
    ...blocksOf('spatial'),
    ...blocksOf('temporal'),
    { vdm: 'final_layer.scale_shift_table.weight', torch: 'final_layer.scale_shift_table' },
  ],
  ignore: [
    { torch: 'rope.freqs', why: "RoPE's fixed frequencies (an untrained nn.Parameter), which vdm computes" },
    { torch: 'y_embedder.y_embedding', why: 'the learned null caption of classifier-free guidance, a buffer; vdm drops a caption by zeroing it' },
    { torch: 'pos_embed.inv_freq', why: "the fixed frequencies of the 2D sin-cos table, which vdm computes (sincos)" },
  ],
};

/**
 * The names of diffusers' CogVideoXTransformer3DModel (models/transformers/cogvideox_transformer_3d.py,
 * CogVideoX 1.0: patch_size 2, no patch_size_t) for specs/cogvideox-2b.vdm: attn1's to_q, to_k, to_v
 * are vdm's one qkv (columns q | k | v; joined on the way in, split on the way out), to_out.0 its
 * proj, norm_q / norm_k its q_norm / k_norm; ff.net.0.proj / ff.net.2 are ff.fc1 / ff.fc2;
 * time_embedding.linear_1 / linear_2 fc1 / fc2; norm_final, norm_out and proj_out sit at the top
 * level. proj_out's outputs are (c, p_h, p_w) there (unpatchify reshapes them to [.., c, p, p]) and
 * (p_h, p_w, c) in vdm: reordered by rule. patch_embed.proj is a Conv2d [d, C, p, p], the layout of
 * vdm's patchify + linear by rule; norm1 / norm2 (linear, norm) and text_proj keep their names.
 */
const COGVIDEOX_P = 2;
const COGVIDEOX: NameMap = {
  name: 'cogvideox',
  rules: [
    { vdm: 'time_embedding.fc1.{p}', torch: 'time_embedding.linear_1.{p}' },
    { vdm: 'time_embedding.fc2.{p}', torch: 'time_embedding.linear_2.{p}' },
    { vdm: 'transformer_blocks.{n}.attn1.qkv.{p}', torch: ['q', 'k', 'v'].map((x) => `transformer_blocks.{n}.attn1.to_${x}.{p}`), op: 'attention' },
    { vdm: 'transformer_blocks.{n}.attn1.proj.{p}', torch: 'transformer_blocks.{n}.attn1.to_out.0.{p}', op: 'attention' },
    { vdm: 'transformer_blocks.{n}.attn1.q_norm.{p}', torch: 'transformer_blocks.{n}.attn1.norm_q.{p}', op: 'attention' },
    { vdm: 'transformer_blocks.{n}.attn1.k_norm.{p}', torch: 'transformer_blocks.{n}.attn1.norm_k.{p}', op: 'attention' },
    { vdm: 'transformer_blocks.{n}.ff.fc1.{p}', torch: 'transformer_blocks.{n}.ff.net.0.proj.{p}' },
    { vdm: 'transformer_blocks.{n}.ff.fc2.{p}', torch: 'transformer_blocks.{n}.ff.net.2.{p}' },
    {
      vdm: 'final_layer.proj_out.{p}', torch: 'proj_out.{p}',
      features: { groups: [COGVIDEOX_P, COGVIDEOX_P, -1], order: [2, 0, 1], axis: 'first' },
    },
    { vdm: 'final_layer.{p*}', torch: '{p*}' },
  ],
  ignore: [
    { torch: 'patch_embed.pos_embedding', why: 'the fixed 3D sin-cos table (a buffer), which vdm computes (sincos over t, h, w)' },
  ],
};

/** The maps `--map NAME` selects. */
export const BUILTIN_MAPS: Readonly<Record<string, NameMap>> = { dit: DIT, latte: LATTE, swin: SWIN, diffusers: DIFFUSERS, opensora: OPENSORA, cogvideox: COGVIDEOX };

/** The identity: vdm's own names. */
export const IDENTITY_MAP: NameMap = { name: 'vdm', rules: [], ignore: [] };

interface Compiled {
  readonly re: RegExp;
  readonly names: readonly string[];
}

const compiledCache = new Map<string, Compiled>();

/** A pattern as a regular expression over a whole name; its placeholders in order. */
function compile(pattern: string): Compiled {
  const hit = compiledCache.get(pattern);
  if (hit) return hit;
  const names: string[] = [];
  let re = '';
  let last = 0;
  for (const m of pattern.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}/g)) {
    re += pattern.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    re += m[2] ? '(.+)' : '([^.]+)';
    names.push(m[1]);
    last = m.index! + m[0].length;
  }
  re += pattern.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const out = { re: new RegExp(`^${re}$`), names };
  compiledCache.set(pattern, out);
  return out;
}

function rewrite(name: string, from: string, to: string): string | undefined {
  const { re, names } = compile(from);
  const m = re.exec(name);
  if (!m) return undefined;
  const values = new Map(names.map((n, i) => [n, m[i + 1]]));
  return to.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\*?\}/g, (_, n: string) => values.get(n) ?? '');
}

/** How one parameter is named on the other side: its names (several: equal parts) and the rule. */
export interface MappedName {
  readonly names: readonly string[];
  readonly rule?: NameRule;
}

const torchSides = (r: NameRule): readonly string[] => (typeof r.torch === 'string' ? [r.torch] : r.torch);

/** vdm's dotted path (of a layer of `op`, when known) -> the other side's names. */
export function mapName(map: NameMap, path: string, op?: string): MappedName {
  for (const r of map.rules) {
    if (r.op !== undefined && r.op !== op) continue;
    const names = torchSides(r).map((t) => rewrite(path, r.vdm, t));
    if (names[0] !== undefined) return { names: names as string[], rule: r };
  }
  return { names: [path] };
}

/** vdm's dotted path -> the other side's name (the first part's, for a rule that splits). */
export function toTorchName(map: NameMap, path: string, op?: string): string {
  return mapName(map, path, op).names[0];
}

/** The other side's name -> vdm's dotted path (rules limited to an op apply when `op` is that op or undefined). */
export function toVdmName(map: NameMap, name: string, op?: string): string {
  for (const r of map.rules) {
    if (r.op !== undefined && op !== undefined && r.op !== op) continue;
    for (const t of torchSides(r)) {
      const out = rewrite(name, t, r.vdm);
      if (out !== undefined) return out;
    }
  }
  return name;
}

/** Whether a map only renames (no split, no reordering): what vdm export torch can build a module from. */
export const onlyRenames = (map: NameMap) => map.rules.every((r) => typeof r.torch === 'string' && !r.features && !r.kernel);

/** Why a tensor of the other side is ignored, or undefined. */
export function ignoredWhy(map: NameMap, name: string): string | undefined {
  return map.ignore.find((i) => compile(i.torch).re.test(name))?.why;
}

/** Checks a map's placeholders: each side of a rule names the same ones. */
function validate(map: NameMap, where: string): NameMap {
  for (const r of map.rules) {
    const a = [...compile(r.vdm).names].sort().join();
    for (const t of torchSides(r)) {
      const b = [...compile(t).names].sort().join();
      if (a !== b) throw new NameMapError(`${where}: rule ${JSON.stringify(r)}: both sides must use the same placeholders ({${a}} vs {${b}})`);
    }
    if (!torchSides(r).length) throw new NameMapError(`${where}: rule ${JSON.stringify(r)}: "torch" names no tensor`);
    if (r.features) {
      const { groups, order, axis } = r.features;
      const ok = groups.length > 0 && groups.every((g) => Number.isInteger(g) && (g > 0 || g === -1)) && groups.filter((g) => g === -1).length <= 1
        && [...order].sort().join() === groups.map((_, i) => i).join() && (axis === undefined || axis === 'first' || axis === 'last');
      if (!ok) throw new NameMapError(`${where}: rule ${JSON.stringify(r)}: "features" needs positive integer groups (one may be -1, the rest), an order that lists each group once and an axis "first" or "last"`);
    }
  }
  return map;
}

/** `--map NAME` (built in) or `--map FILE.json` (a user's map); undefined: vdm's own names. */
export function loadNameMap(spec: string | undefined): NameMap {
  if (spec === undefined || spec === '' || spec === 'vdm') return IDENTITY_MAP;
  if (Object.hasOwn(BUILTIN_MAPS, spec)) return BUILTIN_MAPS[spec];
  if (!/\.json$/i.test(spec)) {
    throw new NameMapError(`--map ${spec}: no such built-in map (built in: ${Object.keys(BUILTIN_MAPS).join(', ')}); a map of your own is a .json file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(spec, 'utf8'));
  } catch (e) {
    throw new NameMapError(`--map ${spec}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const bad = (what: string) => new NameMapError(`--map ${spec}: ${what}; expected {"rules": [{"vdm": "a.{n}.b.{p*}", "torch": "a.{n}.c.{p*}"}], "ignore": [{"torch": "name", "why": "..."}]}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const o = json as { rules?: unknown; ignore?: unknown };
  const rules = o.rules ?? [];
  const ignore = o.ignore ?? [];
  const isName = (t: unknown) => typeof t === 'string' || (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === 'string'));
  if (!Array.isArray(rules) || !rules.every((r) => r && typeof r.vdm === 'string' && isName(r.torch) && (r.op === undefined || typeof r.op === 'string')
    && (r.features === undefined || (Array.isArray(r.features.groups) && Array.isArray(r.features.order)))
    && (r.kernel === undefined || r.kernel === 'full'))) {
    throw bad('"rules" must be a list of {"vdm", "torch"} patterns ("torch" a name or a list of names; optional "op", "features": {"groups", "order", "axis"}, "kernel": "full")');
  }
  if (!Array.isArray(ignore) || !ignore.every((r) => r && typeof r.torch === 'string')) throw bad('"ignore" must be a list of {"torch", "why"}');
  return validate({
    name: spec,
    rules: rules.map((r: NameRule) => ({ vdm: r.vdm, torch: r.torch, ...(r.op !== undefined ? { op: r.op } : {}), ...(r.features ? { features: { groups: [...r.features.groups], order: [...r.features.order], ...(r.features.axis !== undefined ? { axis: r.features.axis } : {}) } } : {}), ...(r.kernel ? { kernel: r.kernel } : {}) })),
    ignore: ignore.map((r: { torch: string; why?: unknown }) => ({ torch: r.torch, why: typeof r.why === 'string' ? r.why : 'ignored by the map' })),
  }, `--map ${spec}`);
}
