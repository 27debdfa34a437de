#!/usr/bin/env bash
# The resty-client-tls benchmark (issue 4): the library (candidate) against B1 (nginx-style
# C, bench/b1.c), B2 (pure LuaJIT FFI, bench/lua/rct_bench.lua) and L (nginx alone), in
# one run. Builds everything, runs every measurement, prints one
#   name: candidate=X baseline=Y ratio=X/Y
# line per comparison (X, Y: operations per CPU-second, higher is better) and a summary
# table with PASS/MISS per target. See bench/README.md.
#
#   bench/run.sh [--quick | --full] [--rounds N] [--no-build] [--only micro|lua|keepalive|handshake|tenants|memory]
#   bench/run.sh --serve     # only start the benchmark's nginx and wait (for perf, curl, ...)
#
# --full (default): 5 rounds, ~5 minutes. --quick: 3 rounds with short samples, ~1.5 minutes.
# Output and logs go to target/bench/ (results.txt, summary.md, nginx/, micro.log, ...).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
OUT=$REPO/target/bench
MODE=full
ROUNDS=
BUILD=1
ONLY=
while (($#)); do
    case $1 in
        --quick) MODE=quick ;;
        --full) MODE=full ;;
        --rounds) ROUNDS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --only) ONLY=$2; shift ;;
        --serve) ONLY=serve ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$MODE" = quick ]; then
    ROUNDS=${ROUNDS:-3}; MICRO_SAMPLE=0.08; LUA_N=20000; KA_SECS=1.5; KA_WARM=0.5; HS_SECS=2; HS_WARM=0.5
    MEM_POINTS=250,500,1000
else
    ROUNDS=${ROUNDS:-5}; MICRO_SAMPLE=0.25; LUA_N=100000; KA_SECS=3; KA_WARM=0.5; HS_SECS=3; HS_WARM=0.5
    MEM_POINTS=250,500,1000,2000
fi
TENANT_KS=(1 16 256 1024 4096)
WORKER_USER=$(cd "$REPO" && python3 -m tests.harness worker-user)
KA_CONNS=32
HS_CONNS=8
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

for cmd in cc nginx curl python3 openssl; do
    command -v "$cmd" >/dev/null || { echo "run.sh: $cmd is missing (tools/install-deps.sh installs it)" >&2; exit 2; }
done
NGINX_MODULES=$(nginx -V 2>&1 | sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p')
NGINX_MODULES=${NGINX_MODULES:-/usr/lib/nginx/modules}

mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: > "$RESULTS"
log() { printf '%s\n' "$*" >&2; }
result() { printf '%s\n' "$*" | tee -a "$RESULTS"; }

# ---- build ------------------------------------------------------------------------------
LIB=$REPO/target/release/libresty_client_tls.so
if ((BUILD)); then
    log "== build"
    (cd "$REPO" && cargo build --release --quiet)
    CFLAGS=(-O2 -Wall -Wextra -Werror)
    cc "${CFLAGS[@]}" -fPIC -shared -o "$OUT/libb1.so" "$HERE/b1.c" -lssl -lcrypto
    cc "${CFLAGS[@]}" -I"$HERE" -I"$REPO/include" -o "$OUT/micro" "$HERE/micro.c" "$HERE/b1.c" \
        -L"$REPO/target/release" -Wl,-rpath,"$REPO/target/release" -lresty_client_tls -lssl -lcrypto
    cc "${CFLAGS[@]}" -o "$OUT/loadclient" "$HERE/loadclient.c" -lssl -lcrypto
fi
[ -e "$LIB" ] || { echo "run.sh: $LIB missing (cargo build --release)" >&2; exit 2; }
PKI=$OUT/pki
bash "$HERE/pki.sh" "$PKI"
CHAIN_LEN=$(wc -c < "$PKI/chain.pem")
tls_common="ssl_certificate $PKI/server.pem; ssl_certificate_key $PKI/server.key;
        ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;"

{
    echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# machine: $(uname -srm), $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
    echo "# software: $(nginx -v 2>&1 | sed 's/.*: //'), $(openssl version | cut -d' ' -f1-2), lua-nginx-module $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null || echo '?')"
    echo "# mode: $MODE, $ROUNDS rounds, commit $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
    echo "# load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
} | tee -a "$RESULTS"

# ---- (1) C micro ------------------------------------------------------------------------
if want micro; then
    log "== (1) C micro-benchmark, in process"
    "$OUT/micro" "$PKI" "$ROUNDS" "$MICRO_SAMPLE" > "$OUT/micro.log"
    grep -v '^#' "$OUT/micro.log" | tee -a "$RESULTS"
fi

# ---- nginx ------------------------------------------------------------------------------
NG=$OUT/nginx
NGINX_PID=
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null); [ -n "$st" ] && [[ $st != Z* ]]; }
stop_nginx() {
    if [ -n "$NGINX_PID" ] && alive "$NGINX_PID"; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do alive "$NGINX_PID" || break; sleep 0.1; done
        alive "$NGINX_PID" && kill -KILL "$NGINX_PID" 2>/dev/null
    fi
    if [ -n "$NGINX_PID" ]; then
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    NGINX_PID=
}
trap stop_nginx EXIT

if want lua || want keepalive || want handshake || want tenants || [ "$ONLY" = serve ]; then
    rm -rf "$NG"; mkdir -p "$NG/logs"
    chmod 755 "$OUT" "$NG" "$PKI"; chmod 644 "$PKI"/*
    read -r P_KA P_L P_LN P_L100 P_C1 P_B1 P_C100 P_B100 P_TC P_TB P_L5 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(11)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()')
    CONST_BODY=$(cat "$PKI/chain.pem")
    # a server for the handshake measurement: port, then its certificate-phase config
    hs_server() {
        cat <<EOS
    server {
        listen 127.0.0.1:$1 ssl;
        $tls_common
        $2
        location / { return 200 "ok"; }
    }
EOS
    }
    cat > "$NG/nginx.conf" <<EOF2
load_module $NGINX_MODULES/ndk_http_module.so;
load_module $NGINX_MODULES/ngx_http_lua_module.so;
$WORKER_USER
worker_processes 1;
daemon off;
master_process on;
pid $NG/nginx.pid;
error_log $NG/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $NG/tmp;
    proxy_temp_path $NG/tmp;
    fastcgi_temp_path $NG/tmp;
    uwsgi_temp_path $NG/tmp;
    scgi_temp_path $NG/tmp;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    lua_package_path "$REPO/lua-bindings/?.lua;$HERE/lua/?.lua;;";
    lua_package_cpath "$REPO/target/release/lib?.so;;";
    # As a gateway with thousands of tenants would: room for every list in the CA cache.
    init_by_lua_block { require("resty.client_tls").cache_limit("ca", 512 * 1024 * 1024) }
    init_worker_by_lua_block {
        require("rct_bench").init("$OUT/libb1.so", "$PKI")
        require("rct_bench").init_tenants("$PKI", ${TENANT_KS[-1]})
    }

    # (2) and (3): keep-alive requests over mTLS connections (nginx asks for the
    # certificate itself), three ways of answering with the chain.
    server {
        listen 127.0.0.1:$P_KA ssl;
        $tls_common
        ssl_verify_client optional_no_ca;
        ssl_verify_depth 3;
        location = /candidate { content_by_lua_block { require("rct_bench").chain("candidate") } }
        location = /b1        { content_by_lua_block { require("rct_bench").chain("b1") } }
        location = /b2        { content_by_lua_block { require("rct_bench").chain("b2") } }
        location = /limit     { return 200 "$CONST_BODY
"; }
        location = /candidate_set { set_by_lua_block \$rct_chain { return require("rct_bench").chain_value("candidate") } return 200 \$rct_chain; }
        location = /b1_set    { set_by_lua_block \$rct_chain { return require("rct_bench").chain_value("b1") } return 200 \$rct_chain; }
        location = /percall   { content_by_lua_block { require("rct_bench").percall() } }
        location = /tenants   { content_by_lua_block { require("rct_bench").set_tenants(tonumber(ngx.var.arg_k)) } }
    }

    # (4): full handshakes. L: nginx's native optional client certificate, tickets off
    # (NumTickets 0: without it OpenSSL still sends 2 stateful TLS 1.3 tickets, LN).
$(hs_server "$P_L"    "ssl_verify_client optional_no_ca; ssl_client_certificate $PKI/ca1.pem; ssl_verify_depth 3; ssl_conf_command NumTickets 0;")
$(hs_server "$P_LN"   "ssl_verify_client optional_no_ca; ssl_client_certificate $PKI/ca1.pem; ssl_verify_depth 3;")
$(hs_server "$P_L100" "ssl_verify_client optional_no_ca; ssl_client_certificate $PKI/ca100.pem; ssl_verify_depth 3; ssl_conf_command NumTickets 0;")
$(hs_server "$P_C1"   'ssl_certificate_by_lua_block { require("rct_bench").cert_candidate(1) }')
$(hs_server "$P_B1"   'ssl_certificate_by_lua_block { require("rct_bench").cert_b1(1) }')
$(hs_server "$P_C100" 'ssl_certificate_by_lua_block { require("rct_bench").cert_candidate(100) }')
$(hs_server "$P_B100" 'ssl_certificate_by_lua_block { require("rct_bench").cert_b1(100) }')
    # (5): many tenants, one CA list each (root + 4 tenant CAs), rotated per handshake.
$(hs_server "$P_TC"   'ssl_certificate_by_lua_block { require("rct_bench").tenant_candidate() }')
$(hs_server "$P_TB"   'ssl_certificate_by_lua_block { require("rct_bench").tenant_b1() }')
$(hs_server "$P_L5"   "ssl_verify_client optional_no_ca; ssl_client_certificate $PKI/tenants5.pem; ssl_verify_depth 3; ssl_conf_command NumTickets 0;")
}
EOF2
    mkdir -p "$NG/tmp"
    nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/logs/error.log" &
    NGINX_PID=$!
    WORKER=
    for _ in $(seq 50); do
        WORKER=$(ps -o pid= --ppid "$NGINX_PID" | tr -d ' ' | head -1 || true)
        [ -n "$WORKER" ] && curl -sk -o /dev/null "https://127.0.0.1:$P_KA/limit" --cert "$PKI/chain.pem" --key "$PKI/client.key" && break
        sleep 0.1
    done
    [ -n "$WORKER" ] || { echo "run.sh: nginx did not start; see $NG/logs/error.log" >&2; exit 1; }
    log "== nginx master $NGINX_PID, worker $WORKER"
fi

if [ "$ONLY" = serve ]; then
    echo "ports: keepalive=$P_KA L=$P_L LN=$P_LN L100=$P_L100 C1=$P_C1 B1=$P_B1 C100=$P_C100 B100=$P_B100"
    echo "worker=$WORKER; config $NG/nginx.conf; Ctrl-C (or kill $$) stops it"
    printf 'P_KA=%s P_L=%s P_LN=%s P_L100=%s P_C1=%s P_B1=%s P_C100=%s P_B100=%s WORKER=%s\n' \
        "$P_KA" "$P_L" "$P_LN" "$P_L100" "$P_C1" "$P_B1" "$P_C100" "$P_B100" "$WORKER" > "$OUT/serve.env"
    wait "$NGINX_PID" || true
    NGINX_PID=
    exit 0
fi

curl_ka() { curl -sS -k --cert "$PKI/chain.pem" --key "$PKI/client.key" "https://127.0.0.1:$P_KA$1"; }
# median of the numbers on stdin
med() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }
field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p"; }
line() { # name candidate baseline
    awk -v n="$1" -v c="$2" -v b="$3" 'BEGIN { printf "%s: candidate=%.0f baseline=%.0f ratio=%.2f\n", n, c, b, (b > 0 ? c / b : 0) }'
}

# ---- (2) Lua per call inside nginx ------------------------------------------------------
if want lua; then
    log "== (2) Lua per-call cost inside nginx"
    for impl in candidate b1 b2; do
        out=$(curl_ka "/$impl")
        [ "$out" = "$(cat "$PKI/chain.pem")" ] || { echo "run.sh: /$impl did not return the chain" >&2; exit 1; }
    done
    : > "$OUT/lua.log"
    for r in $(seq "$ROUNDS"); do
        for impl in candidate b2 b1; do
            ns=$(curl_ka "/percall?impl=$impl&n=$LUA_N" | field ns_per_call)
            echo "$r $impl $ns" >> "$OUT/lua.log"
        done
    done
    mkdir -p "$NG/jit"; chmod 1777 "$NG/jit"   # the worker runs as nobody
    jitlog=$NG/jit/jit-v.log
    curl_ka "/percall?impl=candidate&n=$LUA_N&jitlog=$jitlog" > /dev/null
    for impl in candidate b1 b2; do
        declare "LUA_${impl}=$(awk -v i=$impl '$2 == i {print 1e9 / $3}' "$OUT/lua.log" | med)"
    done
    result "$(line lua_chain_percall_vs_b2 "$LUA_candidate" "$LUA_b2")"
    result "$(line lua_chain_percall_vs_b1 "$LUA_candidate" "$LUA_b1")"
    awk -v c="$LUA_candidate" -v b1="$LUA_b1" -v b2="$LUA_b2" \
        'BEGIN { printf "#   ns per call: candidate %.0f, B1 %.0f, B2 %.0f\n", 1e9/c, 1e9/b1, 1e9/b2 }' | tee -a "$RESULTS"
    traces=$(grep -c '^\[TRACE  *[0-9]' "$jitlog" || true)
    nyi=$(grep '^\[TRACE ---' "$jitlog" | grep -c 'NYI' || true)
    loop_trace=$(grep -c '^\[TRACE  *[0-9]* rct_bench.lua:[0-9]* loop\]' "$jitlog" || true)
    echo "#   jit.v over the candidate's loop (after jit.flush): $traces traces compiled, the loop compiled: $([ "$loop_trace" -gt 0 ] && echo yes || echo NO), $nyi NYI aborts (log: $jitlog):" | tee -a "$RESULTS"
    sed 's/^/#     /' "$jitlog" | head -20 | tee -a "$RESULTS"
    echo "jit_candidate_loop_compiled=$loop_trace nyi_aborts=$nyi" >> "$RESULTS"
fi

# ---- (3) keep-alive requests/s through nginx -------------------------------------------
load() { # mode port path [extra args]: one loadclient run, its key=value line
    local mode=$1 port=$2 path=$3; shift 3
    "$OUT/loadclient" -m "$mode" -p "$port" -u "$path" -C "$PKI/leaf.pem" -K "$PKI/client.key" \
        -E "$PKI/sendchain.pem" -P "$WORKER" "$@"
}
if want keepalive; then
    log "== (3) keep-alive requests through nginx (1 worker, $KA_CONNS connections)"
    : > "$OUT/keepalive.log"
    order=(candidate b1 limit candidate_set b1_set)
    for r in $(seq "$ROUNDS"); do
        for impl in "${order[@]}"; do
            l=$(load keepalive "$P_KA" "/$impl" -c "$KA_CONNS" -d "$KA_SECS" -w "$KA_WARM" -l "$CHAIN_LEN")
            echo "$r $impl $l" | tee -a "$OUT/keepalive.log" >&2
        done
        order=("${order[@]:1}" "${order[0]}")
    done
    for impl in candidate b1 limit candidate_set b1_set; do
        declare "KA_${impl}=$(awk -v i=$impl '$2 == i' "$OUT/keepalive.log" | field per_server_cpu_s | med)"
        declare "KAW_${impl}=$(awk -v i=$impl '$2 == i' "$OUT/keepalive.log" | field rate | med)"
        declare "KAS_${impl}=$(awk -v i=$impl '$2 == i' "$OUT/keepalive.log" | field server_us_per_req | med)"
        declare "KAC_${impl}=$(awk -v i=$impl '$2 == i' "$OUT/keepalive.log" | field client_us_per_req | med)"
        declare "KAB_${impl}=$(awk -v i=$impl '$2 == i' "$OUT/keepalive.log" | field server_busy | med)"
        declare "KAQ_${impl}=$(awk -v i=$impl '$2 == i' "$OUT/keepalive.log" | field server_runq_wait | med)"
    done
    result "$(line ka_chain_vs_limit "$KA_candidate" "$KA_limit")"
    result "$(line ka_chain_vs_b1 "$KA_candidate" "$KA_b1")"
    result "$(line ka_chain_vs_limit_wall "$KAW_candidate" "$KAW_limit")"
    result "$(line ka_chain_vs_b1_wall "$KAW_candidate" "$KAW_b1")"
    result "$(line ka_chain_set_vs_limit "$KA_candidate_set" "$KA_limit")"
    result "$(line ka_chain_set_vs_b1_set "$KA_candidate_set" "$KA_b1_set")"
    for impl in limit candidate b1 candidate_set b1_set; do
        s=KAS_$impl c=KAC_$impl b=KAB_$impl w=KAW_$impl q=KAQ_$impl
        echo "#   $impl: server ${!s} us CPU/request (worker busy ${!b}, runnable-but-waiting ${!q}), client ${!c} us CPU/request, ${!w} requests/s wall" | tee -a "$RESULTS"
    done
fi

# ---- (4) full handshakes/s --------------------------------------------------------------
if want handshake; then
    log "== (4) full handshakes through nginx (1 worker, $HS_CONNS connections)"
    : > "$OUT/handshake.log"
    order=(L C1 B1 C100 B100 LN L100)
    declare -A HS_PORT=([L]=$P_L [LN]=$P_LN [L100]=$P_L100 [C1]=$P_C1 [B1]=$P_B1 [C100]=$P_C100 [B100]=$P_B100)
    for r in $(seq "$ROUNDS"); do
        for s in "${order[@]}"; do
            l=$(load handshake "${HS_PORT[$s]}" / -c "$HS_CONNS" -d "$HS_SECS" -w "$HS_WARM" -l 2)
            echo "$r $s $l" | tee -a "$OUT/handshake.log" >&2
        done
        order=("${order[@]:1}" "${order[0]}")
    done
    for s in L LN L100 C1 B1 C100 B100; do
        declare "HS_${s}=$(awk -v i=$s '$2 == i' "$OUT/handshake.log" | field per_server_cpu_s | med)"
        declare "HSW_${s}=$(awk -v i=$s '$2 == i' "$OUT/handshake.log" | field rate | med)"
        declare "HSS_${s}=$(awk -v i=$s '$2 == i' "$OUT/handshake.log" | field server_us_per_req | med)"
        declare "HSC_${s}=$(awk -v i=$s '$2 == i' "$OUT/handshake.log" | field client_us_per_req | med)"
        declare "HSB_${s}=$(awk -v i=$s '$2 == i' "$OUT/handshake.log" | field server_busy | med)"
        declare "HST_${s}=$(awk -v i=$s '$2 == i' "$OUT/handshake.log" | field tickets_per_req | med)"
        declare "HSQ_${s}=$(awk -v i=$s '$2 == i' "$OUT/handshake.log" | field server_runq_wait | med)"
    done
    result "$(line hs_1ca_vs_limit "$HS_C1" "$HS_L")"
    result "$(line hs_1ca_vs_b1 "$HS_C1" "$HS_B1")"
    result "$(line hs_100ca_vs_b1 "$HS_C100" "$HS_B100")"
    result "$(line hs_1ca_vs_limit_nginx_tickets "$HS_C1" "$HS_LN")"
    result "$(line hs_100ca_vs_limit100 "$HS_C100" "$HS_L100")"
    result "$(line hs_1ca_vs_limit_wall "$HSW_C1" "$HSW_L")"
    echo "candidate_tickets_per_handshake=$HST_C1 $HST_C100" >> "$RESULTS"
    declare -A HS_NAME=([L]="L (native, NumTickets 0)" [LN]="L (native, nginx tickets off: 2 stateful tickets)"
        [L100]="L, 100 CAs" [C1]="candidate, 1 CA" [B1]="B1, 1 CA" [C100]="candidate, 100 CAs" [B100]="B1, 100 CAs")
    for s in L LN L100 C1 B1 C100 B100; do
        a=HSS_$s c=HSC_$s b=HSB_$s w=HSW_$s t=HST_$s q=HSQ_$s
        echo "#   ${HS_NAME[$s]}: server ${!a} us CPU/handshake (worker busy ${!b}, runnable-but-waiting ${!q}), client ${!c} us CPU/handshake, ${!w} handshakes/s wall, ${!t} tickets/handshake" | tee -a "$RESULTS"
    done
fi

# ---- (5) many tenants: full handshakes/s against the number of distinct CA lists -----
if want tenants; then
    log "== (5) many tenants: full handshakes with K rotating CA lists (1 worker, $HS_CONNS connections)"
    : > "$OUT/tenants.log"
    for k in "${TENANT_KS[@]}"; do
        curl_ka "/tenants?k=$k" | tee -a "$OUT/tenants.log" >&2
        order=(TC TB)
        for r in $(seq "$ROUNDS"); do
            for s in "${order[@]}" L5; do
                port=P_$s
                l=$(load handshake "${!port}" / -c "$HS_CONNS" -d "$HS_SECS" -w "$HS_WARM" -l 2)
                echo "$k $r $s $l" | tee -a "$OUT/tenants.log" >&2
            done
            order=("${order[@]:1}" "${order[0]}")
        done
    done
    : > "$OUT/tenants.dat"
    for k in "${TENANT_KS[@]}"; do
        for s in TC TB L5; do
            declare "T_${s}_$k=$(awk -v k=$k -v i=$s '$1 == k && $3 == i' "$OUT/tenants.log" | field per_server_cpu_s | med)"
        done
        c=T_TC_$k b=T_TB_$k n=T_L5_$k one=T_TC_1
        result "$(line "tenants_${k}_vs_b1" "${!c}" "${!b}")"
        result "$(line "tenants_${k}_vs_one" "${!c}" "${!one}")"
        result "$(line "tenants_${k}_vs_native5" "${!c}" "${!n}")"
        echo "$k ${!c} ${!b} ${!n}" >> "$OUT/tenants.dat"
    done
    echo "#   CA-list cache after the last set: $(grep -o 'ca_cache_bytes=[0-9]* ca_cache_entries=[0-9]*' "$OUT/tenants.log" | tail -1)" | tee -a "$RESULTS"
fi

if [ -n "$NGINX_PID" ]; then
    stop_nginx
    if grep -E '\[(alert|crit|emerg|error)\]' "$NG/logs/error.log" | grep -v 'could not allocate new session' > "$OUT/nginx-errors.log"; then
        echo "# nginx logged errors (see $OUT/nginx-errors.log):" | tee -a "$RESULTS"
        head -5 "$OUT/nginx-errors.log" | sed 's/^/#   /' | tee -a "$RESULTS"
    fi
fi

# ---- (6) memory per idle keep-alive connection ------------------------------------------
# A fresh nginx (1 worker) per sample: N mTLS connections opened one after another, each
# with one request, then left idle; the worker's RssAnon growth divided by N. "candidate":
# the request reads the chain and the verify result through the PDK; "limit": nginx's own
# `return 200`. Both with `ssl_verify_client optional_no_ca`.
mem_sample() { # impl -> lines "conns=N rss_kib=R per_conn_kib=P"
    local impl=$1 dir=$OUT/mem-nginx port
    rm -rf "$dir"; mkdir -p "$dir/tmp"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$dir/nginx.conf" <<EOF3
load_module $NGINX_MODULES/ndk_http_module.so;
load_module $NGINX_MODULES/ngx_http_lua_module.so;
$WORKER_USER
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    keepalive_timeout 300s;
    lua_package_path "$REPO/lua-bindings/?.lua;$HERE/lua/?.lua;;";
    lua_package_cpath "$REPO/target/release/lib?.so;;";
    init_by_lua_block { require("resty.client_tls") }
    server {
        listen 127.0.0.1:$port ssl;
        $tls_common
        ssl_verify_client optional_no_ca;
        ssl_client_certificate $PKI/ca1.pem;
        ssl_verify_depth 3;
        location = /candidate { content_by_lua_block { require("rct_bench").memory_request() } }
        location = /limit     { return 200 "ok"; }
    }
}
EOF3
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    local master=$! worker=""
    for _ in $(seq 50); do
        worker=$(ps -o pid= --ppid "$master" | tr -d ' ' | head -1 || true)
        [ -n "$worker" ] && curl -sk -o /dev/null "https://127.0.0.1:$port/limit" && break
        sleep 0.1
    done
    [ -n "$worker" ] || { echo "run.sh: the memory nginx did not start; see $dir/error.log" >&2; kill "$master"; exit 1; }
    python3 "$HERE/memory.py" "$port" "/$impl" "$PKI/chain.pem" "$PKI/client.key" "$worker" "$MEM_POINTS" \
        || { echo "run.sh: memory client failed (see $dir/error.log)" >&2; kill -QUIT "$master"; wait "$master"; exit 1; }
    kill -QUIT "$master"; wait "$master" || true
    if grep -E '\[(alert|crit|emerg|error)\]' "$dir/error.log"; then echo "run.sh: the memory nginx logged errors" >&2; exit 1; fi
}
if want memory; then
    log "== (6) memory per idle keep-alive connection (fresh nginx per sample, up to ${MEM_POINTS##*,} connections)"
    : > "$OUT/memory.log"
    order=(candidate limit)
    for r in $(seq "$ROUNDS"); do
        for impl in "${order[@]}"; do
            mem_sample "$impl" | sed "s/^/$r $impl /" | tee -a "$OUT/memory.log" >&2
        done
        order=("${order[@]:1}" "${order[0]}")
    done
    : > "$OUT/memory.dat"
    for n in ${MEM_POINTS//,/ }; do
        c=$(awk -v n="conns=$n" '$2 == "limit" || $3 != n { next } { print }' "$OUT/memory.log" | field per_conn_kib | med)
        l=$(awk -v n="conns=$n" '$2 != "limit" || $3 != n { next } { print }' "$OUT/memory.log" | field per_conn_kib | med)
        echo "$n $c $l" >> "$OUT/memory.dat"
    done
    read -r MEM_N MEM_C MEM_L < <(tail -n 1 "$OUT/memory.dat")
    # connections per MiB, higher is better: the ratio is L's KiB over ours.
    result "$(line memory_per_conn_vs_limit "$(awk -v k="$MEM_C" 'BEGIN { print 1024 / k }')" "$(awk -v k="$MEM_L" 'BEGIN { print 1024 / k }')")"
    echo "#   KiB per idle connection at $MEM_N connections: candidate $MEM_C, L $MEM_L (medians of $ROUNDS fresh nginx each)" | tee -a "$RESULTS"
fi

# ---- the plot ---------------------------------------------------------------------------
if [ -s "$OUT/tenants.dat" ] || [ -s "$OUT/memory.dat" ]; then
    if command -v gnuplot >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq gnuplot-nox >/dev/null 2>&1; }; then
        gnuplot -e "tenants='$OUT/tenants.dat'; memory='$OUT/memory.dat'; out='$OUT/scale.svg'" "$HERE/scale.gp" \
            && log "== plot: $OUT/scale.svg"
    else
        log "== no plot: gnuplot is missing (apt-get install gnuplot-nox)"
    fi
fi

echo "# load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at end" | tee -a "$RESULTS"
python3 "$HERE/summary.py" "$RESULTS" | tee "$OUT/summary.md"
