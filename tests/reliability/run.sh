#!/usr/bin/env bash
# The reliability tests of issue 5 that run in `make test` besides valgrind.sh and the
# short soak: resumption attacks and bad input against real nginx (test_*.py, run by
# run.py on tests/harness, with relharness.py), the OpenSSL-copy guard in a process
# with two OpenSSL copies (openssl_mismatch.sh), and a panic injected into the library
# (panic.sh). Ends with exactly "N passed, N failed" (the sum); exits non-zero on failure.
#   tests/reliability/run.sh [TEST NAME...]   names select nginx tests only (see --list)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."  # the Python suites run as modules from the repository root
passed=0 failed=0
step() { # label, command...
    local label=$1; shift
    echo "== $label"
    local out rc
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$'
    local res
    res=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -z "$res" ]; then
        echo "FAIL $label: exited $rc without a result line"; failed=$((failed + 1)); return
    fi
    set -- $res
    passed=$((passed + $1)); failed=$((failed + $3))
    if [ $rc -ne 0 ] && [ "$3" -eq 0 ]; then echo "FAIL $label: exit $rc"; failed=$((failed + 1)); fi
}
step "nginx: resumption attacks, bad input" python3 -m tests.reliability.run "$@"
if [ $# -eq 0 ]; then
    step "OpenSSL-copy guard with two OpenSSL copies in one process" bash "$here/openssl_mismatch.sh"
    step "panic injected into the library" bash "$here/panic.sh"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
