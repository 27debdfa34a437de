#!/usr/bin/env bash
# First contact: what a newcomer does, `git clone` then `make demo`, in a directory that
# nginx's default worker user cannot enter. /root is 0700, and so is every `mktemp -d`
# directory; nginx started by root runs its worker as nobody, and a worker that cannot read
# the checkout fails every TLS handshake. This test clones the repository's HEAD (committed
# work only) into a fresh 0700 directory and, from that clone:
#
#   clone          the clone is at HEAD, its parent is 0700 (and, as root, nobody cannot
#                  read the Lua module in it: the situation is the real one)
#   demo           `make demo` exits 0 and prints every expected result
#   nginx-suite    the first test of `python3 -m tests.nginx.run` passes (the harness that the
#                  reliability, packaging and soak suites share)
#   soak           a short soak (tests/soak/lua/ read by the worker) passes
#
# The clone starts from a copy of target/release (taken under cargo's lock), so cargo
# rebuilds only this crate. Ends with "N passed, N failed"; exits non-zero when anything
# failed. FIRSTRUN_KEEP=1 keeps the temp dir.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
T=$(mktemp -d "${TMPDIR:-/tmp}/rct-firstrun.XXXXXX") || { echo "FAIL mktemp -d"; echo "0 passed, 1 failed"; exit 1; }
chmod 700 "$T"
CLONE=$T/resty-client-tls

RUN_TAIL=80
# run NAME FUNCTION, fail MESSAGE, passed/failed counts, last_rc: the shared shell runner.
. "$REPO/tests/harness/run.sh"

# expect_line FILE TEXT: FILE has a line containing TEXT (fixed string).
expect_line() { grep -qF -- "$2" "$1" || fail "no line with \"$2\" in the output above"; }

t_clone() {
    git clone --quiet --no-hardlinks "$REPO" "$CLONE"
    local head want
    head=$(git -C "$CLONE" rev-parse HEAD)
    want=$(git -C "$REPO" rev-parse HEAD)
    [ "$head" = "$want" ] || fail "the clone is at $head, the repository at $want"
    [ "$(stat -c %a "$T")" = 700 ] || fail "$T is not 0700"
    if [ "$(id -u)" = 0 ]; then
        # nginx's default worker user; the clone must be out of its reach, as in /root.
        if runuser -u nobody -- test -r "$CLONE/lua-bindings/resty/client_tls.lua"; then
            fail "nobody can read the clone: this test would not see the problem it guards against"
        fi
        echo "note: $CLONE: unreadable for nobody (nginx's default worker user)"
    else
        echo "note: $CLONE: in a 0700 directory, run as $(id -un)"
    fi
    if [ -d "$REPO/target/release" ]; then
        mkdir -p "$CLONE/target"
        # cargo holds this lock while it builds: the copy is of a finished build.
        flock "$REPO/target/release/.cargo-lock" cp -a "$REPO/target/release" "$CLONE/target/"
    fi
}

t_demo() {
    [ -d "$CLONE" ] || fail "no clone"
    local out=$T/demo.out rc=0
    (cd "$CLONE" && make --no-print-directory demo) >"$out" 2>&1 || rc=$?
    cat "$out"
    [ "$rc" -eq 0 ] || fail "make demo exited with $rc"
    expect_line "$out" "Acceptable client certificate CA names"
    expect_line "$out" "    O = resty-client-tls tests, CN = RCT Test Intermediate CA"
    expect_line "$out" "    O = resty-client-tls tests, CN = RCT Test Root CA"
    expect_line "$out" "verify result (module)   : NONE"
    expect_line "$out" "verify result (module)   : SUCCESS"
    expect_line "$out" "client chain             : 2 certificate(s)"
    expect_line "$out" "verify result (module)   : FAILED:self-signed certificate"
    expect_line "$out" "first connection : New, TLSv1.2"
    expect_line "$out" "== done: nginx stopped"
    ! grep -q "Reused, " "$out" || fail "a session was resumed"
    ! grep -q "^demo: " "$out" || fail "the demo complained"
    echo "note: make demo in $CLONE: CA names, NONE, SUCCESS (2 certificates), FAILED:self-signed certificate, no resumption"
}

t_nginx_suite() {
    [ -f "$CLONE/target/release/libresty_client_tls.so" ] || fail "no library in the clone (did the demo build it?)"
    local first
    (cd "$CLONE" && "$PYTHON" -m tests.nginx.run --list) >"$T/nginx-tests.txt"
    first=$(head -n 1 "$T/nginx-tests.txt")
    [ -n "$first" ] || fail "python3 -m tests.nginx.run --list printed no test"
    (cd "$CLONE" && "$PYTHON" -m tests.nginx.run "$first")
    echo "note: python3 -m tests.nginx.run $first passed in the clone"
}

t_soak() {
    [ -f "$CLONE/target/release/libresty_client_tls.so" ] || fail "no library in the clone (did the demo build it?)"
    (cd "$CLONE" && bash tests/soak/run.sh --handshakes 200 --requests 1000 --rounds 2)
}

run clone t_clone
run demo t_demo
run nginx-suite t_nginx_suite
run soak t_soak

if [ "$failed" -eq 0 ] && [ -z "${FIRSTRUN_KEEP:-}" ]; then
    rm -rf "$T"
else
    echo "temp dir kept: $T"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
