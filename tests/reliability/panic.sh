#!/usr/bin/env bash
# A panic inside the Rust core becomes RESTY_CLIENT_TLS_ERROR at the C boundary, end to end
# (issue 5): builds the library with `--features test-hooks` (every export panics inside
# its guard while RESTY_CLIENT_TLS_TEST_PANIC is set; the feature is off in every normal
# build) into target/test-hooks, then
#  1. a C program calls every export with the panic injected: -1 and
#     "internal error (panic)" (is_valid_client_verify: 0), and the same process goes on;
#  2. an nginx worker loading that build calls every Lua function with the panic injected
#     (setenv around each call): nil, "internal error (panic)", no crash.
# Ends with exactly "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
target="$repo/target/test-hooks"
passed=0 failed=0
if ! grep -q '^test-hooks' "$repo/Cargo.toml"; then
    echo "FAIL the crate has no 'test-hooks' feature (see tests/reliability/README.md: panic hook)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! (cd "$repo" && CARGO_TARGET_DIR="$target" cargo build --release --features test-hooks >"$target.log" 2>&1); then
    tail -20 "$target.log"; echo "FAIL cargo build --features test-hooks"; echo "0 passed, 1 failed"; exit 1
fi
lib="$target/release/libresty_client_tls.so"
tmp=$(mktemp -d /tmp/rct-panic.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if cc -std=c11 -Wall -Wextra -Werror -o "$tmp/panic_host" "$here/panic_host.c" -lssl -lcrypto -ldl; then
    out=$("$tmp/panic_host" "$lib" 2>&1); rc=$?
    printf '%s\n' "$out" | sed 's/^/    /'
    if [ $rc -eq 0 ]; then echo "PASS C: every export turns an injected panic into -1"; passed=$((passed + 1));
    else echo "FAIL C: panic_host"; failed=$((failed + 1)); fi
else
    echo "FAIL building panic_host.c"; failed=$((failed + 1))
fi
out=$(cd "$repo" && python3 -m tests.reliability.panic_nginx "$target/release" 2>&1); rc=$?
printf '%s\n' "$out" | grep -v ' passed, ' | sed 's/^/    /'
if [ $rc -eq 0 ]; then echo "PASS nginx: every Lua function answers an injected panic with nil, err; no crash"; passed=$((passed + 1));
else echo "FAIL nginx: panic_nginx.py"; failed=$((failed + 1)); fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
