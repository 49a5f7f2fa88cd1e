#!/bin/bash
# run.sh [SECONDS [NAME...]] - builds each libFuzzer harness (or those named:
# tests/fuzz/fuzz_NAME.c) with clang (meson -Dfuzzing=true in build-fuzz: the
# harnesses and what each links are listed once, in tests/meson.build) and
# fuzzes it for SECONDS (default 60), starting from its committed seed corpus. New interesting inputs go to
# build-fuzz/corpus/NAME; crashes to build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
out=build-fuzz
[ -f "$out/build.ninja" ] ||
    CC=clang meson setup "$out" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fno-sanitize-recover=undefined >/dev/null
names=("$@")
if [ ${#names[@]} = 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        f=${f##*/fuzz_}
        names+=("${f%.c}")
    done
fi
ninja -C "$out" "${names[@]/#/tests/fuzz_}" >/dev/null
for name in "${names[@]}"; do
    mkdir -p "$out/corpus/$name"
    echo "== fuzzing $name for ${secs}s"
    "$out/tests/fuzz_$name" -max_total_time="$secs" -artifact_prefix="$out/$name-" \
        "$out/corpus/$name" "tests/fuzz/corpus/$name"
done
