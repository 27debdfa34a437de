#!/usr/bin/env bash
# resty-client-tls demo (`make demo`): a throwaway nginx on 127.0.0.1 that asks clients for a
# certificate from ssl_certificate_by_lua, disables session reuse, and echoes what
# require "resty.client_tls" sees. Installs nothing; stops nginx and removes its files on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-nginx}

die() { echo "demo: $*" >&2; exit 1; }

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
(cd "$REPO" && cargo build --release) || die "cargo build --release failed"
[ -f "$REPO/target/release/libresty_client_tls.so" ] || die "target/release/libresty_client_tls.so not built"
[ -f "$REPO/lua-bindings/resty/client_tls.lua" ] || die "lua-bindings/resty/client_tls.lua missing"

# -- throwaway PKI and nginx --------------------------------------------------------------------
TMP=$(mktemp -d /tmp/resty-client-tls-demo.XXXXXX)
NGINX_PID=
cleanup() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

python3 "$REPO/tests/nginx/pki.py" "$TMP/pki" || die "could not create the demo PKI"
PKI=$TMP/pki
cat "$PKI/int.pem" "$PKI/root.pem" > "$PKI/ca-hints.pem"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat > "$TMP/nginx.conf" <<EOF
load_module $MODULES/ndk_http_module.so;
load_module $MODULES/ngx_http_lua_module.so;
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

"$NGINX" -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/error.log" &
NGINX_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/error.log" >&2; die "nginx failed to start"; }
    sleep 0.1
done

# -- clients ------------------------------------------------------------------------------------
URL=https://localhost:$PORT/
CURL=(curl -sS --cacert "$PKI/root.pem" --resolve "localhost:$PORT:127.0.0.1")

# Print the response; replace the PEM chain by the subject and issuer of each certificate.
show() {
    local body
    body=$(cat)
    sed '/-----BEGIN CERTIFICATE-----/,$d' <<<"$body" | sed 's/^/    /'
    if grep -q "BEGIN CERTIFICATE" <<<"$body"; then
        openssl crl2pkcs7 -nocrl -certfile <(sed -n '/-----BEGIN CERTIFICATE-----/,$p' <<<"$body") \
            | openssl pkcs7 -print_certs -noout | sed '/^$/d; s/^/      /'
    fi
}

echo
echo "== nginx on 127.0.0.1:$PORT ($TMP)"
echo
echo "== 1. CA names the server sends in its CertificateRequest (openssl s_client)"
openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null 2>/dev/null \
    | sed -nE '/^Acceptable client certificate CA names/,/^(Client Certificate Types|Requested Signature)/p' \
    | sed '$d; s/^/    /'
echo
echo "== 2. curl without a client certificate"
"${CURL[@]}" "$URL" | show
echo
echo "== 3. curl with a client certificate (leaf + intermediate, signed by the demo root)"
"${CURL[@]}" --cert "$PKI/good-bundle.pem" --key "$PKI/good.key" "$URL" | show
echo
echo "== 4. curl with a self-signed client certificate (the handshake still succeeds)"
"${CURL[@]}" --cert "$PKI/selfsigned.pem" --key "$PKI/selfsigned.key" "$URL" | show
echo
echo "== 5. the same client reconnecting with its saved TLS session (reuse is disabled)"
reconnect() {  # $1: label, then s_client session options
    local label=$1; shift
    printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' \
        | openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -ign_eof -tls1_2 \
            -cert "$PKI/good.pem" -key "$PKI/good.key" "$@" 2>/dev/null \
        | grep -E '^(New|Reused), |session reused' | sed "s/^/    $label: /"
}
reconnect "first connection " -sess_out "$TMP/session.pem"
if [ -f "$TMP/session.pem" ]; then
    reconnect "second connection" -sess_in "$TMP/session.pem"
else
    echo "    the server issued nothing resumable: no session ticket, no session ID"
fi
echo
if grep -E '\[(alert|crit|emerg)\]' "$TMP/error.log" >&2; then
    die "nginx logged the errors above"
fi
echo "== done: nginx stopped, $TMP removed"
