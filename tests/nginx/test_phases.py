"""Every API function called from every phase: works in the phases the API documents, raises
`function cannot be called in <phase> phase (only in: <phases>)` everywhere else."""

import base64
import re

from tests.harness import Nginx, TestFailure, expect_eq, note, pki, tls_server, wait_for
from tests.harness.clients import curl, curl_one

CHAIN_PHASES = {"rewrite", "access", "content", "balancer", "header_filter", "body_filter", "log"}
ALLOWED = {
    "request_client_certificate": {"ssl_cert"},
    "disable_session_reuse": {"ssl_cert"},
    "get_full_client_certificate_chain": CHAIN_PHASES,
    "get_client_verify": CHAIN_PHASES,
    "set_client_verify": {"rewrite", "access", "content", "balancer"},
}
PHASES = ["init", "init_worker", "timer", "ssl_client_hello", "ssl_cert", "set", "rewrite",
          "access", "content", "header_filter", "body_filter", "log", "balancer"]
PHASE_ERROR = re.compile(r"raise:(?:[^\n]*?:\d+: )?function cannot be called in (\S+) phase "
                         r"\(only in: ([^)]*)\)")

TRY = 'require("rct_test").try_all()'
HTTP_CONF = """
    init_by_lua_block { %(try)s }
    init_worker_by_lua_block {
        %(try)s
        assert(ngx.timer.at(0, function() %(try)s end))
    }
    upstream backend {
        server 127.0.0.1:@port:backend@;
        balancer_by_lua_block { %(try)s }
    }
    server {
        listen 127.0.0.1:@port:backend@;
        location / { return 200 "backend\\n"; }
    }
%(server)s
"""
LOCATIONS = """
        location = /phases {
            set_by_lua_block $unused { %(try)s return "" }
            rewrite_by_lua_block { %(try)s }
            access_by_lua_block { %(try)s }
            content_by_lua_block { %(try)s ngx.say("ok") }
            header_filter_by_lua_block { %(try)s }
            body_filter_by_lua_block { %(try)s }
            log_by_lua_block { %(try)s }
        }
        location = /balancer {
            proxy_pass http://backend/;
        }
        location = /dump {
            content_by_lua_block { require("rct_test").dump_phases() }
        }
""" % {"try": TRY}


def expected_outcome(fn, phase, chain):
    """What a call returns in a phase that allows it (the client is `good`, depth 2)."""
    return {"request_client_certificate": "true", "disable_session_reuse": "true",
            "get_full_client_certificate_chain": chain, "get_client_verify": "SUCCESS",
            "set_client_verify": "ok"}[fn]


def record_phases():
    """Run one handshake + /phases + /balancer; return {"phase|function": outcome}."""
    server = tls_server("main", default=True, locations=LOCATIONS,
                        cert_phase={"ca": [pki().int, pki().root], "depth": 2, "try_all": True},
                        extra="        ssl_client_hello_by_lua_block { %s }\n" % TRY)
    with Nginx(HTTP_CONF % {"try": TRY, "server": server}) as ng:
        port = ng.ports["main"]
        r1, r2 = curl(port, ["/phases", "/balancer"], client=pki().good)
        expect_eq((r1.status, r2.status), (200, 200), "status of /phases and /balancer")

        def dump():  # the timer may run late
            text = curl_one(port, "/dump").body.decode()
            results = dict(line.split("=", 1) for line in text.splitlines())
            complete = all("%s|request_client_certificate" % p in results for p in PHASES)
            return results if complete else None
        results = wait_for(dump)
        if results is None:
            raise TestFailure("not every phase recorded its calls:\n%s"
                              % curl_one(port, "/dump").body.decode())
    return results


def outcome_problem(fn, phase, got, chain):
    """None when `got` is right for `fn` called in `phase`, else a description."""
    if phase in ALLOWED[fn]:
        want = expected_outcome(fn, phase, chain)
        if got == want:
            return None
        return "expected %s, got %s" % ("the client chain" if want == chain else want, _short(got))
    m = PHASE_ERROR.fullmatch(got or "")
    if not m:
        return "expected the phase error, got %s" % _short(got)
    listed = set(re.split(r"[,\s]+", m.group(2).strip()))
    if m.group(1) != phase or listed != ALLOWED[fn]:
        return "error names phase %r and allowed %s (want %r, %s)" % (
            m.group(1), sorted(listed), phase, sorted(ALLOWED[fn]))
    return None


def test_phase_matrix():
    """All 5 functions x 13 phases (init, init_worker, timer, ssl_client_hello, ssl_cert, set,
    rewrite, access, content, header_filter, body_filter, log, balancer)."""
    results = record_phases()
    chain = "pem:" + base64.b64encode(pki().good.expected_chain()).decode()
    problems = []
    for phase in PHASES:
        for fn in sorted(ALLOWED):
            problem = outcome_problem(fn, phase, results.get("%s|%s" % (phase, fn)), chain)
            if problem:
                problems.append("%s in %s: %s" % (fn, phase, problem))
    allowed = sum(len(phases) for phases in ALLOWED.values())
    note("%d phase/function pairs checked (%d allowed)", len(PHASES) * len(ALLOWED), allowed)
    if problems:
        raise TestFailure("\n".join(problems))


def _short(value):
    if value is None:
        return "nothing recorded"
    return value if len(value) < 120 else value[:117] + "..."


def test_wrong_argument_types():
    """request_client_certificate rejects a string, a table, a number and a non-stack cdata
    with a Lua error; each call fails alone and the handshake goes on."""
    conf = tls_server("main", default=True, cert_phase=None, extra="""\
        ssl_certificate_by_lua_block {
            local tls = require("resty.client_tls")
            local ffi = require "ffi"
            local out = {}
            for _, arg in ipairs({ "-----BEGIN CERTIFICATE-----", {}, 42, ffi.new("int[1]") }) do
                local ok, err = pcall(tls.request_client_certificate, arg)
                out[#out + 1] = type(arg) .. "=" .. (ok and "accepted" or "raise:" .. tostring(err))
            end
            ngx.shared.rct:set("argcheck", table.concat(out, "\\n"))
        }
        location = /argcheck {
            content_by_lua_block { ngx.say(ngx.shared.rct:get("argcheck")) }
        }
""")
    with Nginx(conf) as ng:
        lines = curl_one(ng.ports["main"], "/argcheck").body.decode().splitlines()
    expect_eq(len(lines), 4, "results")
    for line in lines:
        kind, outcome = line.split("=", 1)
        if not outcome.startswith("raise:") or len(outcome) < 12:
            raise TestFailure("request_client_certificate(<%s>): expected a Lua error, got %r"
                              % (kind, outcome))
        note("%s: %s", kind, outcome[6:])


def test_uncaught_phase_error_logged():
    """Without pcall, a wrong-phase call fails the request (500) and nginx logs the contract
    message; the worker goes on serving."""
    conf = tls_server("main", default=True, extra="""\
        location = /raise {
            content_by_lua_block { require("resty.client_tls").request_client_certificate() }
        }
""")
    message = r"function cannot be called in content phase \(only in: ssl_cert\)"
    with Nginx(conf, expect_errors=[message]) as ng:
        r1, r2 = curl(ng.ports["main"], ["/raise", "/info"])
        expect_eq((r1.status, r2.status), (500, 200), "status of /raise, then /info")
