#!/usr/bin/env python3
"""Summary of a bench/run.sh results file: one row per target of issue 4 (PASS/MISS),
then the informational comparisons. Prints Markdown (bench/run.sh keeps a copy in
target/bench/summary.md; the README table is made from it).

    python3 bench/summary.py target/bench/results.txt
"""
import re
import sys

# (line name, minimum ratio, what the issue asks)
TARGETS = [
    ("c_chain_repeat", 10.0, "chain, C micro, repeated calls on one connection >= 10x B1"),
    ("c_chain_sizefill_cold", 5.0, "chain, C micro, size query + fill (first use on a connection) >= 5x B1"),
    ("lua_chain_percall_vs_b2", 4.0, "chain, Lua per call inside nginx >= 4x B2"),
    ("ka_chain_vs_limit", 0.85, "keep-alive requests returning the chain >= 0.85 of L (server CPU)"),
    ("ka_chain_vs_b1", 1.6, "keep-alive requests returning the chain >= 1.6x B1 (server CPU)"),
    ("c_request_1ca", 0.97, "request_client_certificate, 1 CA >= 0.97x B1"),
    ("c_request_100ca", 1.2, "request_client_certificate, 100 CAs >= 1.2x B1"),
    ("hs_1ca_vs_limit", 0.90, "full handshakes (request + disable_session_reuse) >= 0.90 of L (server CPU)"),
    ("hs_1ca_vs_b1", 0.97, "full handshakes >= 0.97x B1 (server CPU)"),
    ("hs_100ca_vs_b1", 1.15, "full handshakes with 100 CAs >= 1.15x B1 (server CPU)"),
]
INFO = {
    "c_chain_sizefill_warm": "chain, C micro, size query + fill on a connection already asked",
    "c_request_10ca": "request_client_certificate, 10 CAs vs B1",
    "c_request_100ca_2parses": "request_client_certificate, 100 CAs from two parses used alternately vs B1",
    "lua_chain_percall_vs_b1": "chain, Lua per call inside nginx vs B1 through the FFI",
    "ka_chain_vs_limit_wall": "keep-alive requests/s (wall clock) vs L",
    "ka_chain_vs_b1_wall": "keep-alive requests/s (wall clock) vs B1",
    "ka_chain_set_vs_limit": "keep-alive, chain through set_by_lua + `return` (no Lua coroutine per request) vs L",
    "ka_chain_set_vs_b1_set": "keep-alive, the same set_by_lua handler, candidate vs B1",
    "hs_1ca_vs_limit_nginx_tickets": "full handshakes vs L with nginx's tickets off alone (2 stateful TLS 1.3 tickets)",
    "hs_100ca_vs_limit100": "full handshakes with 100 CAs vs L with 100 CAs in ssl_client_certificate",
    "hs_1ca_vs_limit_wall": "full handshakes/s (wall clock) vs L",
}
LINE = re.compile(r"^([a-z0-9_]+): candidate=(\S+) baseline=(\S+) ratio=(\S+)")


def main(path):
    lines = open(path).read().splitlines()
    got = {}
    for l in lines:
        m = LINE.match(l)
        if m:
            got[m.group(1)] = (float(m.group(2)), float(m.group(3)), float(m.group(4)))
    head = [l[2:] for l in lines if l.startswith("# ") and l[2:].split(":")[0] in ("date", "machine", "software", "mode")]
    print("## Benchmark summary (bench/run.sh)\n")
    for h in head:
        print("- " + h)
    print()
    print("| target | measured | ratio | need | result |")
    print("| --- | --- | ---: | ---: | --- |")
    passed = missed = 0
    for name, need, what in TARGETS:
        if name not in got:
            print("| %s | `%s` | - | %.2f | not run |" % (what, name, need))
            continue
        ratio = got[name][2]
        ok = ratio >= need
        passed += ok
        missed += not ok
        short = "" if ok else " (short by %.0f%%)" % (100 * (need - ratio) / need)
        print("| %s | `%s` | %.2f | %.2f | %s%s |" % (what, name, ratio, need, "PASS" if ok else "MISS", short))
    print()
    info = [(n, d) for n, d in INFO.items() if n in got]
    if info:
        print("| also measured | measured | ratio |")
        print("| --- | --- | ---: |")
        for n, d in info:
            print("| %s | `%s` | %.2f |" % (d, n, got[n][2]))
        print()
    tickets = [l for l in lines if l.startswith("candidate_tickets_per_handshake=")]
    if tickets:
        print("TLS 1.3 session tickets per handshake after disable_session_reuse() (1 CA, 100 CAs): %s\n"
              % tickets[0].split("=")[1])
    jit = [l for l in lines if l.startswith("jit_candidate_loop_compiled=")]
    if jit:
        kv = dict(x.split("=") for x in jit[0].split())
        print("JIT (jit.v over the candidate's per-call loop): loop compiled: %s, NYI aborts: %s\n"
              % ("yes" if int(kv["jit_candidate_loop_compiled"]) > 0 else "NO", kv["nyi_aborts"]))
    print("%d PASS, %d MISS of %d targets" % (passed, missed, len(TARGETS)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/bench/results.txt")
