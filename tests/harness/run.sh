# The shell suites' runner (tests/packaging/run.sh, tests/packaging/deb.sh,
# tests/firstrun/run.sh), sourced after they set T (their temp dir):
#   run NAME FUNCTION   one test, in a subshell with `set -e`; its output goes to
#                       $T/NAME.log, shown (last RUN_TAIL lines, default 60) only when it
#                       fails; `note: ` lines are shown either way. RUN_PREFIX is put
#                       before NAME in the PASS/FAIL line; last_rc is the test's status.
#   fail MESSAGE...     inside a test: print the message and fail it.
# The suite ends with: echo "$passed passed, $failed failed".
passed=0
failed=0
last_rc=0

run() {
    local name=$1 fn=$2 log=$T/$1.log start=$SECONDS rc
    # Not inside `if`: there bash would ignore set -e in the subshell.
    ( set -e; "$fn" ) >"$log" 2>&1
    rc=$?
    last_rc=$rc
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS ${RUN_PREFIX:-}$name ($((SECONDS - start))s)"
        grep '^note: ' "$log" | sed 's/^/    /'
    else
        failed=$((failed + 1))
        echo "FAIL ${RUN_PREFIX:-}$name ($((SECONDS - start))s)"
        tail -n "${RUN_TAIL:-60}" "$log" | sed 's/^/    /'
    fi
}

fail() { echo "$*" >&2; return 1; }
