"""HTTP/3 (QUIC) on top of tests/harness: what this platform supports, a server{}
that listens on one port number for TCP (TLS) and UDP (QUIC), and the QUIC clients: curl
--http3-only, aioquic (tests/http3/h3client.py, several requests on one connection) and
`openssl s_client -quic`.

The comparison at the heart of the suite: the same request over QUIC and over TCP (TLS 1.3)
must give the module the same answers (`same_as_tcp`).
"""

import base64
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

from tests import harness
from tests.harness import NGINX, TestFailure, expect_eq, parse_reports, pki  # noqa: F401
from tests.harness.clients import CLIENT_TIMEOUT, Response, ca_names_in, client_cert_args, s_client_args
from tests.harness.clients import run_client as run

H3_LUA = os.path.join(HERE, "lua")

# h3_test.lua adds $http3 and $ssl_early_data to every rct_test.lua report. init_by_lua runs
# in the master, whose package.path and loaded modules the workers inherit.
INIT = ('init_by_lua_block { package.path = "%s/?.lua;" .. package.path; require("h3_test") }\n'
        % H3_LUA)


# -- the platform ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def nginx_configure():
    return subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr


@functools.lru_cache(maxsize=None)
def curl_features():
    try:
        out = subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout
    except OSError:
        return set()
    m = re.search(r"^Features:(.*)$", out, re.M)
    return set(m.group(1).split()) if m else set()


def not_applicable():
    """Why this platform cannot run HTTP/3 at all (None when it can): an nginx built without
    ngx_http_v3_module (Debian 12, 11), or a Debian curl built without HTTP/3."""
    if not os.access(NGINX, os.X_OK):
        return None  # a missing nginx is a failure (harness.missing_prerequisites), not N/A
    if "--with-http_v3_module" not in nginx_configure():
        return "this nginx (%s) is built without --with-http_v3_module (see nginx -V)" % (
            ".".join(map(str, harness.nginx_version())))
    if shutil.which("curl") and "HTTP3" not in curl_features():
        return "this curl has no HTTP/3 (curl -V lists no HTTP3 feature)"
    return None


def curl_quic_session_reuse():
    """None when curl resumes QUIC sessions and sends 0-RTT data over them (its ngtcp2 QUIC
    backend, Debian sid), else why not: curl's other backend, on OpenSSL's own QUIC client
    (Debian 13), resumes no QUIC session. Tests that need it carry `needs_curl_resumption`."""
    try:
        first = subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        return "no curl"
    if "ngtcp2/" in first:
        return None
    return ("this curl's HTTP/3 runs on OpenSSL's QUIC client, which resumes no QUIC session "
            "(curl -V names no ngtcp2)")


def needs_curl_resumption(fn):
    """Marks a test that needs curl to resume QUIC sessions (see curl_quic_session_reuse)."""
    fn.needs_curl_resumption = True
    return fn


def missing_prerequisites():
    problems = harness.missing_prerequisites()
    out = subprocess.run(["openssl", "s_client", "-help"], capture_output=True, text=True)
    if "-quic" not in out.stdout + out.stderr:
        problems.append("openssl s_client has no -quic option (OpenSSL 3.5 or later needed)")
    if subprocess.run([sys.executable, "-c", "import aioquic"], capture_output=True).returncode != 0:
        problems.append("python3-aioquic is missing (apt-get install python3-aioquic): "
                        "tests/http3/h3client.py needs it")
    return problems


@functools.lru_cache(maxsize=None)
def nginx_quic_api():
    """"native" when nginx drives QUIC through OpenSSL's own QUIC TLS API (nginx 1.29.1+ built
    against OpenSSL 3.5.1+: it imports SSL_set_quic_tls_cbs), "compat" when it uses its
    OpenSSL compatibility layer (it then defines SSL_set_quic_method itself, and early data is
    off on every QUIC connection). Read from the binary's dynamic symbol names."""
    with open(os.path.realpath(NGINX), "rb") as f:
        data = f.read()
    return "native" if b"\0SSL_set_quic_tls_cbs\0" in data else "compat"


# -- servers -----------------------------------------------------------------------------------

def quic_server(port, server_name="localhost", cert_phase=None, default=True, tag=None, extra="",
                early_data=False, locations=harness.REPORT_LOCATIONS):
    """harness.tls_server() plus a QUIC listener on the same port number (UDP) and HTTP/3.
    early_data: `ssl_early_data on` (0-RTT over TLS 1.3 and QUIC)."""
    quic = ("        listen 127.0.0.1:@port:%s@ quic%s;\n        http3 on;\n"
            % (port, " reuseport" if default else ""))
    if early_data:
        quic += "        ssl_early_data on;\n"
    return harness.tls_server(port, server_name, cert_phase=cert_phase, default=default, tag=tag,
                              extra=quic + extra, locations=locations)


# nginx's graceful stop waits for open QUIC connections; a client that ends without closing
# its connection (seen with curl on OpenSSL's QUIC client, Debian 13) would hold a worker of
# nginx 1.26 past the harness's stop timeout.
SHUTDOWN = "worker_shutdown_timeout 3s;\n"


class Nginx(harness.Nginx):
    """harness.Nginx with h3_test.lua loaded (its reports also carry $http3 and
    $ssl_early_data); reports=False for a config that has its own init_by_lua. allow_crit:
    regexes of [crit] lines a test provokes on purpose (the harness fails on any other)."""

    def __init__(self, http_conf, reports=True, main_conf="", allow_crit=(), **kw):
        self._allow_crit = [re.compile(a) for a in allow_crit]
        super().__init__((INIT if reports else "") + http_conf, main_conf=SHUTDOWN + main_conf, **kw)

    def log_problems(self):
        return [p for p in super().log_problems()
                if not ("[crit]" in p and any(a.search(p) for a in self._allow_crit))]


# -- curl ----------------------------------------------------------------------------------------

PROTOCOLS = {
    "h3": ["--http3-only"],
    # TLS 1.3 as QUIC, so that $ssl_protocol and the session rules are the same
    "tcp": ["--http1.1", "--tlsv1.3"],
}


# curl 8.23 may pick a QUIC connection that nginx has just closed (after keepalive_requests)
# for the next request: that request then fails before anything is sent ("ERR_DRAINING"), and
# once more on a new connection succeeds.
RETRY_DEAD_CONNECTION = ["--retry", "2", "--retry-all-errors", "--retry-delay", "0"]


def curl(port, paths, proto="h3", host="localhost", client=None, extra=(), earlydata=False):
    """GET each path in one curl run, over QUIC (HTTP/3) or TCP (HTTP/1.1, TLS 1.3), on one
    connection where curl can reuse it. earlydata: --tls-earlydata, and each Response gets
    `.earlydata`: the bytes curl sent as 0-RTT data (0 none, negative: rejected by the
    server)."""
    with tempfile.TemporaryDirectory(prefix="curl-") as tmp:
        fmt = "%{http_code} %{num_connects} %{http_version}" + (" %{tls_earlydata}" if earlydata else "")
        args = ["curl", "-sS", "-k", "--resolve", "%s:%d:127.0.0.1" % (host, port),
                *PROTOCOLS[proto], "-w", fmt + "\\n", *client_cert_args(client), *extra]
        if earlydata:
            args += ["--tls-earlydata", "-v", *RETRY_DEAD_CONNECTION]
        outs = []
        for i, path in enumerate(paths):
            outs.append(os.path.join(tmp, "body%d" % i))
            args += ["-o", outs[-1], "https://%s:%d%s" % (host, port, path)]
        proc = run(args)
        width = 4 if earlydata else 3
        meta = proc.stdout.decode().split()
        if len(meta) != width * len(paths) or not all(os.path.exists(o) for o in outs):
            raise TestFailure("curl did not complete every request: %s\n%s"
                              % (" ".join(args), proc.stderr.decode(errors="replace")[-3000:]))
        responses = []
        for i, out in enumerate(outs):
            with open(out, "rb") as f:
                body = f.read()
            fields = meta[width * i: width * i + width]
            r = Response(int(fields[0]), body, int(fields[1]), fields[2])
            r.earlydata = int(fields[3]) if earlydata else None
            r.stderr = proc.stderr.decode(errors="replace")
            responses.append(r)
        return responses


def curl_one(port, path="/", **kw):
    return curl(port, [path], **kw)[0]


# -- aioquic: several requests on one QUIC connection --------------------------------------------

def h3_requests(port, paths, host="localhost", client=None):
    """GET each path in turn, each on its own HTTP/3 stream of one QUIC connection, with
    tests/http3/h3client.py (aioquic). Curl is not used for this: Debian 13's curl now and
    then never sends its QPACK encoder stream, and its second request then waits forever (see
    h3client.py). Responses as curl()'s: new_connections 1 for the first, 0 for the others."""
    args = [sys.executable, "-m", "tests.http3.h3client", "--port", str(port), "--host", host]
    if client:
        args += ["--cert", client.bundle, "--key", client.key]
    proc = run(args + list(paths))
    out = json.loads(proc.stdout)
    if out["handshakes"] != 1 or len(out["responses"]) != len(paths):
        raise TestFailure("h3client: %d handshakes, %d responses for %d paths"
                          % (out["handshakes"], len(out["responses"]), len(paths)))
    return [Response(r["status"], base64.b64decode(r["body"]), 0 if i else 1, "3")
            for i, r in enumerate(out["responses"])]


def expect_h3(response, what):
    """The response came over HTTP/3: curl says so, and so does nginx ($http3 = "h3")."""
    expect_eq(response.http_version, "3", what + ": curl's HTTP version")
    expect_eq(response.report["content.http3"], "h3", what + ": nginx's $http3")


# -- openssl s_client -quic ----------------------------------------------------------------------

class QuicHandshake:
    """What `openssl s_client -quic` printed: New/Reused, the CA names of the
    CertificateRequest. (s_client speaks no HTTP/3: handshake only.)"""

    def __init__(self, text):
        self.text = text
        m = re.search(r"^(New|Reused), (TLSv[\d.]+),", text, re.M)
        if not m:
            raise TestFailure("no handshake summary in s_client -quic output:\n" + text[-3000:])
        self.reused = m.group(1) == "Reused"
        self.protocol = m.group(2)

    @property
    def ca_names(self):
        """The "Acceptable client certificate CA names" list (None when none were sent)."""
        return ca_names_in(self.text)


def session_max_early_data(path):
    """The early-data limit a saved session (s_client -sess_out) carries from its ticket."""
    out = subprocess.run(["openssl", "sess_id", "-in", path, "-noout", "-text"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Max Early Data: (\d+)", out)
    if not m:
        raise TestFailure("no Max Early Data in the saved session:\n" + out[-2000:])
    return int(m.group(1))


def s_client_quic(port, servername="localhost", client=None, sess_out=None, sess_in=None,
                  extra=(), linger=1.0):
    """One QUIC handshake with ALPN h3 through openssl s_client (3.5+). stdin stays open
    `linger` seconds so that the server's session tickets arrive before s_client closes (it
    saves a session only once a ticket has come)."""
    args = ["openssl", "s_client", "-quic", "-alpn", "h3", "-connect", "127.0.0.1:%d" % port,
            "-servername", servername, *extra, *s_client_args(client, sess_out, sess_in)]
    shell = "sleep %s | " % linger + shlex.join(args)
    proc = subprocess.run(["sh", "-c", shell], capture_output=True, timeout=CLIENT_TIMEOUT)
    return QuicHandshake(proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace"))


# -- the comparison ------------------------------------------------------------------------------

# What the module and nginx report that must not depend on the transport. Left out: the
# connection number, worker pid, $http2/$http3, $connection_requests.
COMPARED = ("phase", "verify", "chain", "override", "session", "nginx_verify", "reused",
            "protocol", "sni", "host", "server")


def transport_free(report, prefixes=("access.", "content.", "log.")):
    return {p + k: report[p + k] for p in prefixes for k in COMPARED if p + k in report}


def same_as_tcp(quic, tcp, what):
    """The QUIC report equals the TCP one on every transport-free field."""
    q, t = transport_free(quic), transport_free(tcp)
    expect_eq(sorted(q), sorted(t), what + ": reported fields")
    diffs = ["  %s: QUIC %s, TCP %s" % (k, _short(q[k]), _short(t[k])) for k in sorted(q) if q[k] != t[k]]
    if diffs:
        raise TestFailure("%s: QUIC and TCP differ:\n%s" % (what, "\n".join(diffs)))


def _short(v):
    return repr(v) if len(v) < 80 else repr(v[:77] + "...")
