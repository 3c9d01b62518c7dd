#!/usr/bin/env bash
# Packs AlignKit's release build to run on an x86-64 Linux machine that has no Swift toolchain (a
# benchmark host without network access, a machine with another CPU's instruction set to test):
#   scripts/bundle.sh [--data DIR] [--out FILE]
# Builds `alignkit` and the test binary in release mode and writes FILE (default
# .build/alignkit-bundle.tar.xz): bin/ (both programs), lib/ (the shared libraries they load that are
# not the C and C++ runtimes: Swift's runtime and Foundation, ICU, libxml2), data/ (a copy of DIR,
# default ../shared/data where present) and run.sh. On the other machine:
#   tar xJf alignkit-bundle.tar.xz -C /tmp/ak
#   /tmp/ak/run.sh test [--filter NAME]         # the test suite (Swift Testing), data from /tmp/ak/data
#   /tmp/ak/run.sh bench workload pretrain-small --threads 2   # any other arguments go to alignkit
#   benchmarks/compare.sh --alignkit /tmp/ak/run.sh --python python3   # from a checkout: against PyTorch
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data out=.build/alignkit-bundle.tar.xz
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
swift build -c release --build-tests >&2   # builds alignkit too (the reliability tests run it)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp .build/release/alignkit .build/release/AlignKitPackageTests.xctest "$stage/bin/"
# Every library the programs load, except the ones any glibc system has (and the dynamic loader itself).
ldd "$stage/bin/alignkit" "$stage/bin/AlignKitPackageTests.xctest" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
  while read -r name path; do
    case "$name" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libgcc_s.so*|libstdc++.so*) ;;
      *) cp -L "$path" "$stage/lib/$name" ;;
    esac
  done
if [ -d "$data" ]; then cp -rL "$data" "$stage/data"; else echo "no data folder at $data: the bundle's tests that read it will fail" >&2; fi
cat > "$stage/run.sh" <<'RUN'
#!/usr/bin/env bash
# run.sh test [ARGS]: the test suite (ARGS go to the test binary, e.g. --filter GEMM); run.sh ARGS: alignkit ARGS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d "$here/data" ] && export ALIGNKIT_SHARED_DATA="${ALIGNKIT_SHARED_DATA:-$here/data}"
if [ "${1:-}" = test ]; then
  shift
  cd "$(mktemp -d)" && exec "$here/bin/AlignKitPackageTests.xctest" --testing-library swift-testing "$@"
fi
exec "$here/bin/alignkit" "$@"
RUN
chmod +x "$stage/run.sh"
mkdir -p "$(dirname "$out")"
tar cf - -C "$stage" . | xz -T0 -6 > "$out"
echo "$out: $(du -h "$out" | cut -f1) ($(ls "$stage/lib" | wc -l) libraries)" >&2
