"""PyTorch reference for `alignkit bench gemm`: GFLOP/s of torch.matmul, served over stdin/stdout.

Each input line is "M K N THREADS SECONDS"; each output line is a JSON object
{"gflops": median GFLOP/s over the repetitions that fit in SECONDS}. One process serves a whole
benchmark run, so that AlignKit and PyTorch can alternate short rounds (the machine's speed drifts).
"""
import json
import sys
import time

import torch

print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
cache = {}
for line in sys.stdin:
    m, k, n, threads, seconds = line.split()
    m, k, n, threads, seconds = int(m), int(k), int(n), int(threads), float(seconds)
    torch.set_num_threads(threads)
    if (m, k, n) not in cache:
        cache.clear()
        generator = torch.Generator().manual_seed(0)
        a = torch.rand(m, k, generator=generator) * 2 - 1
        b = torch.rand(k, n, generator=generator) * 2 - 1
        cache[(m, k, n)] = (a, b, torch.empty(m, n))
    a, b, c = cache[(m, k, n)]
    torch.matmul(a, b, out=c)  # warm-up
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        torch.matmul(a, b, out=c)
        times.append(time.perf_counter() - start)
    times.sort()
    print(json.dumps({"gflops": 2 * m * k * n / times[len(times) // 2] / 1e9}), flush=True)
