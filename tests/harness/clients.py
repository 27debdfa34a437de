"""Real TLS clients driven by the tests: curl, openssl s_client and nghttp."""

import os
import re
import subprocess
import tempfile
import uuid

from .nginx import TestFailure, parse_reports, wait_for

CLIENT_TIMEOUT = 20


def new_id():
    return uuid.uuid4().hex[:12]


def run_client(args, stdin=None):
    """Runs a client command; a timeout or a non-zero exit is a TestFailure with its output."""
    try:
        proc = subprocess.run(args, input=stdin, capture_output=True, timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise TestFailure("client timed out after %ds: %s" % (CLIENT_TIMEOUT, " ".join(args)))
    if proc.returncode != 0:
        raise TestFailure("client failed (exit %d): %s\n%s%s" % (
            proc.returncode, " ".join(args), proc.stdout.decode(errors="replace")[-2000:],
            proc.stderr.decode(errors="replace")[-2000:]))
    return proc


class Response:
    def __init__(self, status, body, new_connections=None, http_version=None):
        self.status = status
        self.body = body
        self.new_connections = new_connections
        self.http_version = http_version

    @property
    def report(self):
        reports = parse_reports(self.body.decode(errors="replace"))
        if self.status != 200 or len(reports) != 1:
            raise TestFailure("expected one report with status 200, got %s:\n%s"
                              % (self.status, self.body.decode(errors="replace")))
        return reports[0]


def client_cert_args(client):
    """curl/nghttp options sending the leaf and its intermediates, if there is a client."""
    return ["--cert", client.bundle, "--key", client.key] if client else []


def curl(port, paths, host="localhost", client=None, scheme="https", http2=False):
    """GET each path in one curl run (one connection when curl can reuse it)."""
    with tempfile.TemporaryDirectory(prefix="curl-") as tmp:
        return _curl(tmp, port, paths, host, client, scheme, http2)


def _curl(tmp, port, paths, host, client, scheme, http2):
    args = ["curl", "-sS", "-k", "--resolve", "%s:%d:127.0.0.1" % (host, port),
            "--http2" if http2 else "--http1.1",
            "-w", "%{http_code} %{num_connects} %{http_version}\\n", *client_cert_args(client)]
    outs = []
    for i, path in enumerate(paths):
        outs.append(os.path.join(tmp, "body%d" % i))
        args += ["-o", outs[-1], "%s://%s:%d%s" % (scheme, host, port, path)]
    proc = run_client(args)
    meta = proc.stdout.decode().split()
    responses = []
    for i, out in enumerate(outs):
        with open(out, "rb") as f:
            body = f.read()
        status, conns, version = meta[3 * i: 3 * i + 3]
        responses.append(Response(int(status), body, int(conns), version))
    return responses


def curl_one(port, path="/", **kw):
    return curl(port, [path], **kw)[0]


def nghttp(port, paths, client=None, sequential=False):
    """GET each path over one HTTP/2 connection (nghttp sends no SNI for 127.0.0.1).
    sequential: one stream at a time, in order (as if the server allowed one stream)."""
    urls = ["https://127.0.0.1:%d%s" % (port, p) for p in paths]
    proc = run_client(["nghttp", *(["-M", "1"] if sequential else []), *client_cert_args(client), *urls])
    return parse_reports(proc.stdout.decode(errors="replace"))


def seen(port, rid, host="localhost", scheme="https"):
    """The report the log phase stored for request id `rid` (log runs after the response)."""
    def fetch():
        r = curl_one(port, "/seen?id=" + rid, host=host, scheme=scheme)
        return r if r.status == 200 else None
    r = wait_for(fetch)
    if r is None:
        raise TestFailure("log phase stored nothing for id %s" % rid)
    return r.report


# -- openssl s_client ----------------------------------------------------------------------------

TLS_MODES = {
    "tls1.3": ["-tls1_3"],
    "tls1.2": ["-tls1_2"],                      # offers tickets
    "tls1.2-noticket": ["-tls1_2", "-no_ticket"],  # session IDs only
}


class SClient:
    def __init__(self, text):
        self.text = text
        m = re.search(r"^(New|Reused), (TLSv[\d.]+),", text, re.M)
        if not m:
            raise TestFailure("no handshake summary in s_client output:\n" + text[-3000:])
        self.reused = m.group(1) == "Reused"
        self.protocol = m.group(2)
        self.http_status, self.body = self._http_response(text)

    @staticmethod
    def _http_response(text):
        # Not anchored: s_client may print a ticket dump without a final newline first.
        m = re.search(r"HTTP/1\.[01] (\d{3})[^\n]*\n(.*?)\r?\n\r?\n", text, re.S)
        if not m:
            return None, ""
        headers = m.group(2)
        length = re.search(r"^Content-Length:\s*(\d+)", headers, re.M | re.I)
        body = text[m.end():]
        return int(m.group(1)), body[:int(length.group(1))] if length else body

    @property
    def report(self):
        reports = parse_reports(self.body)
        if self.http_status != 200 or len(reports) != 1:
            raise TestFailure("expected one report with status 200 from s_client, got %s:\n%s"
                              % (self.http_status, self.text[-3000:]))
        return reports[0]

    @property
    def ca_names(self):
        """The "Acceptable client certificate CA names" list (None when none were sent)."""
        return ca_names_in(self.text)


def ca_names_in(text):
    """The "Acceptable client certificate CA names" list of `openssl s_client` output (TCP or
    QUIC), or None when the server sent none."""
    if "No client certificate CA names sent" in text:
        return None
    m = re.search(r"^Acceptable client certificate CA names\n(.*?)"
                  r"^(?=Client Certificate Types|Requested Signature|Peer signing|---)",
                  text, re.M | re.S)
    if not m:
        raise TestFailure("no CA names section in s_client output:\n" + text[-3000:])
    return [line.strip() for line in m.group(1).splitlines() if line.strip()]


def s_client_args(client=None, sess_out=None, sess_in=None):
    """openssl s_client options (TCP and QUIC alike): the client's leaf, key and intermediates,
    and the session files to write and to offer."""
    args = []
    if client:
        args += ["-cert", client.cert, "-key", client.key]
        if client.intermediates_file:
            args += ["-cert_chain", client.intermediates_file]
    if sess_out:
        args += ["-sess_out", sess_out]
    if sess_in:
        args += ["-sess_in", sess_in]
    return args


def s_client(port, servername="localhost", mode="tls1.3", client=None, sess_out=None, sess_in=None,
             path="/", host=None):
    """One HTTP/1.0 request through openssl s_client, which reads the whole response and shuts
    the connection down cleanly (so its session stays resumable)."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", servername,
            "-ign_eof", *TLS_MODES[mode], *s_client_args(client, sess_out, sess_in)]
    request = "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host or servername)
    proc = run_client(args, stdin=request.encode())
    return SClient(proc.stdout.decode(errors="replace"))


def s_client_pair(port, tmp_dir, servername="localhost", mode="tls1.3", client=None,
                  second_servername=None, path="/", require_session=True):
    """A full handshake saving the session, then a second connection offering it. s_client
    saves nothing when the server made the session unresumable (no ticket and no session
    ID): then the second connection is None, or a failure if `require_session`."""
    sess = os.path.join(tmp_dir, "session-%s.pem" % new_id())
    first = s_client(port, servername, mode, client, sess_out=sess, path=path)
    if not os.path.exists(sess):
        if require_session:
            raise TestFailure("s_client saved no session after the first connection")
        return first, None
    second = s_client(port, second_servername or servername, mode, client, sess_in=sess, path=path)
    return first, second
