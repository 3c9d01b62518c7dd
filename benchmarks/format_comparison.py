"""Formats benchmarks/compare.sh's results: one JSON line per process ({"side", "result"}) → a Markdown table.

FLOP model (the same for both sides; a model of the work, not a count of what either executes): a
GPT-2 block's forward pass on T tokens costs 24·T·C² (the four projections and the MLP) plus 4·T²·C
(attention scores and the weighted sum, the full T×T), the head 2·T·C·V; a backward pass costs twice the
forward. A DPO step is 16 rows of 128 tokens: policy forward + backward, and the reference's forward
unless precomputed. Pretraining: 8 rows of 256 tokens. Sampling: a 64-token prompt, then 256 tokens one
at a time attending to everything before them, times the batch.
"""
import json
import statistics
import sys

SIZES = {"tiny": (4, 256, 4096), "small": (6, 384, 8192)}


def forward(layers, c, v, t, rows):
    return rows * (layers * (24 * t * c * c + 4 * t * t * c) + 2 * t * c * v)


def work(name):
    """(FLOPs per step, throughput units per step, unit name)."""
    layers, c, v = SIZES["tiny" if "tiny" in name else "small"]
    if name.startswith("dpo"):
        f = forward(layers, c, v, 128, 16)
        return (3 * f + (0 if name.endswith("precomputed") else f), 8, "pairs/s")
    if name == "pretrain-small":
        return (3 * forward(layers, c, v, 256, 8), 2048, "tokens/s")
    batch = int(name.split("-b")[1])
    prefill = forward(layers, c, v, 64, batch)
    decode = sum(batch * (layers * (24 * c * c + 4 * (64 + i) * c) + 2 * c * v) for i in range(256))
    return (prefill + decode, 256 * batch, "tokens/s")


def cpu_model():
    """The processor's name as Linux reports it (where the table was measured)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    path, threads = sys.argv[1], sys.argv[2]
    runs, torch_versions, gemm_paths = {}, set(), set()
    for line in open(path):
        record = json.loads(line)
        r = record["result"]
        if "torch" in r:
            torch_versions.add(r["torch"])
        if "gemm_path" in r:
            gemm_paths.add(r["gemm_path"])
        entry = runs.setdefault(r["workload"], {}).setdefault(record["side"], {"seconds": [], "rss": 0.0})
        entry["seconds"] += r["seconds"]
        entry["rss"] = max(entry["rss"], r["peak_rss_mb"])
    print(f"\n{cpu_model()}; {threads} threads; AlignKit's GEMM path {', '.join(sorted(gemm_paths)) or '?'}; "
          f"PyTorch {', '.join(sorted(torch_versions)) or '?'}; median over every timed step of every round\n")
    print("| workload | AlignKit ms | PyTorch ms | AlignKit | PyTorch | speed ratio | AlignKit GFLOP/s | PyTorch GFLOP/s | AlignKit MB | PyTorch MB | memory ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, sides in runs.items():
        flops, units, unit = work(name)
        a, p = sides.get("alignkit"), sides.get("pytorch")
        if not a or not p:
            continue
        ta, tp = statistics.median(a["seconds"]), statistics.median(p["seconds"])
        print(f"| {name} | {ta * 1000:.0f} | {tp * 1000:.0f} | {units / ta:,.0f} {unit} | {units / tp:,.0f} {unit} | {tp / ta:.2f}× "
              f"| {flops / ta / 1e9:.0f} | {flops / tp / 1e9:.0f} | {a['rss']:.0f} | {p['rss']:.0f} | {a['rss'] / p['rss']:.2f} |")


if __name__ == "__main__":
    main()
