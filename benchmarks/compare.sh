#!/usr/bin/env bash
# AlignKit against PyTorch on the same machine, workload by workload (see `alignkit bench workload --help`
# and benchmarks/torch_workloads.py, which define the same workloads):
#   benchmarks/compare.sh [--rounds 3] [--steps 5] [--threads 2] [--precision fp32|bf16] [--workloads dpo-tiny,...] [--gemm]
#                         [--python PATH] [--alignkit PATH]
# Creates .venv-bench with PyTorch (scripts/setup-torch.sh) when missing, unless --python names an interpreter
# that already has PyTorch (an offline machine's, say; the table then names its version). Builds alignkit in release mode
# unless --alignkit names a built one (scripts/bundle.sh's run.sh on a machine without Swift),
# then for each workload alternates AlignKit and PyTorch processes (--rounds each, --steps timed steps after
# two warm-up steps per process) and prints a table: median step time, pairs/s or tokens/s, achieved
# GFLOP/s (by the FLOP model in benchmarks/format_comparison.py), peak resident memory, and the ratio
# AlignKit/PyTorch of throughput (above 1: AlignKit faster) and of memory (below 1: AlignKit smaller).
# --precision bf16: AlignKit's bf16 matrix products (AMX) against PyTorch's bf16 autocast.
# --gemm adds `alignkit bench gemm --threads 2` (which measures torch.matmul alternately itself).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 steps=5 threads=2 gemm=0 precision=fp32 python= alignkit=
workloads="dpo-tiny,dpo-tiny-precomputed,dpo-small,dpo-small-precomputed,pretrain-small,sample-b1,sample-b8"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --gemm) gemm=1; shift ;;
    --python) python="$2"; shift 2 ;;
    --alignkit) alignkit="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$python" ]; then
  python=.venv-bench/bin/python
  [ -x "$python" ] || scripts/setup-torch.sh >&2
fi
torch_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null) ||
  { echo "$python: cannot import torch" >&2; exit 2; }
echo "PyTorch $torch_version ($python)" >&2
if [ -z "$alignkit" ]; then
  swift build -c release --product alignkit >&2
  alignkit=.build/release/alignkit
fi
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for w in ${workloads//,/ }; do
  for r in $(seq "$rounds"); do
    echo "$w: round $r/$rounds" >&2
    printf '{"side": "alignkit", "result": %s}\n' "$("$alignkit" bench workload "$w" --steps "$steps" --threads "$threads" --precision "$precision")" >> "$results"
    printf '{"side": "pytorch", "result": %s}\n' "$(OMP_NUM_THREADS="$threads" "$python" benchmarks/torch_workloads.py "$w" --steps "$steps" --threads "$threads" --precision "$precision")" >> "$results"
  done
done
"$python" benchmarks/format_comparison.py "$results" "$threads"
if [ "$gemm" = 1 ]; then "$alignkit" bench gemm --threads "$threads" --precision "$precision" --python "$python"; fi
