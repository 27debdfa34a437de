#!/usr/bin/env bash
# Memory checks of resty-client-tls (issue 5):
#  1. every Rust test binary (unit tests of src/, tests/ffi.rs, tests/sessions.rs, ...:
#     real TLS 1.2/1.3 handshakes through every export) under valgrind memcheck;
#  2. the C example (tests/c/example.c, a handshake through every function), the
#     bad-input program (tests/reliability/bad_input.c) and the CA-list abuse program
#     (tests/c/ca_list_abuse.c: lists replaced, edited, duplicated, evicted) built with
#     -fsanitize=address,undefined (LeakSanitizer on), and again under valgrind;
#  3. nginx (one process) + LuaJIT + the library under memcheck, 300 handshakes through
#     every Lua function (valgrind_nginx.py): no loss record and no error may have a
#     libresty_client_tls frame.
# A run fails on any memcheck error or any byte "definitely" or "indirectly" lost.
# Prints a summary line per run, then exactly "N passed, N failed".
#
#   tests/reliability/valgrind.sh            all of it (about 4-6 minutes on 2 cores)
#   VALGRIND_TESTS="ffi sessions" tests/reliability/valgrind.sh   only these test binaries
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
out=${RCT_RELIABILITY_OUT:-$(mktemp -d /tmp/rct-valgrind.XXXXXX)}
mkdir -p "$out"
passed=0 failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

need() { command -v "$1" >/dev/null || { echo "$1 is missing (apt-get install $2)"; echo "0 passed, 1 failed"; exit 1; }; }
need valgrind valgrind
need cc build-essential
CLANG=${CLANG:-$(command -v clang-14 || command -v clang || true)}

VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=40
    --suppressions="$here/valgrind.supp")

# Reads the memcheck summary of a log: "definitely D, indirectly I, errors E".
summary() {
    local log=$1 d i e
    d=$(grep -E "definitely lost:" "$log" | tail -1 | awk '{print $4}' | tr -d ,)
    i=$(grep -E "indirectly lost:" "$log" | tail -1 | awk '{print $4}' | tr -d ,)
    e=$(grep -E "ERROR SUMMARY:" "$log" | tail -1 | awk '{print $4}')
    echo "definitely lost ${d:-0} B, indirectly lost ${i:-0} B, errors ${e:-?}; heap: $(grep -E 'total heap usage' "$log" | tail -1 | sed 's/.*total heap usage: //')"
}

# 1. Rust test binaries ---------------------------------------------------------------
if ! cargo build --release >"$out/build.log" 2>&1 \
   || ! cargo test --release --no-run --message-format=json >"$out/tests.json" 2>>"$out/build.log"; then
    tail -20 "$out/build.log"; fail "cargo test --no-run"; echo "$passed passed, $failed failed"; exit 1
fi
mapfile -t bins < <(python3 - "$out/tests.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"].get("test"):
        print(m["target"]["name"] + "\t" + m["executable"])
PY
)
for entry in "${bins[@]}"; do
    name=${entry%%$'\t'*} exe=${entry#*$'\t'}
    if [ -n "${VALGRIND_TESTS:-}" ] && ! grep -qw "$name" <<<"$VALGRIND_TESTS"; then continue; fi
    log="$out/valgrind-rust-$name.log"
    start=$(date +%s)
    # The C-example test spawns cc and the example: those are checked below on their own.
    "${VG[@]}" --log-file="$log" "$exe" --test-threads=2 >"$out/rust-$name.out" 2>&1
    rc=$?
    tests=$(grep -E "^test result:" "$out/rust-$name.out" | tail -1)
    if [ $rc -eq 0 ]; then
        pass "valgrind Rust tests '$name' ($tests; $(( $(date +%s) - start )) s): $(summary "$log")"
    else
        fail "valgrind Rust tests '$name' (exit $rc; $tests): $(summary "$log"); see $log"
        grep -E "^==[0-9]+== (Invalid|Conditional|.*definitely lost in|.*indirectly lost in)" -A12 "$log" | head -40
    fi
done

# 2. C programs: ASan/LSan/UBSan, then valgrind ----------------------------------------
pki="$out/pki"
python3 -m tests.harness pki "$pki" >/dev/null
example_args=("$pki/server.pem" "$pki/server.key" "$pki/good.pem" "$pki/good.key" "$pki/int.pem" "$pki/root.pem")
# Expected chain: leaf then intermediate, as PEM_write_X509 writes them.
cat "$pki/good.pem" "$pki/int.pem" >"$out/expected.pem"
example_args+=("$out/expected.pem")
lib="$repo/target/release"
build_c() { # compiler, output, extra flags, sources...
    local c=$1 o=$2 flags=$3; shift 3
    # shellcheck disable=SC2086
    "$c" -std=c11 -g -O1 -Wall -Wextra -Werror $flags -I include -I tests/c -o "$o" "$@" \
        -L "$lib" -Wl,-rpath,"$lib" -lresty_client_tls -lssl -lcrypto
}
# ca_list_abuse: two CA files, 24 and 4 self-signed CAs (the program needs at least 20).
make_cas() { # file count tag
    local i
    : >"$1"
    for ((i = 0; i < $2; i++)); do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
            -subj "/O=resty-client-tls tests/CN=$3 CA $i" -days 2 2>/dev/null >>"$1"
    done
}
make_cas "$out/cas-many.pem" 24 Many && make_cas "$out/cas-few.pem" 4 Few
abuse_args=("$out/cas-many.pem" "$out/cas-few.pem")
progs=(example bad_input ca_list_abuse)
srcs_example=(tests/c/example.c tests/c/header_alone.c)
srcs_bad_input=(tests/reliability/bad_input.c)
srcs_ca_list_abuse=(tests/c/ca_list_abuse.c)
for p in "${progs[@]}"; do
    declare -n srcs="srcs_$p"
    args=()
    [ "$p" = example ] && args=("${example_args[@]}")
    [ "$p" = ca_list_abuse ] && args=("${abuse_args[@]}")
    if [ -n "$CLANG" ]; then
        if build_c "$CLANG" "$out/$p-asan" "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" "${srcs[@]}" 2>"$out/$p-asan.build"; then
            ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
                "$out/$p-asan" "${args[@]}" >"$out/$p-asan.out" 2>&1
            rc=$?
            if [ $rc -eq 0 ] && ! grep -q "Sanitizer" "$out/$p-asan.out"; then
                pass "ASan+LSan+UBSan C program '$p': no error, no leak ($(tail -1 "$out/$p-asan.out"))"
            else
                fail "ASan+LSan+UBSan C program '$p' (exit $rc)"; tail -40 "$out/$p-asan.out"
            fi
        else
            fail "build $p with $CLANG -fsanitize"; cat "$out/$p-asan.build"
        fi
    else
        fail "ASan C program '$p': clang is missing (apt-get install clang-14 libclang-rt-14-dev)"
    fi
    if build_c cc "$out/$p" "" "${srcs[@]}" 2>"$out/$p.build"; then
        log="$out/valgrind-c-$p.log"
        "${VG[@]}" --log-file="$log" "$out/$p" "${args[@]}" >"$out/$p.out" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            pass "valgrind C program '$p': $(summary "$log")"
        else
            fail "valgrind C program '$p' (exit $rc): $(summary "$log"); see $log"
            grep -E "^==[0-9]+== (Invalid|Conditional|.*definitely lost in|.*indirectly lost in)" -A12 "$log" | head -40
        fi
    else
        fail "build $p"; cat "$out/$p.build"
    fi
done
# 3. nginx + LuaJIT + the library in one process under memcheck --------------------------
# It drives the PDK layer, which needs the lua module's SSL-pointer function (absent from
# lua-nginx-module 0.10.13, Debian 11): there the C programs above are the whole check.
if python3 -m tests.harness has-ssl-pointer; then
    out3=$(python3 -m tests.reliability.valgrind_nginx 300 2>&1); rc=$?
    printf '%s\n' "$out3" | grep -E "note:" | sed 's/^ *note: /    /'
    if [ $rc -eq 0 ]; then pass "valgrind nginx+LuaJIT: no loss record and no error in libresty_client_tls";
    else fail "valgrind nginx+LuaJIT"; printf '%s\n' "$out3" | tail -20; fi
else
    echo "N/A: valgrind nginx+LuaJIT: this lua module lacks ngx_http_lua_ffi_get_req_ssl_pointer (the PDK layer cannot run)"
fi

[ -n "${RCT_RELIABILITY_OUT:-}" ] || { [ "$failed" -eq 0 ] && rm -rf "$out"; }
[ "$failed" -eq 0 ] || echo "logs in $out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
