#!/usr/bin/env python3
"""nginx part of tests/reliability/panic.sh: a worker loading the test-hooks build of the
library; every function, with a panic injected, answers nil, "internal error (panic)"
(set_client_verify: the validator says false, so it raises "unknown client verify
value"); the worker does not crash and the same connection's next calls work.
usage: python3 -m tests.reliability.panic_nginx LIB_DIR   (from the repository root)"""
import os
import sys

from tests.harness import expect_eq, note, pki, runner
from tests.harness.clients import s_client
from tests.reliability.relharness import INIT, Nginx, rel_server, worker_pids

PANIC = "nil,internal error (panic)"


def test_panic_in_nginx(lib_dir):
    p = pki()
    locations = """        location / { content_by_lua_block { require("panic_test").content() } }\n"""
    conf = ("    " + INIT + rel_server("main", "localhost", "p", default=True, locations=locations)
            .replace('ssl_certificate_by_lua_block', '#')
            .replace("set $rel_server p;", 'set $rel_server p;\n        ssl_certificate_by_lua_block '
                     '{ require("panic_test").cert_phase() }'))
    with Nginx(conf, lib_dir=lib_dir) as ng:
        pids = worker_pids(ng)
        for mode in ("tls1.2", "tls1.3"):
            r = s_client(ng.ports["main"], "localhost", mode, p.good).report
            for key in ("request", "disable", "chain", "verify", "session"):
                expect_eq(r[key], PANIC, "%s %s with a panic" % (mode, key))
            expect_eq(r["set_verify"], 'raise:unknown client verify value: SUCCESS accepted values are: '
                      '"SUCCESS", "NONE" or "FAILED:<reason>"', mode + " set_client_verify with a panic")
            expect_eq(r["after.verify"], "FAILED:unable to get local issuer certificate",
                      mode + " get_client_verify afterwards")
            expect_eq(r["after.chain"], "present", mode + " chain afterwards")
        expect_eq(worker_pids(ng), pids, "worker pids")
        panics = ng.log_text().count("RESTY_CLIENT_TLS_TEST_PANIC is set")
        note("nginx: 14 calls with an injected panic answered nil, \"internal error (panic)\" (or raised for "
             "set_client_verify), worker pid unchanged; %d panic messages in the error log", panics)


if __name__ == "__main__":
    sys.exit(runner.run_tests([("test_panic_in_nginx", lambda: test_panic_in_nginx(sys.argv[1]))],
                              "rct-reliability-"))
