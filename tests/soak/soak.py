#!/usr/bin/env python3
"""Soak: drives full TLS handshakes (with and without client certificates, TLS 1.2 and 1.3,
three server{} blocks, aborted handshakes) and keep-alive requests through one nginx worker
whose Lua handlers call every resty.client_tls function on every request, under
collectgarbage() pressure; samples the worker's RSS after each round.

usage: python3 -m tests.soak.soak [--handshakes N] [--requests N] [--rounds N] [--max-growth-kib N] [--keep]

Passes when: every response is what the client's certificate implies, the worker never
restarted, the error log has no [alert]/[crit]/[emerg] (nor any [error]) line, and the
worker's RSS after the warm-up rounds (the first 20 %) grew by at most --max-growth-kib.
Prints the figures, then exactly "N passed, N failed".
"""

import argparse
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests import harness

HERE = os.path.dirname(os.path.abspath(__file__))

CONF = """
    init_by_lua_block {
        package.path = "@soak_lua@/?.lua;" .. package.path
        require("soak").init("@ca@")
    }
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 5s;  # sessions expire and are evicted: the cache stays small
    ssl_session_tickets on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    access_log off;
@servers@
    server {
        listen 127.0.0.1:@port:plain@;
        location / { content_by_lua_block { require("soak").plain() } }
        location = /stats { content_by_lua_block { require("soak").stats() } }
    }
"""

LOCATIONS = """
        location / {
            access_by_lua_block { require("soak").access() }
            content_by_lua_block { require("soak").content() }
            log_by_lua_block { require("soak").log() }
        }
"""

HOSTS = {  # SNI: (server{} tag, certificate phase)
    "cached.test": 'require("soak").cert_phase("cached", 2)',
    "fresh.test": 'require("soak").cert_phase("fresh", 2)',
    "nocert.test": None,
}


def servers(pki):
    out = []
    for i, (host, phase) in enumerate(HOSTS.items()):
        cert = pki.server(host)
        out.append("    server {\n"
                   "        listen 127.0.0.1:@port:tls@ ssl%s;\n" % (" default_server" if i == 0 else "")
                   + "        server_name %s;\n" % host
                   + "        ssl_certificate %s;\n        ssl_certificate_key %s;\n" % (cert.cert, cert.key)
                   + "        ssl_protocols TLSv1.2 TLSv1.3;\n"
                   + ("        ssl_certificate_by_lua_block { %s }\n" % phase if phase else "")
                   + LOCATIONS + "    }\n")
    return "".join(out)


class Failures:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, what):
        with self.lock:
            if len(self.items) < 20:
                self.items.append(what)
            self.count = getattr(self, "count", 0) + 1


def http_get(sock, host, path="/", close=False):
    req = "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, "Connection: close\r\n" if close else "")
    sock.sendall(req.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return status, body[:length]


class Clients:
    """SSL contexts: good client (leaf + intermediate), self-signed client, no certificate."""

    def __init__(self, pki):
        self.ctx = {}
        for version in ("1.2", "1.3"):
            for who in ("good", "selfsigned", "none"):
                c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                c.check_hostname = False
                c.verify_mode = ssl.CERT_NONE
                v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
                c.minimum_version = c.maximum_version = v
                if who == "good":
                    c.load_cert_chain(pki.good.bundle, pki.good.key)
                elif who == "selfsigned":
                    c.load_cert_chain(pki.selfsigned.cert, pki.selfsigned.key)
                self.ctx[(version, who)] = c
        self.good_chain_len = len(pki.good.expected_chain())
        self.selfsigned_len = len(pki.selfsigned.pem())

    def expected(self, host, who, body):
        """Whether the body matches the certificate sent."""
        fields = parse_report(body)
        if host == "nocert.test" or who == "none":
            return fields.get("verify") == "NONE" and fields.get("chain") == "0"
        if who == "good":
            return fields.get("verify") == "SUCCESS" and fields.get("chain") == str(self.good_chain_len)
        return fields.get("verify", "").startswith("FAILED:") and fields.get("chain") == str(self.selfsigned_len)


def parse_report(body):
    """The one "key=value ... end" report a soak response carries, as a dict ({} if none)."""
    reports = harness.parse_reports(body.decode())
    return reports[0] if reports else {}


def one_handshake(clients, port, i, failures, stats):
    host = list(HOSTS)[i % 3]
    version = "1.3" if (i // 3) % 2 else "1.2"
    who = "good" if i % 7 else ("none" if i % 14 else "selfsigned")
    ctx = clients.ctx[(version, who)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                status, body = http_get(s, host, close=True)
                if status != 200 or not clients.expected(host, who, body):
                    failures.add("handshake %d %s TLS%s %s: %s %r" % (i, host, version, who, status, body))
                stats["with_cert" if who != "none" and host != "nocert.test" else "without_cert"] += 1
    except Exception as e:  # noqa: BLE001
        failures.add("handshake %d %s TLS%s %s: %r" % (i, host, version, who, e))


def aborted_handshake(clients, port, i):
    """A client that gives up mid-handshake: after the TCP connect, after its ClientHello
    (server flight read, certificate phase run), or after half a ClientHello."""
    kind = i % 3
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        if kind == 0:
            return
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = clients.ctx[("1.3" if i % 2 else "1.2", "good")].wrap_bio(inc, out, server_hostname="cached.test")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        if kind == 1:
            raw.sendall(hello)
            raw.recv(65536)
        else:
            raw.sendall(hello[: len(hello) // 2])


def keepalive_conn(clients, port, i, n, failures, stats):
    host = list(HOSTS)[i % 3]
    version = "1.3" if i % 2 else "1.2"
    ctx = clients.ctx[(version, "good")]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                for k in range(n):
                    override = k % 10 == 0
                    status, body = http_get(s, host, "/?set=1" if override else "/")
                    ok = status == 200 and (
                        body.startswith(b"verify=FAILED:soak override") if override and host != "nocert.test"
                        else clients.expected(host, "good", body) or (override and host == "nocert.test"))
                    if not ok:
                        failures.add("keepalive %d/%d %s: %s %r" % (i, k, host, status, body))
                        return
                    stats["requests"] += 1
    except Exception as e:  # noqa: BLE001
        failures.add("keepalive conn %d %s: %r" % (i, host, e))


def plain_requests(port, n, failures):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(n):
            status, body = http_get(s, "plain")
            if status != 200 or body != b"ok\n":
                failures.add("plain: %s %r" % (status, body))
                return


def worker_pid(master):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                status = f.read()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if "\nPPid:\t%d\n" % master in status and b"worker process" in cmd:
            return int(pid)
    return None


def rss_kib(pid, field="RssAnon"):
    """RssAnon: the worker's private memory (heap, where a leak shows); VmRSS adds the
    mapped files and the shared memory it touched (nginx's shared session cache)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no " + field)


def lua_stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        _, body = http_get(s, "plain", "/stats", close=True)
    return parse_report(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--handshakes", type=int, default=17000,
                    help="full handshakes; about 62%% of them send a client certificate to a server "
                         "that requests one")
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--max-growth-kib", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="rct-soak-")
    harness.setup_run(tmp, keep=args.keep, log_level="notice")
    pki = harness.pki()
    ca = os.path.join(tmp, "soak-ca.pem")
    with open(ca, "wb") as f:
        f.write(pki.int.pem() + pki.root.pem())
    clients = Clients(pki)
    conf = CONF.replace("@servers@", servers(pki))
    failures = Failures()
    stats = {"with_cert": 0, "without_cert": 0, "requests": 0, "aborted": 0}
    samples = []
    results = []
    counts = {}
    start = time.monotonic()
    hs_per_round = args.handshakes // args.rounds
    conns_per_round = max(1, args.requests // args.rounds // 500)
    req_per_conn = args.requests // args.rounds // conns_per_round
    ng = harness.Nginx(conf, soak_lua=os.path.join(HERE, "lua"), ca=ca)
    # Started and stopped by hand (not `with ng`): the error log is judged below, once,
    # with every unexpected line shown.
    nginx_failure = None
    try:
        ng.start()
        master = ng.proc.pid
        # The ports answer once the master has bound them, maybe before it forked the worker.
        pid = harness.wait_for(lambda: worker_pid(master), 5.0)
        if pid is None:
            raise harness.TestFailure("no worker process 5s after nginx started:\n" + ng.log_text())
        tls_port, plain_port = ng.ports["tls"], ng.ports["plain"]
        print("worker pid %d, RssAnon at start %d KiB, VmRSS %d KiB"
              % (pid, rss_kib(pid), rss_kib(pid, "VmRSS")))
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            for r in range(args.rounds):
                t0 = time.monotonic()
                base = r * hs_per_round
                list(pool.map(lambda i: one_handshake(clients, tls_port, i, failures, stats),
                              range(base, base + hs_per_round)))
                for i in range(max(1, hs_per_round // 50)):
                    aborted_handshake(clients, tls_port, base + i)
                    stats["aborted"] += 1
                list(pool.map(lambda i: keepalive_conn(clients, tls_port, i, req_per_conn, failures, stats),
                              range(r * conns_per_round, (r + 1) * conns_per_round)))
                plain_requests(plain_port, 100, failures)
                time.sleep(0.2)  # let the log phase and closed connections finish
                now_pid = worker_pid(master)
                if now_pid != pid:
                    failures.add("worker restarted: pid %s -> %s" % (pid, now_pid))
                    pid = now_pid
                lua = lua_stats(plain_port)
                samples.append((rss_kib(pid), int(lua["lua_kb"]), rss_kib(pid, "VmRSS")))
                print("round %2d: %6d handshakes (%d with a client cert), %7d keep-alive requests, "
                      "%d aborted; worker RssAnon %6d KiB (VmRSS %6d), Lua heap %5d KiB (%.1fs)"
                      % (r + 1, stats["with_cert"] + stats["without_cert"], stats["with_cert"],
                         stats["requests"], stats["aborted"], samples[-1][0], samples[-1][2],
                         samples[-1][1], time.monotonic() - t0))
                sys.stdout.flush()
        counts = lua_stats(plain_port)
    except AssertionError as e:  # nginx did not start (the harness says why)
        nginx_failure = str(e)
    finally:
        nginx_failure = nginx_failure or ng.stop()
    elapsed = time.monotonic() - start

    # [alert]/[crit]/[emerg] and [error] lines, Lua errors: each one shown.
    log_problems = ng.log_problems()
    warmup = max(1, args.rounds // 5)
    growth = (samples[-1][0] - samples[warmup - 1][0]) if len(samples) > warmup else None
    peak_growth = (max(s[0] for s in samples[warmup:]) - samples[warmup - 1][0]) if len(samples) > warmup else None
    lua_growth = (samples[-1][1] - samples[warmup - 1][1]) if len(samples) > warmup else None
    print("totals: %d full handshakes (%d with a client certificate), %d aborted handshakes, "
          "%d keep-alive requests in %.0fs"
          % (stats["with_cert"] + stats["without_cert"], stats["with_cert"], stats["aborted"],
             stats["requests"], elapsed))
    if samples:
        print("worker private RSS (RssAnon) after warm-up (round %d): %d KiB; at the end: %d KiB; "
              "growth %+d KiB (peak %+d KiB); VmRSS %d -> %d KiB; Lua heap growth %+d KiB"
              % (warmup, samples[warmup - 1][0], samples[-1][0], growth, peak_growth,
                 samples[warmup - 1][2], samples[-1][2], lua_growth))
    print("error log: %d unexpected lines%s" % (len(log_problems), " (%s):" % ng.error_log if log_problems else ""))
    for line in log_problems[:20]:
        print("    " + line)
    if nginx_failure:
        print("nginx: " + nginx_failure.replace("\n", "\n    "))
    if counts:
        print("lua counters: " + ", ".join("%s=%s" % kv for kv in sorted(counts.items()) if kv[0] != "lua_kb"))

    results.append(("every response matched the client certificate, worker never restarted",
                    not failures.items))
    results.append(("nginx started and stopped on SIGQUIT", not nginx_failure))
    results.append(("no [error]/[alert]/[crit]/[emerg] line nor Lua error in the error log", not log_problems))
    results.append(("RSS growth after warm-up %s KiB <= %d KiB" % (growth, args.max_growth_kib),
                    growth is not None and growth <= args.max_growth_kib))
    results.append(("no handshake was resumed (all full handshakes)", bool(counts) and not counts.get("count.resumed:true")))
    results.append(("counts reached: %d handshakes >= %d, %d requests >= %d"
                    % (stats["with_cert"] + stats["without_cert"], hs_per_round * args.rounds,
                       stats["requests"], req_per_conn * conns_per_round * args.rounds),
                    stats["with_cert"] + stats["without_cert"] >= hs_per_round * args.rounds
                    and stats["requests"] >= req_per_conn * conns_per_round * args.rounds))
    for what in failures.items:
        print("    failure: " + what)
    passed = sum(1 for _, ok in results if ok)
    for what, ok in results:
        print("%s %s" % ("PASS" if ok else "FAIL", what))
    if not args.keep and passed == len(results):
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("temp dir kept: " + tmp)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
