#!/usr/bin/env bash
# Coverage-guided fuzzing of one parser with libFuzzer (the toolchain's -sanitize=fuzzer):
#   scripts/fuzz-libfuzzer.sh TARGET [RUNS] [more libFuzzer flags]
# Builds alignkit-fuzz instrumented in .build-fuzz (linked with the toolchain's lld: gold fails on it), seeds fuzz-corpus/TARGET with valid files, then
# runs RUNS inputs (default 100000) with a 5 s per-input timeout and a 2 GB memory limit (a single
# allocation over 1 GB is reported as a finding). Crashes are written as crash-* in the current folder.
# Targets: preferences sft unpaired prompts safetensors config tokenizer-json vocab-merges tiktoken
#          config-file adapter-config (or "all").
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz-libfuzzer.sh TARGET [RUNS] [libFuzzer flags]}"
runs="${2:-100000}"
shift $(( $# >= 2 ? 2 : 1 ))
swift build -c release --product alignkit-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DLIBFUZZER -Xswiftc -use-ld=lld >&2
binary=.build-fuzz/release/alignkit-fuzz
targets="$target"
if [ "$target" = all ]; then
    targets="preferences sft unpaired prompts safetensors config tokenizer-json vocab-merges tiktoken config-file adapter-config"
fi
for t in $targets; do
    mkdir -p "fuzz-corpus/$t"
    "$binary" seeds "$t" "fuzz-corpus/$t"
    echo "== $t: $runs inputs" >&2
    "$binary" "$t" --libfuzzer -runs="$runs" -timeout=5 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 "$@" "fuzz-corpus/$t"
done
