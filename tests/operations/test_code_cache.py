"""`lua_code_cache off` (a fresh Lua VM for every handshake and request, as in development):
resty.client_tls is loaded afresh each time, a second load in one VM works, nothing crashes,
and the worker's memory grows no more than with lua-resty-core's ngx.ssl.verify_client
instead of the module (that control grows too: each fresh VM leaves memory behind)."""

from tests import harness
from tests.harness import expect, note

from tests.operations import ops

REQUESTS = 600
WARMUP = 50

CONF = """\
    lua_code_cache off;
    server {
        listen 127.0.0.1:@port:tls@ ssl;
        server_name localhost;
        ssl_certificate @cert@;
        ssl_certificate_key @key@;
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log off;
        ssl_certificate_by_lua_block { require("ops_nocache").cert_phase("@variant@", "@ca@") }
        location / { content_by_lua_block { require("ops_nocache").content("@variant@") } }
    }
"""


def serve(variant, ca):
    """WARMUP, then REQUESTS full handshakes; returns the responses and the worker's RssAnon
    growth (KiB) between the two, each read with no request in flight (a fresh VM is about
    a MiB while it lives)."""
    p = harness.pki()
    server = p.server("localhost")
    responses, errors, rss = [], [], []
    with ops.Nginx(CONF, workers=1, allow_alerts=[r"\[alert\].* lua_code_cache is off"],
                   variant=variant, ca=ca, cert=server.cert, key=server.key) as ng:
        worker = ng.wait_workers()[0]
        targets = [("localhost", who) for who in ops.CLIENTS]
        for n in (WARMUP, REQUESTS):
            with ops.Load(ng.ports["tls"], targets, full=2, keepalive=0) as load:
                expect(load.wait(lambda r: True, n, timeout=ops.WAIT * 5), "only %d of %d requests served: %s",
                       load.count(), n, load.summary())
            responses += load.responses
            errors += load.errors
            rss.append(ops.rss_kib(worker))
        expect(ng.workers() == [worker], "the worker changed: %d -> %s", worker, ng.workers())
    served = len(responses) - WARMUP
    note("%s: %d full handshakes, %d failed; worker RssAnon %d -> %d KiB (%+d) over %d requests",
         variant, len(responses), len(errors), rss[0], rss[1], rss[1] - rss[0], served)
    return responses, errors, rss[1] - rss[0]


def test_code_cache_off():
    p = harness.pki()
    ca = ops.write_ca_file(ops.scratch() + "/ca.pem", [p.int, p.root])

    def expected(r, chain_stock=False):
        exp = ops.expectation(None, None, [p.int, p.root], r.who)
        exp = {"verify": exp["verify"], "chain": exp["chain"]}
        if chain_stock and r.who != "none":
            exp["chain"] = "leaf-only"
        if not chain_stock:
            exp["fresh"] = "true"
            exp["again"] = ops.module_version()
        return exp
    grown = {}
    for variant in ("module", "stock"):
        responses, errors, grown[variant] = serve(variant, ca)
        wrong = ["%r: %s" % (r, problem) for r in responses
                 for problem in [ops.mismatch(r.fields, expected(r, chain_stock=variant == "stock"))] if problem]
        expect(not errors and not wrong, "%s: %d failures, %d wrong responses:\n  %s", variant, len(errors),
               len(wrong), "\n  ".join([e[1] for e in errors[:5]] + wrong[:5]))
    # Each fresh VM leaves memory behind with or without the module (about 10 KiB per
    # request here); the module may add a little on top, not a second leak.
    margin = max(1024, grown["stock"] // 4)
    expect(grown["module"] <= grown["stock"] + margin, "the worker grew %d KiB over %d requests with "
           "the module, %d KiB with ngx.ssl.verify_client (margin %d KiB)", grown["module"], REQUESTS,
           grown["stock"], margin)
