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
#  4. a non-PIE host that takes X509_free's address (as nginx does): the whole process,
#     the library included, binds X509_free to the program's PLT entry; the check must
#     see through it and accept;
#  5. a host that embeds OpenSSL statically and exports it (libssl.a/libcrypto.a, as nginx
#     --with-openssl=DIR with -Wl,-E): the library's calls bind to the program's copy by
#     interposition; same series, every function the library imports exported: accept
#     and work;
#  6. the same, but SSL_get0_peer_certificate and ERR_get_error_all not exported, as an
#     nginx embedding OpenSSL 1.1.1 lacks them: those two fall through to the system
#     libssl.so.3/libcrypto.so.3 the library depends on (two copies, split per function):
#     refuse, naming both objects.
# An OpenSSL 1.1 copy is not packaged on Debian 12 (apt-cache policy libssl1.1: none),
# so cases 3 and 6 stand in for it (tests/reliability/static_nginx.sh builds the real one).
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

make_nopie() { # dir: the host of make_copy "$1" again, non-PIE
    cc -std=c11 -Wall -Wextra -Werror -fno-pie -no-pie -o "$1/host-nopie" "$here/mismatch_host.c" \
        -L"$1" -l:libssX.so.3 -l:libcryptX.so.3 -Wl,-rpath,"$1" -ldl 2>&1 | head -20
}

make_static() { # dir, symbols not to export...
    local d=$1; shift; mkdir -p "$d"
    # The OpenSSL functions the library imports: pulled out of the archives (-u) and
    # exported, except those named.
    local syms=() force=() s skip
    mapfile -t syms < <(nm -D --undefined-only "$lib" | awk '$1 == "U" && $2 ~ /@OPENSSL_/ { sub(/@.*/, "", $2); print $2 }')
    [ "${#syms[@]}" -gt 10 ] || { echo "no OpenSSL imports found in $lib"; return 1; }
    { echo "{"
      for s in "${syms[@]}"; do
          force+=("-Wl,-u,$s")
          for skip in "$@"; do [ "$s" = "$skip" ] && continue 2; done
          echo "  $s;"
      done
      echo "};"; } >"$d/exports"
    cc -std=c11 -Wall -Wextra -Werror -o "$d/host" "$here/mismatch_host.c" "${force[@]}" \
        -Wl,--dynamic-list="$d/exports" -l:libssl.a -l:libcrypto.a -ldl -lpthread 2>&1 | head -20
}

command -v nm >/dev/null || { echo "FAIL nm is missing (apt-get install binutils)"; echo "0 passed, 1 failed"; exit 1; }
make_copy "$tmp/same" no && make_copy "$tmp/renamed" yes && [ -x "$tmp/same/host" ] && [ -x "$tmp/renamed/host" ] || { echo "FAIL building the copies"; echo "0 passed, 1 failed"; exit 1; }
run "two copies, plain dlopen: the library binds to the process's copy and accepts" "$tmp/same" plain same
run "two copies, RTLD_DEEPBIND: the library binds to its own copy and refuses everything" "$tmp/same" deepbind mismatch
run "two builds (renamed symbol versions), plain dlopen: refuses everything" "$tmp/renamed" plain mismatch

make_nopie "$tmp/same"
mkdir -p "$tmp/nopie" && [ -x "$tmp/same/host-nopie" ] && cp "$tmp/same/host-nopie" "$tmp/nopie/host"
if [ -x "$tmp/nopie/host" ] && [[ $("$tmp/nopie/host" "$lib" plain same 2>&1) == *"X509_free from $tmp/nopie/host"* ]]; then
    run "non-PIE host taking X509_free's address (a PLT entry in the program): accepts" "$tmp/nopie" plain same
else
    echo "FAIL the non-PIE host was not built, or its X509_free is not a PLT entry of the program"; failed=$((failed + 1))
fi

if [ -e "$(cc -print-file-name=libssl.a)" ] && [ "$(cc -print-file-name=libssl.a)" != libssl.a ]; then
    make_static "$tmp/static"
    make_static "$tmp/static-split" SSL_get0_peer_certificate ERR_get_error_all
    if [ -x "$tmp/static/host" ] && [ -x "$tmp/static-split/host" ]; then
        run "static OpenSSL exported by the program, same series: accepts and works" "$tmp/static" plain same
        run "static OpenSSL lacking two exports (they fall through to libssl.so.3): refuses everything" \
            "$tmp/static-split" plain mismatch
    else
        echo "FAIL building the static hosts"; failed=$((failed + 1))
    fi
else
    echo "FAIL no libssl.a (apt-get install libssl-dev)"; failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
