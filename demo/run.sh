#!/usr/bin/env bash
# resty-client-tls demo (`make demo`): a throwaway nginx on 127.0.0.1 that asks clients for a
# certificate from ssl_certificate_by_lua, disables session reuse, and echoes what
# require "resty.client_tls" sees. Installs nothing; stops nginx and removes its files on exit.
#
# Each step checks its own result. A step that fails prints the command, its output and the
# end of nginx's error log, keeps the temp dir, and exits 1; so does an error that nginx logs
# ([error], [alert], [crit], [emerg], a Lua error). Runs from a checkout anywhere: nginx's
# worker runs as the invoking user (python3 -m tests.harness worker-user), so a clone in a 0700
# directory such as /root works too.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-nginx}
TMP=
NGINX_PID=
KEEP=

die() {
    echo "demo: $*" >&2
    echo "demo: the usual causes and their fixes: docs/troubleshooting.md" >&2
    exit 1
}

indent() { sed 's/^/    /'; }

# nginx's error log for failure reports: its error lines (the headline of a Lua error), then
# its last lines.
LOG_ERRORS='\[(error|alert|crit|emerg)\]|lua entry thread aborted|runtime error'
log_tail() {
    [ -n "$TMP" ] && [ -s "$TMP/error.log" ] || return 0
    local errors
    errors=$(grep -E "$LOG_ERRORS" "$TMP/error.log" | head -n 10)
    if [ -n "$errors" ]; then
        echo "demo: nginx's error lines ($TMP/error.log):" >&2
        indent <<<"$errors" >&2
    fi
    echo "demo: the last 20 lines of nginx's error log:" >&2
    tail -n 20 "$TMP/error.log" | indent >&2
}

# fail WHAT [COMMAND STATUS OUTPUT]: say what failed, show the command, how it ended and its
# output, the end of nginx's error log; keep the temp dir; exit 1.
fail() {
    echo >&2
    echo "demo: FAILED: $1" >&2
    if [ $# -ge 4 ]; then
        echo "demo: command ($3): $2" >&2
        if [ -n "$4" ]; then
            echo "demo: its output (last 40 lines):" >&2
            tail -n 40 <<<"$4" | indent >&2
        else
            echo "demo: it printed nothing" >&2
        fi
    fi
    log_tail
    echo "demo: the usual causes and their fixes: docs/troubleshooting.md" >&2
    KEEP=1
    exit 1
}

# run DESCRIPTION CMD...: runs CMD; OUT is its stdout and stderr. A non-zero exit fails.
OUT=
LAST_CMD=
run() {
    local what=$1 rc
    shift
    LAST_CMD=$(printf '%q ' "$@")
    OUT=$("$@" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] || fail "$what" "$LAST_CMD" "exit status $rc" "$OUT"
    return 0
}

# expect DESCRIPTION REGEX: OUT (from the last run) has a line matching REGEX.
expect() {
    grep -qE -- "$2" <<<"$OUT" || fail "$1: no line matching /$2/" "$LAST_CMD" "exit status 0" "$OUT"
}

# nginx logged an error (while serving the last command, if any): show it and stop.
check_log() {
    ! grep -qE "$LOG_ERRORS" "$TMP/error.log" ||
        fail "nginx logged an error (shown below)${LAST_CMD:+ while serving: $LAST_CMD}"
}

# -- prerequisites ------------------------------------------------------------------------------
missing=()
for tool in cargo "$NGINX" curl openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || die "missing on PATH: ${missing[*]} (Debian: apt-get install nginx \
libnginx-mod-http-lua curl openssl python3; Rust: rustup)"
MODULES=$("$NGINX" -V 2>&1 | sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p')
MODULES=${MODULES:-/usr/lib/nginx/modules}
for mod in ndk_http_module.so ngx_http_lua_module.so; do
    [ -f "$MODULES/$mod" ] || die "$MODULES/$mod missing (Debian: apt-get install libnginx-mod-http-lua)"
done

# -- build --------------------------------------------------------------------------------------
echo "== cargo build --release"
(cd "$REPO" && cargo build --release) || die "cargo build --release failed (its output is above)"
[ -f "$REPO/target/release/libresty_client_tls.so" ] || die "target/release/libresty_client_tls.so not built"
[ -f "$REPO/lua-bindings/resty/client_tls.lua" ] || die "lua-bindings/resty/client_tls.lua missing"

# -- throwaway PKI and nginx --------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/resty-client-tls-demo.XXXXXX") || die "mktemp -d failed"
cleanup() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
    fi
    if [ -n "$KEEP" ]; then
        echo "demo: nginx stopped; its config, logs and certificates are kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT

run "could not create the demo PKI" sh -c 'cd "$1" && python3 -m tests.harness pki "$2"' sh "$REPO" "$TMP/pki"
PKI=$TMP/pki
cat "$PKI/int.pem" "$PKI/root.pem" > "$PKI/ca-hints.pem"
run "could not find a free port" python3 -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
PORT=$OUT
# Started by root, nginx would run its worker as nobody, which cannot read a checkout in a
# 0700 directory (/root, mktemp -d): the worker runs as the invoking user instead.
run "could not work out nginx's user line" sh -c 'cd "$1" && python3 -m tests.harness worker-user' sh "$REPO"
WORKER_USER=$OUT

# HTTP/3 (step 6) where nginx has ngx_http_v3_module and curl speaks HTTP/3: the same
# server{} also listens for QUIC on the same port number (UDP). Otherwise step 6 says why not.
H3_SKIP=
if ! "$NGINX" -V 2>&1 | grep -q -- '--with-http_v3_module'; then
    H3_SKIP="this nginx ($("$NGINX" -v 2>&1 | sed 's/.*nginx\///')) is built without --with-http_v3_module (nginx -V)"
elif ! curl -V 2>/dev/null | grep -qE '^Features:.* HTTP3( |$)'; then
    H3_SKIP="this curl has no HTTP/3 (curl -V lists no HTTP3 feature)"
fi
H3_LISTEN=
[ -n "$H3_SKIP" ] || H3_LISTEN="listen 127.0.0.1:$PORT quic reuseport; http3 on;"

cat > "$TMP/nginx.conf" <<EOF
load_module $MODULES/ndk_http_module.so;
load_module $MODULES/ngx_http_lua_module.so;
$WORKER_USER
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/error.log info;
events { worker_connections 64; }
http {
    access_log $TMP/access.log;
    client_body_temp_path $TMP/body;
    lua_package_path "$REPO/lua-bindings/?.lua;;";
    lua_package_cpath "$REPO/target/release/lib?.so;;";
    ssl_session_cache shared:SSL:1m;

    init_by_lua_block {
        local f = assert(io.open("$PKI/ca-hints.pem"))
        demo_ca_pem = f:read("*a")   -- read once, in the master
        f:close()
    }

    server {
        listen 127.0.0.1:$PORT ssl;
        $H3_LISTEN
        server_name localhost;
        ssl_certificate $PKI/server.pem;
        ssl_certificate_key $PKI/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;

        ssl_certificate_by_lua_block {
            local tls = require "resty.client_tls"
            local ca = assert(require("ngx.ssl").parse_pem_cert(demo_ca_pem))
            -- ask (not require) for a certificate; hints and trust: intermediate + root;
            -- depth 2 so that leaf + intermediate + root can verify
            assert(tls.request_client_certificate(ca, 2))
            assert(tls.disable_session_reuse())
        }

        location / {
            content_by_lua_block {
                local tls = require "resty.client_tls"
                local chain, err = tls.get_full_client_certificate_chain()
                local n = 0
                for _ in (chain or ""):gmatch("BEGIN CERTIFICATE") do n = n + 1 end
                ngx.say("verify result (module)   : ", tls.get_client_verify())
                ngx.say("\$ssl_client_verify       : ", ngx.var.ssl_client_verify)
                ngx.say("protocol, session reused : ", ngx.var.ssl_protocol, ", ",
                        ngx.var.ssl_session_reused == "r" and "yes" or "no")
                ngx.say("client chain             : ",
                        chain and (n .. " certificate(s)") or (err or "none"))
                ngx.print(chain or "")
            }
        }
    }
}
EOF

NGINX_CMD=("$NGINX" -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/error.log")
"${NGINX_CMD[@]}" >"$TMP/nginx.out" 2>&1 &
NGINX_PID=$!
started=
for _ in $(seq 100); do
    # nginx writes its pid file once every listen socket is bound.
    if [ -s "$TMP/nginx.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        started=1
        break
    fi
    if ! kill -0 "$NGINX_PID" 2>/dev/null; then
        wait "$NGINX_PID"
        fail "nginx exited at startup" "${NGINX_CMD[*]}" "exit status $?" "$(cat "$TMP/nginx.out")"
    fi
    sleep 0.1
done
[ -n "$started" ] || fail "nginx did not listen on 127.0.0.1:$PORT within 10s" "${NGINX_CMD[*]}" \
    "still running" "$(cat "$TMP/nginx.out")"
LAST_CMD=
check_log

# -- clients ------------------------------------------------------------------------------------
URL=https://localhost:$PORT/
CURL=(curl -sS --cacert "$PKI/root.pem" --resolve "localhost:$PORT:127.0.0.1")

# Print a response; replace the PEM chain by the subject and issuer of each certificate.
show() {
    sed '/-----BEGIN CERTIFICATE-----/,$d' <<<"$1" | indent
    if grep -q "BEGIN CERTIFICATE" <<<"$1"; then
        openssl crl2pkcs7 -nocrl -certfile <(sed -n '/-----BEGIN CERTIFICATE-----/,$p' <<<"$1") \
            | openssl pkcs7 -print_certs -noout | sed '/^$/d; s/^/      /'
    fi
}

# curl_step DESCRIPTION VERIFY_REGEX CHAIN_REGEX [curl options]: one request, its result checked.
curl_step() {
    local what=$1 verify=$2 chain=$3
    shift 3
    run "$what: curl failed" "${CURL[@]}" "$@" "$URL"
    expect "$what: module's verify result" "^verify result \(module\)   : $verify\$"
    expect "$what: \$ssl_client_verify" "^\\\$ssl_client_verify       : $verify\$"
    expect "$what: session reused" "^protocol, session reused : TLSv1\.[23], no\$"
    expect "$what: client chain" "^client chain             : $chain\$"
    show "$OUT"
    check_log
}

echo
echo "== nginx on 127.0.0.1:$PORT ($TMP)"
echo
echo "== 1. CA names the server sends in its CertificateRequest (openssl s_client)"
S_CLIENT=(openssl s_client -connect "127.0.0.1:$PORT" -servername localhost)
run "openssl s_client could not complete a handshake" "${S_CLIENT[@]}" </dev/null
expect "CA names" "^Acceptable client certificate CA names"
# OpenSSL 3.5+ prints "O=x, CN=y", older versions "O = x, CN = y".
expect "CA names" "^O ?= ?resty-client-tls tests, CN ?= ?RCT Test Intermediate CA\$"
expect "CA names" "^O ?= ?resty-client-tls tests, CN ?= ?RCT Test Root CA\$"
sed -nE '/^Acceptable client certificate CA names/,/^(Client Certificate Types|Requested Signature)/p' \
    <<<"$OUT" | sed '$d' | indent
check_log
echo
echo "== 2. curl without a client certificate"
curl_step "request without a client certificate" NONE none
echo
echo "== 3. curl with a client certificate (leaf + intermediate, signed by the demo root)"
curl_step "request with a client certificate" SUCCESS "2 certificate\(s\)" \
    --cert "$PKI/good-bundle.pem" --key "$PKI/good.key"
echo
echo "== 4. curl with a self-signed client certificate (the handshake still succeeds)"
curl_step "request with a self-signed client certificate" "FAILED:self-signed certificate" \
    "1 certificate\(s\)" --cert "$PKI/selfsigned.pem" --key "$PKI/selfsigned.key"
echo
echo "== 5. the same client reconnecting with its saved TLS session (reuse is disabled)"
reconnect() {  # $1: label, then s_client session options
    local label=$1
    shift
    local cmd=(openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -ign_eof -tls1_2
               -cert "$PKI/good.pem" -key "$PKI/good.key" "$@")
    run "$label: openssl s_client failed" "${cmd[@]}" < <(printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n')
    expect "$label: a new TLS session" "^New, "
    expect "$label: the response" "^protocol, session reused : TLSv1\.2, no\$"
    grep -E '^(New|Reused), |session reused' <<<"$OUT" | sed "s/^/    $label: /"
    check_log
}
reconnect "first connection " -sess_out "$TMP/session.pem"
if [ -s "$TMP/session.pem" ]; then
    reconnect "second connection" -sess_in "$TMP/session.pem"
else
    echo "    the server issued nothing resumable: no session ticket, no session ID"
fi
echo
if [ -n "$H3_SKIP" ]; then
    echo "== 6. HTTP/3 (QUIC): skipped: $H3_SKIP"
    echo "    (nginx 1.25+ built --with-http_v3_module and a curl with HTTP/3, as in Debian 13"
    echo "    and sid, show it; see docs/http3.md)"
else
    echo "== 6. curl over HTTP/3 (QUIC on UDP port $PORT) with the client certificate"
    curl_step "HTTP/3 request with a client certificate" SUCCESS "2 certificate\(s\)" --http3-only \
        -w 'HTTP version (curl)      : %{http_version}\n' \
        --cert "$PKI/good-bundle.pem" --key "$PKI/good.key"
    expect "HTTP/3 request: curl's HTTP version" '^HTTP version \(curl\) +: 3$'
    grep -E '^HTTP version' <<<"$OUT" | indent
fi
echo
echo "== done: nginx stopped, $TMP removed"
