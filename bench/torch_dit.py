#!/usr/bin/env python3
"""DiT-XL/2 forward pass in PyTorch, timed: the reference that scripts/gpu-check.sh puts beside
`vdm run specs/dit-xl-2.vdm` on the same GPU.

The model is written here from the DiT paper (Peebles & Xie, "Scalable Diffusion Models with
Transformers", ICCV 2023, Sec. 3 and Table 1), as specs/dit-xl-2.vdm describes it: a 32 x 32 x 4
latent cut into 2 x 2 patches (256 tokens), d = 1152, 28 blocks of 16 heads with adaLN-Zero
conditioning (shift, scale and gate from linear(silu(c), 6d)), LayerNorm without affine parameters
(eps 1e-6), MLP ratio 4 with tanh-GELU, a fixed 2D sin-cos position table, a sinusoidal timestep
embedder (256 frequencies, then d -> d MLP), a class table of 1000 classes plus the null class,
and a final adaLN layer to p * p * 2C channels (learned sigma). 674,834,720 parameters, as
`vdm info specs/dit-xl-2.vdm` counts them (the paper's code counts the fixed position table too).

Weights are random (timing does not depend on them); fp32 with TF32 off, eager (no compile).
Each size: warm-up passes, then N passes each timed with CUDA events; the median is reported.

  python3 bench/torch_dit.py --batch 1 8 --warmup 5 --iters 20 [--json FILE] [--device cpu]

Without torch or without CUDA (and no --device cpu) it prints one line saying so and exits 0, so
a check script can run it anywhere.
"""
import argparse
import json
import math
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes (default: 1 8)")
    p.add_argument("--warmup", type=int, default=5, help="untimed passes per batch size")
    p.add_argument("--iters", type=int, default=20, help="timed passes per batch size (median reported)")
    p.add_argument("--attention", choices=["sdpa", "math"], default="sdpa",
                   help="sdpa: F.scaled_dot_product_attention (default); math: softmax(q k^T) v written out")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test: slow, timed by the clock)")
    p.add_argument("--depth", type=int, default=28, help="blocks (28 for DiT-XL/2; fewer for a quick check)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def skip(message, args):
    print(f"torch_dit: skipped: {message}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"skipped": message}, f)
    sys.exit(0)


def build(torch, depth, attention):
    nn = torch.nn
    F = torch.nn.functional

    def modulate(x, shift, scale):
        return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)

    class TimestepEmbedder(nn.Module):
        def __init__(self, d, freq=256):
            super().__init__()
            self.freq = freq
            self.mlp = nn.Sequential(nn.Linear(freq, d), nn.SiLU(), nn.Linear(d, d))

        def forward(self, t):
            half = self.freq // 2
            freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
            args = t.float()[:, None] * freqs[None]
            return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))

    class Attention(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(d, 3 * d, bias=True)
            self.proj = nn.Linear(d, d)

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            if attention == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v)
            else:
                w = (q * (q.shape[-1] ** -0.5)) @ k.transpose(-2, -1)
                y = w.softmax(dim=-1) @ v
            return self.proj(y.transpose(1, 2).reshape(b, n, d))

    class Block(nn.Module):
        def __init__(self, d, heads, mlp_ratio=4):
            super().__init__()
            self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
            self.attn = Attention(d, heads)
            self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
            self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(approximate="tanh"), nn.Linear(mlp_ratio * d, d))
            self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

        def forward(self, x, c):
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.ada(c).chunk(6, dim=1)
            x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
            return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))

    class FinalLayer(nn.Module):
        def __init__(self, d, out):
            super().__init__()
            self.norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
            self.linear = nn.Linear(d, out)
            self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

        def forward(self, x, c):
            shift, scale = self.ada(c).chunk(2, dim=1)
            return self.linear(modulate(self.norm(x), shift, scale))

    def sincos_2d(d, grid):
        # half the channels encode the row, half the column; each half is sin then cos
        def one(pos, dim):
            omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
            out = pos.reshape(-1)[:, None].double() * omega[None]
            return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

        gh, gw = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
        return torch.cat([one(gh, d // 2), one(gw, d // 2)], dim=1).float()[None]

    class DiT(nn.Module):
        def __init__(self, input_size=32, patch=2, channels=4, d=1152, depth=28, heads=16, classes=1000, learn_sigma=True):
            super().__init__()
            self.patch, self.channels = patch, channels
            self.out_channels = 2 * channels if learn_sigma else channels
            self.grid = input_size // patch
            self.x_embedder = nn.Conv2d(channels, d, kernel_size=patch, stride=patch)
            self.t_embedder = TimestepEmbedder(d)
            self.y_embedder = nn.Embedding(classes + 1, d)  # row `classes`: the null class
            self.register_buffer("pos_embed", sincos_2d(d, self.grid), persistent=False)
            self.blocks = nn.ModuleList([Block(d, heads) for _ in range(depth)])
            self.final_layer = FinalLayer(d, patch * patch * self.out_channels)

        def forward(self, x, t, y):
            x = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed  # [b, tokens, d]
            c = self.t_embedder(t) + self.y_embedder(y)
            for block in self.blocks:
                x = block(x, c)
            x = self.final_layer(x, c)  # [b, tokens, p * p * out]
            b, p, g, o = x.shape[0], self.patch, self.grid, self.out_channels
            x = x.reshape(b, g, g, p, p, o).permute(0, 5, 1, 3, 2, 4)
            return x.reshape(b, o, g * p, g * p)

    return DiT(depth=depth)


def main():
    args = parse_args()
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        skip(f"PyTorch is not installed here ({type(e).__name__}: {e})", args)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        skip(f"PyTorch {torch.__version__} sees no CUDA device", args)

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if args.attention == "sdpa" and not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        args.attention = "math"  # PyTorch < 2.0
    if hasattr(torch.device, "__enter__"):  # PyTorch >= 2.0: initialise the weights on the device itself
        with device:
            model = build(torch, args.depth, args.attention).eval()
    else:
        model = build(torch, args.depth, args.attention).to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"torch_dit: DiT-XL/2 ({args.depth} blocks, {params:,} parameters) on {name}, PyTorch {torch.__version__}, "
          f"fp32, TF32 off, attention {args.attention}")

    results = []
    with torch.inference_mode():
        for b in args.batch:
            x = torch.randn(b, 4, 32, 32, device=device)
            t = torch.randint(0, 1000, (b,), device=device)
            y = torch.randint(0, 1000, (b,), device=device)
            out = model(x, t, y)
            assert tuple(out.shape) == (b, 8, 32, 32), out.shape
            for _ in range(args.warmup):
                model(x, t, y)
            times = []
            for _ in range(args.iters):
                if cuda:
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    model(x, t, y)
                    end.record()
                    end.synchronize()
                    times.append(start.elapsed_time(end))
                else:
                    t0 = time.perf_counter()
                    model(x, t, y)
                    times.append((time.perf_counter() - t0) * 1000)
            med = statistics.median(times)
            print(f"torch_dit: batch {b}: {med:.2f} ms median of {len(times)} (min {min(times):.2f}, max {max(times):.2f})")
            results.append({"batch": b, "median_ms": med, "min_ms": min(times), "max_ms": max(times), "iters": len(times)})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "parameters": params, "depth": args.depth,
                       "attention": args.attention, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
