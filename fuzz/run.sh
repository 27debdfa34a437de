#!/usr/bin/env bash
# Runs the three fuzz targets (cargo fuzz: libFuzzer + AddressSanitizer + LeakSanitizer)
# for a time budget each, from fuzz/corpus/<target> (seeded by seeds.py), and prints one
# line per target with the executions run, then exactly "N passed, N failed".
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     default 60 s, all three targets
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler. Stable Rust is
# enough: RUSTC_BOOTSTRAP=1 lets cargo fuzz use -Zsanitizer=address on it.
# A crash leaves its input in fuzz/artifacts/<target>/; rerun it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O <target> fuzz/artifacts/<target>/<file>
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(is_valid_client_verify buffer_protocol cert_stacks)
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! cargo fuzz build -O >build.log 2>&1; then
    tail -30 build.log
    echo "0 passed, 1 failed"
    exit 1
fi
python3 seeds.py

passed=0 failed=0
for t in "${targets[@]}"; do
    extra=()
    [ "$t" = cert_stacks ] && extra=(-max_len=65536 -rss_limit_mb=4096 -timeout=60)
    [ "$t" = buffer_protocol ] && extra=(-max_len=4096)
    log="$here/fuzz-$t.log"
    start=$(date +%s)
    cargo fuzz run -O "$t" -- -max_total_time="$secs" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1
    rc=$?
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | awk '{print $2}' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    if [ $rc -eq 0 ] && [ -n "$runs" ]; then
        echo "PASS $t: $runs executions in $(( $(date +%s) - start )) s, coverage $cov edges, corpus $corp, no crash, no leak"
        passed=$((passed + 1))
    else
        echo "FAIL $t (exit $rc): see $log"
        grep -E "ERROR|panicked|SUMMARY|assert" "$log" | head -10
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
