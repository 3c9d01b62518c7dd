"""PyTorch reference for `alignkit bench gemm`: GFLOP/s of torch.matmul, served over stdin/stdout.

Each input line is "M K N THREADS SECONDS [PRECISION [TRANSPOSES]]" (PRECISION fp32 or bf16: bf16 tensors;
TRANSPOSES NN, TN, NT or TT: A stored K x M and used as A.t(), B stored N x K); each output line is a JSON object
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
    fields = line.split()
    m, k, n, threads, seconds = int(fields[0]), int(fields[1]), int(fields[2]), int(fields[3]), float(fields[4])
    dtype = torch.bfloat16 if len(fields) > 5 and fields[5] == "bf16" else torch.float32
    transposes = fields[6] if len(fields) > 6 else "NN"
    torch.set_num_threads(threads)
    key = (m, k, n, dtype, transposes)
    if key not in cache:
        cache.clear()
        generator = torch.Generator().manual_seed(0)
        a = (torch.rand(*((k, m) if transposes[0] == "T" else (m, k)), generator=generator) * 2 - 1).to(dtype)
        b = (torch.rand(*((n, k) if transposes[1] == "T" else (k, n)), generator=generator) * 2 - 1).to(dtype)
        cache[key] = (a.t() if transposes[0] == "T" else a, b.t() if transposes[1] == "T" else b, torch.empty(m, n, dtype=dtype))
    a, b, c = cache[key]
    torch.matmul(a, b, out=c)  # warm-up
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        torch.matmul(a, b, out=c)
        times.append(time.perf_counter() - start)
    times.sort()
    print(json.dumps({"gflops": 2 * m * k * n / times[len(times) // 2] / 1e9}), flush=True)
