// The fixed Python of an exported PyTorch module: imports, the helpers its blocks call (patchify,
// unpatchify, convolution, group norm, upsampling and pooling over named axes, multi-head attention, the sinusoidal tables) and the diffusion
// objective. Each helper follows the convention of the vdm primitive it stands for
// (docs/architecture.md: patch offsets outermost and the channel innermost, q | k | v columns,
// cos | sin timestep frequencies, sin | cos position tables).
import type { DiffusionSpec } from '../compiler/ir/diffusion-spec.ts';
import type { Graph } from '../compiler/ir/graph.ts';

export const PRELUDE = `import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def patch_order(patch, order=None):
    """The patch axes in the order vdm lays their offsets out: \`order\` where given, else t, h, w, then any other."""
    if order is not None:
        return list(order)
    return [a for a in ('t', 'h', 'w') if a in patch] + [a for a in patch if a not in ('t', 'h', 'w')]


def patchify(x, axes, patch, order=None):
    """x over \`axes\` -> the same axes, each patched axis divided by its patch size and c holding
    ((dt * ph + dh) * pw + dw) * C + c: the patch offsets outermost (in \`order\`), the channel innermost."""
    order = patch_order(patch, order)
    sizes = dict(zip(axes, x.shape))
    shape, names = [], []
    for a, n in zip(axes, x.shape):
        if a in patch:
            shape += [n // patch[a], patch[a]]
            names += [a, 'p_' + a]
        else:
            shape.append(n)
            names.append(a)
    target = []
    for a in axes:
        target += ['p_' + o for o in order] + ['c'] if a == 'c' else [a]
    x = x.reshape(shape).permute([names.index(n) for n in target])
    return x.reshape([sizes[a] * math.prod(patch.values()) if a == 'c' else sizes[a] // patch.get(a, 1) for a in axes])


def unpatchify(x, axes, patch, order=None):
    """The inverse of patchify: c = prod(patch) * C -> C, each patched axis multiplied back."""
    order = patch_order(patch, order)
    sizes = dict(zip(axes, x.shape))
    channels = sizes['c'] // math.prod(patch.values())
    shape, names = [], []
    for a, n in zip(axes, x.shape):
        if a == 'c':
            shape += [patch[o] for o in order] + [channels]
            names += ['p_' + o for o in order] + ['c']
        else:
            shape.append(n)
            names.append(a)
    target = []
    for a in axes:
        target += [a, 'p_' + a] if a in patch else [a]
    x = x.reshape(shape).permute([names.index(n) for n in target])
    return x.reshape([channels if a == 'c' else sizes[a] * patch.get(a, 1) for a in axes])


def conv_over(conv, x, axes, over):
    """The convolution \`conv\` (nn.Conv1d/2d/3d or nn.ConvTranspose1d/2d/3d) over the \`over\` axes of
    x, every other axis but c a batch axis; a patch embedding is one with stride = kernel = the patch."""
    batch = [a for a in axes if a != 'c' and a not in over]
    order = batch + ['c'] + list(over)
    x = x.permute([axes.index(a) for a in order])
    lead = x.shape[:len(batch)]
    y = conv(x.reshape(-1, *x.shape[len(batch):]))
    y = y.reshape(*lead, *y.shape[1:])
    return y.permute([order.index(a) for a in axes])


def group_norm(x, axes, over, groups, eps, norm=None):
    """Normalises each group of c / groups channels over them and the \`over\` axes (the others are
    batch axes), biased variance; then norm's per-channel weight and bias (an nn.GroupNorm) if given."""
    batch = [a for a in axes if a != 'c' and a not in over]
    order = batch + ['c'] + list(over)
    y = x.permute([axes.index(a) for a in order])
    shape = y.shape
    g = y.reshape(math.prod(shape[:len(batch)]), groups, -1)
    mean = g.mean(-1, keepdim=True)
    var = ((g - mean) ** 2).mean(-1, keepdim=True)
    y = ((g - mean) / torch.sqrt(var + eps)).reshape(shape)
    if norm is not None:
        view = [1] * len(shape)
        view[len(batch)] = -1
        if norm.weight is not None:
            y = y * norm.weight.reshape(view)
        if norm.bias is not None:
            y = y + norm.bias.reshape(view)
    return y.permute([order.index(a) for a in axes])


def upsample(x, axes, factor, mode):
    """Each axis a of \`factor\` enlarged f times: nearest copies; linear interpolates with half-pixel
    centres (align_corners=False), one axis after the other."""
    for a, f in factor.items():
        if f == 1:
            continue
        d = axes.index(a)
        n = x.shape[d]
        if mode != 'linear':
            x = x.repeat_interleave(f, dim=d)
            continue
        o = torch.arange(n * f, dtype=torch.float64, device=x.device)
        s = ((o + 0.5) / f - 0.5).clamp(min=0)
        i0 = s.floor().long().clamp(max=n - 1)
        i1 = (i0 + 1).clamp(max=n - 1)
        shape = [1] * x.dim()
        shape[d] = n * f
        w = (s - i0).to(x.dtype).reshape(shape)
        x = x.index_select(d, i0) * (1 - w) + x.index_select(d, i1) * w
    return x


def pool(x, axes, kernel, mode):
    """Non-overlapping average or max pooling, kernel k along each axis a of \`kernel\` (a ragged
    tail is dropped)."""
    for a, k in kernel.items():
        if k == 1:
            continue
        d = axes.index(a)
        n = x.shape[d] // k
        x = x.narrow(d, 0, n * k).reshape(*x.shape[:d], n, k, *x.shape[d + 1:])
        x = x.amax(dim=d + 1) if mode == 'max' else x.mean(dim=d + 1)
    return x


class GRU(nn.Module):
    """A one-layer GRU over the axis \`over\` of x (every other axis but c a batch axis), as PyTorch's
    nn.GRU computes it (gates r, z, n; weights [3 * hidden, in]), from a zero state; \`reverse\` runs
    from the last step to the first, each output kept at its own step."""

    def __init__(self, channels, hidden):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden, channels))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.zeros(3 * hidden))
        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden))
        bound = hidden ** -0.5
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, -bound, bound)

    def forward(self, x, axes, over, reverse=False):
        batch = [a for a in axes if a != 'c' and a != over]
        order = batch + [over, 'c']
        x = x.permute([axes.index(a) for a in order])
        shape = x.shape
        x = x.reshape(-1, shape[-2], shape[-1])
        H = self.weight_hh.shape[1]
        h = x.new_zeros(x.shape[0], H)
        out = [None] * x.shape[1]
        steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
        for s in steps:
            xr, xz, xn = F.linear(x[:, s], self.weight_ih, self.bias_ih).chunk(3, dim=-1)
            hr, hz, hn = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            h = (1 - z) * torch.tanh(xn + r * hn) + z * h
            out[s] = h
        y = torch.stack(out, dim=1).reshape(*shape[:-1], H)
        return y.permute([order.index(a) for a in axes])


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) along one axis, times a learned per-channel weight."""

    def __init__(self, channels, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        return rms_norm(x, -1, self.eps) * self.weight


def rms_norm(x, dim, eps):
    return x / torch.sqrt((x * x).mean(dim=dim, keepdim=True) + eps)


class Param(nn.Module):
    """A free learned tensor (vdm's param), its values in \`weight\`."""

    def __init__(self, *sizes):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(*sizes) * 0.02)


def pad_to(x, sizes, start):
    """x with its axes start, start + 1, ... padded with zeros after their ends to \`sizes\`."""
    pad = []
    for d in reversed(range(x.dim())):
        i = d - start
        pad += [0, sizes[i] - x.shape[d]] if 0 <= i < len(sizes) else [0, 0]
    return F.pad(x, pad) if any(pad) else x


def along(module, x, dim):
    """Applies a module that works on the last axis (nn.Linear, nn.LayerNorm) along axis \`dim\`."""
    if dim == x.dim() - 1 or dim == -1:
        return module(x)
    return module(x.movedim(dim, -1)).movedim(-1, dim)


def timestep_embedding(s, dim, max_period=10000):
    """cos | sin of s * max_period^(-k / half), k < half = dim // 2 (zero-padded to an odd dim)."""
    half = dim // 2
    dtype = s.dtype if s.is_floating_point() else torch.get_default_dtype()
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64, device=s.device) / half)
    args = s.to(torch.float64)[..., None] * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[..., :1])], dim=-1)
    return emb.to(dtype)


def sincos_table(sizes, dim, scales=None):
    """The fixed sin-cos position table [*sizes, dim] (MAE / DiT): over (h, w) the first half of the
    channels encodes w and the second h; over (t, h, w) a quarter t, then 3/8 w and 3/8 h; each
    block is sin | cos of position * scale * 10000^(-k / half) (scale per axis, default 1)."""
    blocks = {1: [(0, dim)], 2: [(1, dim // 2), (0, dim // 2)],
              3: [(0, dim // 4), (2, 3 * dim // 8), (1, 3 * dim // 8)]}[len(sizes)]
    scales = scales or (1,) * len(sizes)
    coords = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) * k for n, k in zip(sizes, scales)], indexing='ij')
    parts = []
    for axis, channels in blocks:
        half = channels // 2
        omega = 1.0 / 10000 ** (torch.arange(half, dtype=torch.float64) / half)
        arg = coords[axis][..., None] * omega
        parts += [torch.sin(arg), torch.cos(arg)]
    return torch.cat(parts, dim=-1).to(torch.get_default_dtype())


class Attention(nn.Module):
    """Multi-head attention whose tokens are the \`over\` axes of x (every other axis but c is a batch
    axis): self-attention projects qkv [3c] (columns q | k | v); with a context (context_dim), q [c]
    from x and kv [2c] (k | v) from the context's \`context_over\` tokens, its batch axes matched to
    x's by name. Heads of dim_head (default c / heads) consecutive channels, q, k, v heads * dim_head
    wide, scores scaled by 1 / sqrt(dim_head), then proj [heads * dim_head -> c]; qkv_bias and out_bias
    (default: bias) give the input and output projections their biases apart. qk_norm ('layer' or
    'rms') normalises q and k per head over dim_head (eps 1e-6, learned affine) before the scores;
    rope [(axis, width), ...] then turns them: the head dim cut into those widths in order, pairs
    (2j, 2j + 1) of a part turned by pos * 10000^(-2j / width), pos the token's index on that axis
    (rotary_embedding_torch's and diffusers' interleaved convention). causal: a token sees the tokens
    at its index and before, row-major over \`over\`. key_mask_axes: forward's key_mask (axes in that
    order: the key token axes, some batch axes) drops the keys where it is 0; a query left with no
    key gets o = 0.
    With \`window\` (Swin): tokens attend within windows of the grid rolled by -shift, pairs from
    different regions of a shifted grid masked; \`padded\` first pads the grid with zeros after its end
    to those sizes (Video Swin) and crops the result back. \`rel_bias\` adds a learned
    [prod(2bw - 1), heads] table indexed by query-minus-key offsets, the first \`over\` axis most
    significant, bw = \`bias_window\` (the window the table was made for; a smaller window reads its
    in-window index over it, as relative_position_index[:N, :N] does)."""

    def __init__(self, dim, heads, axes, over, bias=True, context_dim=None, context_axes=(), context_over=(),
                 window=None, shift=None, rel_bias=None, padded=None, bias_window=None,
                 qkv_bias=None, out_bias=None, dim_head=None, qk_norm=None, rope=None, causal=False, key_mask_axes=None):
        super().__init__()
        self.heads, self.axes, self.over = heads, tuple(axes), tuple(over)
        self.dh = dim // heads if dim_head is None else dim_head
        inner = heads * self.dh
        qkv_bias = bias if qkv_bias is None else qkv_bias
        out_bias = bias if out_bias is None else out_bias
        if qk_norm is not None:
            norm = (lambda: nn.LayerNorm(self.dh, eps=1e-6)) if qk_norm == 'layer' else (lambda: RMSNorm(self.dh, 1e-6))
            self.q_norm, self.k_norm = norm(), norm()
        self.qk_norm, self.rope, self.causal, self.key_mask_axes = qk_norm, rope, causal, key_mask_axes
        self.context_axes, self.context_over = tuple(context_axes), tuple(context_over)
        self.window, self.shift = window, shift or {}
        self.padded, self.bias_window = padded, bias_window
        if rel_bias is not None:
            self.rel_bias = nn.Parameter(torch.zeros(rel_bias, heads))
        else:
            self.rel_bias = None
        if context_dim is None:
            self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        else:
            self.q = nn.Linear(dim, inner, bias=qkv_bias)
            self.kv = nn.Linear(context_dim, 2 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=out_bias)

    def forward(self, x, context=None, key_mask=None):
        batch = [a for a in self.axes if a != 'c' and a not in self.over]
        order = batch + list(self.over) + ['c']
        x = x.permute([self.axes.index(a) for a in order])
        keep = None if key_mask is None else self.keys_kept(key_mask, batch, x.shape[:len(batch)])
        if self.window is not None or self.rel_bias is not None:
            return self.windowed(x, keep).permute([order.index(a) for a in self.axes])
        shape = x.shape
        B, N, C = math.prod(shape[:len(batch)]), math.prod(shape[len(batch):-1]), shape[-1]
        H, D = self.heads, self.dh
        if context is None:
            qkv = self.qkv(x.reshape(B, N, C)).reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            q = self.q(x.reshape(B, N, C)).reshape(B, N, H, D).transpose(1, 2)
            shared = [a for a in batch if a in self.context_axes]
            corder = shared + list(self.context_over) + ['c']
            ctx = context.permute([self.context_axes.index(a) for a in corder])
            sizes = dict(zip(corder, ctx.shape))
            M = math.prod(ctx.shape[len(shared):-1])
            ctx = ctx.reshape([sizes[a] if a in sizes else 1 for a in batch] + [M, ctx.shape[-1]])
            ctx = ctx.expand(*shape[:len(batch)], M, ctx.shape[-1]).reshape(B, M, -1)
            kv = self.kv(ctx).reshape(B, M, 2, H, D).permute(2, 0, 3, 1, 4)
            k, v = kv[0], kv[1]
        q, k = self.normed(q, k, shape[len(batch):-1])
        if hasattr(F, 'scaled_dot_product_attention') and keep is None:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            scores = q @ k.transpose(-2, -1) * D ** -0.5
            if self.causal:
                scores = scores.masked_fill(torch.ones(N, N, dtype=torch.bool, device=x.device).triu(1), float('-inf'))
            o = self.softmax(scores, keep) @ v
        o = self.proj(o.transpose(1, 2).reshape(B, N, H * D))
        return o.reshape(shape).permute([order.index(a) for a in self.axes])

    def keys_kept(self, key_mask, batch, bsizes):
        """key_mask [*key_mask_axes] as a bool [B, keys]: batch axes it lacks broadcast, keys row-major."""
        keys = list(self.context_over) if self.context_over else list(self.over)
        shared = [a for a in batch if a in self.key_mask_axes]
        m = key_mask.permute([self.key_mask_axes.index(a) for a in shared + keys])
        sizes = dict(zip(shared, m.shape))
        M = math.prod(m.shape[len(shared):])
        m = m.reshape([sizes[a] if a in sizes else 1 for a in batch] + [M]).expand(*bsizes, M)
        return m.reshape(-1, M) != 0

    @staticmethod
    def softmax(scores, keep):
        """softmax over the last axis of scores [B, .., keys]; keep [B, keys] drops keys; an all-masked row is 0."""
        if keep is not None:
            keep = keep.reshape(keep.shape[0], *[1] * (scores.dim() - 2), keep.shape[1])
            scores = scores.masked_fill(~keep, float('-inf'))
        p = torch.softmax(scores, dim=-1)
        return p.masked_fill((scores == float('-inf')).all(-1, keepdim=True), 0.0)

    def normed(self, q, k, sizes):
        """q and k [.., heads, tokens, dim_head] after qk_norm and rope; tokens row-major over \`over\` of \`sizes\`."""
        if self.qk_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None:
            q, k = self.turned(q, sizes), self.turned(k, sizes)
        return q, k

    def turned(self, x, sizes):
        grid = torch.meshgrid(*[torch.arange(n, dtype=x.dtype, device=x.device) for n in sizes], indexing='ij')
        out, start = [], 0
        for axis, width in self.rope:
            pos = grid[self.over.index(axis)].reshape(-1)
            freqs = 10000.0 ** (-torch.arange(0, width, 2, dtype=x.dtype, device=x.device) / width)
            angle = (pos[:, None] * freqs).repeat_interleave(2, -1)
            part = x[..., start:start + width]
            pairs = part.reshape(*part.shape[:-1], -1, 2)
            rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), -1).flatten(-2)
            out.append(part * angle.cos() + rotated * angle.sin())
            start += width
        return torch.cat(out, -1)

    def windowed(self, x, keep=None):
        """Self-attention within (shifted) windows, with the relative-position table: x [*batch, *over, c]."""
        k = len(self.over)
        nb = x.dim() - k - 1
        if self.padded:
            original = list(x.shape[nb:nb + k])
            x = pad_to(x, [self.padded.get(a, n) for a, n in zip(self.over, original)], nb)
            o = self.windowed_grid(x, k, nb)
            for i, n in enumerate(original):
                o = o.narrow(nb + i, 0, n)
            return o
        return self.windowed_grid(x, k, nb, keep)

    def windowed_grid(self, x, k, nb, keep=None):
        shape, C, H, D = x.shape, x.shape[-1], self.heads, self.dh
        sizes = list(shape[nb:nb + k])
        ws = [self.window.get(a, n) if self.window else n for a, n in zip(self.over, sizes)]
        bw = [self.bias_window.get(a, w) if self.bias_window else w for a, w in zip(self.over, ws)]
        ss = [self.shift.get(a, 0) for a in self.over]
        dims = list(range(nb, nb + k))
        if any(ss):
            x = torch.roll(x, shifts=[-s for s in ss], dims=dims)
        split = [m for n, w in zip(sizes, ws) for m in (n // w, w)]
        perm = list(range(nb)) + [nb + 2 * i for i in range(k)] + [nb + 2 * i + 1 for i in range(k)] + [nb + 2 * k]
        y = x.reshape(*shape[:nb], *split, C).permute(perm)
        wshape = y.shape
        nW, N = math.prod(n // w for n, w in zip(sizes, ws)), math.prod(ws)
        qkv = self.qkv(y.reshape(-1, N, C)).reshape(-1, N, 3, H, D).permute(2, 0, 3, 1, 4)
        q, kk, v = qkv[0], qkv[1], qkv[2]
        q, kk = self.normed(q, kk, ws)
        scores = (q @ kk.transpose(-2, -1) * D ** -0.5).reshape(-1, nW, H, N, N)
        pos = torch.stack(torch.meshgrid(*[torch.arange(w, device=x.device) for w in ws], indexing='ij'), -1).reshape(N, k)
        if self.rel_bias is not None:
            # the in-window index 0 .. N - 1 as coordinates in the bias window
            flat, coords = torch.arange(N, device=x.device), []
            for w in reversed(bw):
                coords.append(flat % w)
                flat = flat // w
            bpos = torch.stack(coords[::-1], -1)
            radix = torch.tensor([math.prod(2 * w - 1 for w in bw[i + 1:]) for i in range(k)], device=x.device)
            rel = bpos[:, None, :] - bpos[None, :, :] + torch.tensor([w - 1 for w in bw], device=x.device)
            scores = scores + self.rel_bias[(rel * radix).sum(-1)].permute(2, 0, 1)
        if any(ss):
            grid = torch.stack(torch.meshgrid(*[torch.arange(n // w, device=x.device) for n, w in zip(sizes, ws)], indexing='ij'), -1).reshape(nW, 1, k)
            coord = grid * torch.tensor(ws, device=x.device) + pos[None]
            n_, w_, s_ = (torch.tensor(v, device=x.device) for v in (sizes, ws, ss))
            region = (coord >= n_ - w_).long() + (coord >= n_ - s_).long()
            differ = (region[:, :, None, :] != region[:, None, :, :]).any(-1)
            scores = scores.masked_fill(differ[:, None], float('-inf'))
        if self.causal:  # one window over the whole grid (causal excludes windows)
            scores = scores.masked_fill(torch.ones(N, N, dtype=torch.bool, device=x.device).triu(1), float('-inf'))
        # keep (no windows: one window per batch element) [B, N]
        o = self.softmax(scores, keep).reshape(-1, H, N, N) @ v
        o = self.proj(o.transpose(1, 2).reshape(-1, N, H * D)).reshape(wshape)
        inverse = [perm.index(i) for i in range(len(perm))]
        o = o.permute(inverse).reshape(shape)
        if any(ss):
            o = torch.roll(o, shifts=ss, dims=dims)
        return o
`;

/** A JSON value as a Python literal. */
function pyLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return py(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(pyLiteral).join(', ')}]`;
  return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}: ${pyLiteral(x)}`).join(', ')}}`;
}

const py = (v: number) => (Number.isFinite(v) ? String(v) : v > 0 ? 'math.inf' : v < 0 ? '-math.inf' : 'math.nan');

/** The Python of the vlb term: improved DDPM's variational bound with the learned range variance (DiT's hybrid loss). */
const VLB_SOURCE = `

def discretized_log_likelihood(x, mean, log_scale):
    """log P of the 8-bit bin [x - 1/255, x + 1/255] under N(mean, exp(2 log_scale)), the edge bins
    (x < -0.999, x > 0.999) extended to infinity, with improved DDPM's tanh approximation of the
    normal CDF; every probability floored at 1e-12."""
    cdf = lambda z: 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
    inv = torch.exp(-log_scale)
    upper, lower = cdf(inv * (x - mean + 1 / 255)), cdf(inv * (x - mean - 1 / 255))
    p = torch.where(x < -0.999, upper, torch.where(x > 0.999, 1 - lower, upper - lower))
    return torch.log(p.clamp(min=1e-12))


def vlb_term(var, eps, x0, x_t, t, alpha_bar):
    """Mean over every entry, in bits, of KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)) for t > 0 and of
    the decoder's negative log-likelihood of x0 at t = 0. p's variance interpolates log beta_t and the
    posterior's log variance by (var + 1) / 2; its mean comes from the noise prediction \`eps\`, which
    the caller detaches, so this term trains only the variance."""
    ab = alpha_bar[t]
    ab_prev = torch.where(t > 0, alpha_bar[(t - 1).clamp(min=0)], torch.ones_like(ab))
    beta = 1 - ab / ab_prev
    # the posterior's variance; at t = 0 (where it is 0) its log is clipped to t = 1's
    tilde_1 = (1 - alpha_bar[0]) / (1 - alpha_bar[1]) * (1 - alpha_bar[1] / alpha_bar[0])
    log_tilde = torch.log(torch.where(t > 0, (1 - ab_prev) / (1 - ab) * beta, tilde_1))
    c0, ct = ab_prev.sqrt() * beta / (1 - ab), (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)
    true_mean = expand(c0, x0) * x0 + expand(ct, x0) * x_t
    x0_hat = (x_t - expand((1 - ab).sqrt(), x0) * eps) / expand(ab.sqrt(), x0)
    mean = expand(c0, x0) * x0_hat + expand(ct, x0) * x_t
    f = (var + 1) / 2
    log_var = f * expand(beta.log(), x0) + (1 - f) * expand(log_tilde, x0)
    lv = expand(log_tilde, x0)
    kl = 0.5 * (-1 + log_var - lv + torch.exp(lv - log_var) + (true_mean - mean) ** 2 * torch.exp(-log_var))
    nll = -discretized_log_likelihood(x0, mean, 0.5 * log_var)
    first = expand(t == 0, x0) > 0
    return torch.where(first, nll, kl).mean() / math.log(2)
`;

/** The diffusion objective of the spec's `diffusion` section as Python functions. */
export function objectiveSource(graph: Graph, d: DiffusionSpec): string {
  const s = d.schedule;
  const noisy = graph.inputs.find((i) => i.name === d.noisy_input)!;
  const timestep = graph.inputs.find((i) => i.kind === 'timestep');
  const batchDim = Math.max(0, noisy.axes.findIndex(([n]) => n === 'b'));
  const cDim = noisy.axes.findIndex(([n]) => n === 'c');
  const tDim = noisy.axes.findIndex(([n]) => n === 't');
  const output = graph.outputs[0].name;
  const weights = new Map(d.loss.map((l) => [l.term, l.weight]));
  const flow = s.kind === 'rectified_flow';
  // the schedule's per-level table: ᾱ, or under rectified flow the (shifted) times t'
  const sched = flow ? 'levels' : 'alpha_bar';
  const betas = s.kind === 'rectified_flow' ? ''
    : s.kind === 'cosine'
    ? `    f = lambda t: math.cos((t / T + ${py(s.s)}) / (1 + ${py(s.s)}) * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - f(t + 1) / f(t), 0.999) for t in range(T)], dtype=torch.float64)`
    : s.kind === 'scaled_linear'
      ? `    betas = torch.linspace(${py(s.beta_start)} ** 0.5, ${py(s.beta_end)} ** 0.5, T, dtype=torch.float64) ** 2`
      : `    betas = torch.linspace(${py(s.beta_start)}, ${py(s.beta_end)}, T, dtype=torch.float64)`;
  // rectified flow's v is the velocity noise − x0, not DDPM's a noise − b x0
  const target = flow ? 'noise - x0' : d.predict.target === 'epsilon' ? 'noise' : d.predict.target === 'x0' ? 'x0'
    : 'expand(a, x0) * noise - expand(b, x0) * x0';
  const pred = d.predict.learned_sigma ? `out.narrow(${cDim}, 0, x0.shape[${cDim}])` : 'out';
  const call = [`${JSON.stringify(d.noisy_input)}: x_t`, ...(timestep ? [`${JSON.stringify(timestep.name)}: t`] : [])].join(', ');
  // the clean sample the prediction implies at x_t
  const x0Of = d.predict.target === 'epsilon' ? '(x_t - expand(b, x0) * pred) / expand(a, x0)'
    : d.predict.target === 'x0' ? 'pred' : 'expand(a, x0) * x_t - expand(b, x0) * pred';
  const lines: string[] = [];
  if (weights.has('mse')) lines.push('    terms[\'mse\'] = F.mse_loss(pred, target)');
  if (weights.has('vlb')) {
    lines.push(`    var = out.narrow(${cDim}, x0.shape[${cDim}], x0.shape[${cDim}])`,
      '    terms[\'vlb\'] = vlb_term(var, pred.detach(), x0, x_t, t, alpha_bar)');
  }
  if (weights.has('temporal_consistency')) {
    lines.push(`    x0_hat = (${x0Of}).clamp(-1, 1)`,
      `    frames = x0.shape[${tDim}]`,
      `    terms['temporal_consistency'] = (x0_hat.narrow(${tDim}, 1, frames - 1) - x0_hat.narrow(${tDim}, 0, frames - 1)).abs().mean()`);
  }
  const total = d.loss.map((l) => `${l.weight === 1 ? '' : `${py(l.weight)} * `}terms['${l.term}']`).join(' + ');
  const described: Record<string, string> = {
    mse: `mse: the mean squared error of the model's ${d.predict.target} prediction${d.predict.learned_sigma ? ' (its first C channels; the rest are the learned variance)' : ''} against its target`,
    vlb: 'vlb: the variational bound in bits with the learned variance (improved DDPM, DiT), its mean from the detached noise prediction',
    temporal_consistency: 'temporal_consistency: the mean |x0_hat[t + 1] - x0_hat[t]| of the predicted clean clip clipped to [-1, 1]',
  };
  return `

# ---------------------------------------------------------------- the diffusion objective

DIFFUSION = ${pyLiteral({ schedule: s, predict: d.predict, loss: d.loss })}


${flow ? `def noise_schedule(device=None):
    \"\"\"The rectified flow's times t'_k, k = 0 .. ${s.steps - 1}: t = (k + 1) / ${s.steps} shifted by ${py(s.shift)} (float64).\"\"\"
    T = ${s.steps}
    t = torch.arange(1, T + 1, dtype=torch.float64) / T
    shift = ${py(s.shift)}
    return (shift * t / (1 + (shift - 1) * t)).to(device)
` : `def noise_schedule(device=None):
    \"\"\"alpha_bar_t, t = 0 .. ${s.steps - 1}, of the ${s.kind} schedule (float64).\"\"\"
    T = ${s.steps}
${betas}
    return torch.cumprod(1 - betas, dim=0).to(device)
`}

def expand(v, like):
    """A per-sample value [B] broadcast over the other axes of \`like\` (batch axis ${batchDim})."""
    shape = [1] * like.dim()
    shape[${batchDim}] = -1
    return v.reshape(shape).to(like.dtype)


${flow ? `def q_sample(x0, t, noise, levels):
    \"\"\"x_t = (1 - t') x0 + t' noise, t' = levels[t].\"\"\"
    tt = levels[t]
    return expand(1 - tt, x0) * x0 + expand(tt, x0) * noise
` : `def q_sample(x0, t, noise, alpha_bar):
    \"\"\"x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise.\"\"\"
    ab = alpha_bar[t]
    return expand(ab.sqrt(), x0) * x0 + expand((1 - ab).sqrt(), x0) * noise
`}${weights.has('vlb') ? VLB_SOURCE : ''}

def training_loss(model, x0, ${sched}, t=None, noise=None, return_terms=False, **conditions):
    """The spec's loss, ${d.loss.map((l) => `${l.weight === 1 ? '' : `${l.weight} * `}${l.term}`).join(' + ')}, at a random step t of
    x_t = q_sample(x0, t, noise), as vdm train computes it:
${d.loss.map((l) => `      ${described[l.term]}`).join('\n')}
    With return_terms=True also each term's unweighted value (a dict)."""
    if t is None:
${d.timesteps?.kind === 'logit_normal'
    ? `        # logit-normal levels: floor(T * sigmoid(${py(d.timesteps.mean)} + ${py(d.timesteps.std)} z)), z ~ N(0, 1)
        z = torch.randn((x0.shape[${batchDim}],), device=x0.device)
        t = (torch.sigmoid(${py(d.timesteps.mean)} + ${py(d.timesteps.std)} * z) * ${sched}.shape[0]).floor().long().clamp(max=${sched}.shape[0] - 1)`
    : `        t = torch.randint(0, ${sched}.shape[0], (x0.shape[${batchDim}],), device=x0.device)`}
    if noise is None:
        noise = torch.randn_like(x0)
    x_t = q_sample(x0, t, noise, ${sched})
${flow ? '' : '    a, b = alpha_bar[t].sqrt(), (1 - alpha_bar[t]).sqrt()\n'}
    out = model(**{${call}}, **conditions)
    if isinstance(out, dict):
        out = out[${JSON.stringify(output)}]
    pred = ${pred}
    target = ${target}
    terms = {}
${lines.join('\n')}
    loss = ${total}
    return (loss, terms) if return_terms else loss
`;
}
