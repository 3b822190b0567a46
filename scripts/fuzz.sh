#!/usr/bin/env bash
# Builds every libFuzzer target (CMake targets named *_fuzz, under fuzz/) with clang and runs each
# for FUZZ_SECONDS (default 60) on a fresh copy of its seed corpus. Exits non-zero if any target
# crashes, leaks, times out or trips a sanitizer; the reproducer is kept under
# <build dir>/fuzz-run/<target>/artifacts/.
#
#   FUZZ_SECONDS=60          run time per target
#   FUZZ_BUILD_DIR=...       build directory (default: <repo>/build-fuzz)
#   FUZZ_JOBS=2              parallel build jobs
#   FUZZ_TARGETS="a_fuzz"    run only these targets
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}

# libFuzzer's runtime comes from libclang-rt-14-dev; scripts/setup installs it (idempotent).
fuzzer_rt=$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
if ! command -v clang++ >/dev/null || [ ! -f "$fuzzer_rt" ]; then
  echo "fuzz: clang or the libFuzzer runtime is missing; running scripts/setup"
  bash "$root/scripts/setup"
fi

mkdir -p "$build"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DTWINHUB_FUZZ=ON >"$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; echo "fuzz: configure failed"; exit 1; }

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(cmake --build "$build" --target help | sed -n 's/^\([A-Za-z0-9_.-]*_fuzz\): .*/\1/p' | sort -u)
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no *_fuzz targets found"
  exit 1
fi
echo "fuzz: building ${targets[*]}"
cmake --build "$build" --target "${targets[@]}" -j "$jobs"

manifest="$build/fuzz_corpora.txt"
passed=0
failed=0
for t in "${targets[@]}"; do
  corpus=$(awk -v t="$t" '$1 == t { print $2 }' "$manifest" 2>/dev/null || true)
  [ -n "$corpus" ] || corpus="$root/fuzz/${t%_fuzz}/corpus"
  work="$build/fuzz-run/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [ -d "$corpus" ]; then
    cp -R "$corpus/." "$work/corpus/"
  else
    echo "fuzz: $t has no seed corpus at $corpus; starting empty"
  fi
  echo "fuzz: running $t for ${seconds}s on $(find "$work/corpus" -type f | wc -l) seeds"
  if "$build/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    echo "fuzz: $t ok (${runs:-?} runs, corpus now $(find "$work/corpus" -type f | wc -l) files)"
    passed=$((passed + 1))
  else
    echo "fuzz: $t FAILED; log: $work/log; reproducer(s):"
    ls -1 "$work/artifacts"
    tail -n 60 "$work/log"
    failed=$((failed + 1))
  fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
