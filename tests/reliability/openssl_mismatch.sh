#!/usr/bin/env bash
# The OpenSSL-copy guard in a real process holding two OpenSSL copies (issue 5).
# Copies the system libssl.so.3/libcrypto.so.3, gives them other sonames (libssX.so.3,
# libcryptX.so.3: same length, renamed in place by elf_rename.py, which also fixes the
# symbol-version tables) so the loader maps them apart from the system ones, links a host program
# (mismatch_host.c) to the copies, and has it dlopen target/release/libresty_client_tls.so
# (which needs the system libssl.so.3) and hand it an SSL* made by its copy:
#  1. plain dlopen, same symbol versions: the library's OpenSSL calls bind to the
#     process's copy (global scope first): one copy in use, the check must accept and
#     the functions work on the host's SSL*;
#  2. dlopen with RTLD_DEEPBIND: the library binds to its own libssl.so.3, the process
#     uses the copy: openssl_check returns -1 naming both files, and every function
#     refuses;
#  3. plain dlopen of a copy whose symbol versions were renamed (OPENSSL_3.* ->
#     OPENSSM_3.*), as a different OpenSSL build (1.1 vs 3) would be: the library binds
#     to its own libssl, the check must refuse.
# An OpenSSL 1.1 copy is not packaged on Debian 12 (apt-cache policy libssl1.1: none),
# so case 3 stands in for it.
# Needs cc and python3. Ends with exactly "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
lib=${RCT_LIB:-$repo/target/release/libresty_client_tls.so}
tmp=$(mktemp -d /tmp/rct-mismatch.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
for tool in cc python3; do
    command -v $tool >/dev/null || { echo "FAIL $tool is missing (apt-get install $tool)"; echo "0 passed, 1 failed"; exit 1; }
done
[ -e "$lib" ] || { echo "FAIL $lib missing (cargo build --release)"; echo "0 passed, 1 failed"; exit 1; }
sys=$(dirname "$(readlink -f "$(cc -print-file-name=libssl.so.3)")")
[ -e "$sys/libssl.so.3" ] || sys=/usr/lib/x86_64-linux-gnu

make_copy() { # dir, rename-versions?
    local d=$1; mkdir -p "$d"
    cp "$sys/libssl.so.3" "$d/libssX.so.3"
    cp "$sys/libcrypto.so.3" "$d/libcryptX.so.3"
    local versions=()
    [ "$2" = yes ] && versions=(--prefix OPENSSL_3.=OPENSSM_3.)
    python3 "$here/elf_rename.py" "$d/libssX.so.3" --exact libssl.so.3=libssX.so.3 \
        --exact libcrypto.so.3=libcryptX.so.3 "${versions[@]}" >/dev/null || return 1
    python3 "$here/elf_rename.py" "$d/libcryptX.so.3" --exact libcrypto.so.3=libcryptX.so.3 \
        "${versions[@]}" >/dev/null || return 1
    cc -std=c11 -Wall -Wextra -Werror -o "$d/host" "$here/mismatch_host.c" \
        -L"$d" -l:libssX.so.3 -l:libcryptX.so.3 -Wl,-rpath,"$d" -ldl 2>&1 | head -20
}

run() { # name, dir, mode, expect
    local out
    out=$("$2/host" "$lib" "$3" "$4" 2>&1); local rc=$?
    printf '%s\n' "$out" | sed 's/^/    /'
    if [ $rc -eq 0 ]; then echo "PASS $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi
}

make_copy "$tmp/same" no && make_copy "$tmp/renamed" yes && [ -x "$tmp/same/host" ] && [ -x "$tmp/renamed/host" ] || { echo "FAIL building the copies"; echo "0 passed, 1 failed"; exit 1; }
run "two copies, plain dlopen: the library binds to the process's copy and accepts" "$tmp/same" plain same
run "two copies, RTLD_DEEPBIND: the library binds to its own copy and refuses everything" "$tmp/same" deepbind mismatch
run "two builds (renamed symbol versions), plain dlopen: refuses everything" "$tmp/renamed" plain mismatch
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
