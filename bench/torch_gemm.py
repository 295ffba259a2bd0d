#!/usr/bin/env python3
"""GEMM alone in PyTorch, timed: the reference that scripts/gpu-check.sh puts beside
bench/gemm-shapes.ts on the same GPU.

Each shape M x K x N is torch.mm of a row-major [M, K] and [K, N] in fp32 with TF32 off (cuBLAS),
warm-up calls, then N calls each timed with CUDA events; the median is reported as TFLOP/s.

  python3 bench/torch_gemm.py [--shapes 4096x4096x4096,256x1152x3456] [--iters 20] [--json FILE]

Without torch or without CUDA it prints one line saying so and exits 0.
"""
import argparse
import json
import statistics
import sys

DEFAULT_SHAPES = "4096x4096x4096,2048x1152x4608,2048x4608x1152,256x1152x3456"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated MxKxN")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()

    def skip(message):
        print(f"torch_gemm: skipped: {message}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"skipped": message}, f)
        sys.exit(0)

    try:
        import torch
    except ImportError:
        skip("no torch module")
    if not torch.cuda.is_available():
        skip("no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    print(f"torch_gemm: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, fp32, TF32 off")
    results = []
    for s in args.shapes.split(","):
        m, k, n = (int(x) for x in s.split("x"))
        a = torch.randn(m, k, device=dev)
        b = torch.randn(k, n, device=dev)
        for _ in range(args.warmup):
            torch.mm(a, b)
        times = []
        for _ in range(args.iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.mm(a, b)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        ms = statistics.median(times)
        tflops = 2 * m * n * k / (ms * 1e9)
        print(f"torch_gemm: {m}x{k}x{n}: {ms:.3f} ms, {tflops:.2f} TFLOP/s")
        results.append({"shape": f"{m}x{k}x{n}", "ms": ms, "tflops": tflops})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(dev), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
