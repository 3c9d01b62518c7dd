"""PyTorch reference for `alignkit bench gemm`: GFLOP/s of torch.matmul on the same shapes.

Usage: torch_gemm.py --shape MxKxN --threads T --seconds S
Prints one JSON object: {"gflops": median GFLOP/s, "torch": version}.
"""
import argparse
import json
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--shape", required=True)
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--seconds", type=float, default=1.0)
args = parser.parse_args()

m, k, n = (int(x) for x in args.shape.split("x"))
torch.set_num_threads(args.threads)
generator = torch.Generator().manual_seed(0)
a = torch.rand(m, k, generator=generator) * 2 - 1
b = torch.rand(k, n, generator=generator) * 2 - 1
c = torch.empty(m, n)
torch.matmul(a, b, out=c)  # warm-up
times = []
deadline = time.perf_counter() + args.seconds
while time.perf_counter() < deadline or len(times) < 3:
    start = time.perf_counter()
    torch.matmul(a, b, out=c)
    times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"gflops": 2 * m * k * n / times[len(times) // 2] / 1e9, "torch": torch.__version__}))
