#!/usr/bin/env python3
"""Memory per idle keep-alive mTLS connection, for bench/run.sh.

usage: memory.py PORT PATH CHAIN_PEM KEY WORKER_PID N1,N2,...

Opens connections to 127.0.0.1:PORT one after another, each with the client chain, one
HTTP/1.1 keep-alive request to PATH (whose answer must be 200 "ok"), then leaves it open
and idle. At each checkpoint N it reads the worker's private memory (RssAnon, KiB) and
prints `conns=N rss_kib=R per_conn_kib=P`, P being the growth since before the first
connection divided by N. All connections are closed at the end.
"""

import resource
import socket
import ssl
import sys
import time


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon for pid %d" % pid)


def request(ctx, port, path):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="server.bench.test")
    s.sendall(("GET %s HTTP/1.1\r\nHost: server.bench.test\r\n\r\n" % path).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed before the response")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("unexpected response: %r" % head[:80])
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    while len(body) < length:
        body += s.recv(4096)
    if body != b"ok":
        raise RuntimeError("unexpected body %r" % body[:80])
    return s


def main(argv):
    port, path, chain, key, pid, points = int(argv[1]), argv[2], argv[3], argv[4], int(argv[5]), argv[6]
    points = sorted(int(n) for n in points.split(","))
    resource.setrlimit(resource.RLIMIT_NOFILE, (points[-1] + 1024, points[-1] + 1024))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(chain, key)
    base = rss_anon_kib(pid)
    conns = []
    for n in points:
        while len(conns) < n:
            conns.append(request(ctx, port, path))
        time.sleep(0.2)  # let the worker finish with the last request
        rss = rss_anon_kib(pid)
        print("conns=%d rss_kib=%d per_conn_kib=%.2f" % (n, rss, (rss - base) / n), flush=True)
    for s in conns:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
