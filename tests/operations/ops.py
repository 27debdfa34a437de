"""What tests/operations adds to tests/harness: an nginx with several workers (or
daemonized, for binary upgrades), its processes and their memory read from /proc, server{}
blocks with a CA list each, and background TLS clients whose every response is kept and
checked against the certificate they sent."""

import base64
import collections
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

from tests import harness
from tests.harness import TestFailure, note, pki  # noqa: F401

OPS_LUA = os.path.join(HERE, "lua")
CLIENT_TIMEOUT = 30   # seconds a client waits for the server: generous, the machine is shared
WAIT = 60             # seconds to wait for nginx to reach a state (new workers, old ones gone)


# -- nginx ---------------------------------------------------------------------------------------

class Nginx(harness.Nginx):
    """harness.Nginx with `workers` worker processes and tests/operations/lua on the Lua
    path; `daemon`: started daemonized by absolute path (the only way nginx re-executes
    itself for a binary upgrade) and followed through its pid file; `allow_alerts`: regexes
    of [alert]/[crit]/[emerg] lines a test provokes on purpose; `cpath`: another
    lua_package_cpath."""

    def __init__(self, http_conf, workers=2, daemon=False, allow_alerts=(), cpath=None, **kw):
        self._ops_workers = workers
        self._ops_daemon = daemon
        self._ops_allow = [re.compile(a) for a in allow_alerts]
        self._ops_cpath = cpath
        self._ops_pgid = None
        super().__init__(http_conf, **kw)

    def _write_conf(self):
        super()._write_conf()
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("worker_processes 1;", "worker_processes %d;" % self._ops_workers)
        text = text.replace('lua_package_path "', 'lua_package_path "%s/?.lua;' % OPS_LUA, 1)
        if self._ops_daemon:
            text = text.replace("daemon off;", "daemon on;")
        if self._ops_cpath:
            text = re.sub(r'lua_package_cpath "[^"]*";', 'lua_package_cpath "%s";' % self._ops_cpath, text, count=1)
        with open(self.conf, "w") as f:
            f.write(text)

    def allow(self, regex):
        """Allow one more [alert]/[crit]/[emerg] line (regex)."""
        self._ops_allow.append(re.compile(regex))

    @property
    def pid_file(self):
        return os.path.join(self.dir, "nginx.pid")

    @property
    def master(self):
        """The master's pid: from the pid file (it moves to the new master on an upgrade)."""
        if not self._ops_daemon:
            return self.proc.pid
        pid = read_pid(self.pid_file)
        if pid is None:
            raise TestFailure("no pid in %s" % self.pid_file)
        return pid

    def workers(self, master=None):
        return workers(master or self.master)

    def wait_workers(self, n=None, master=None, exclude=()):
        """The master's `n` (default: all) serving workers, none of them in `exclude`."""
        n = n or self._ops_workers

        def ready():
            w = [p for p in self.workers(master) if p not in exclude]
            return w if len(w) >= n else None
        got = harness.wait_for(ready, WAIT, 0.02)
        if not got:
            raise TestFailure("nginx did not have %d new workers within %ds (has %s)"
                              % (n, WAIT, self.workers(master)))
        return got

    def signal(self, sig, pid=None):
        os.kill(pid or self.master, sig)

    def _start_once(self):
        if not self._ops_daemon:
            ok = super()._start_once()
            self._ops_pgid = self.proc.pid
            return ok
        early_log = ["-e", self.error_log] if harness.nginx_version() >= (1, 19, 5) else []
        # The foreground process returns once the master is daemonized (after binding).
        proc = subprocess.run([harness.NGINX, "-p", self.dir + "/", "-c", self.conf, *early_log],
                              capture_output=True, timeout=harness.START_TIMEOUT * 3)
        with open(os.path.join(self.dir, "stderr.log"), "wb") as f:
            f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            if "Address already in use" in self.log_text():
                return False
            raise TestFailure("nginx exited with %s at startup:\n%s"
                              % (proc.returncode, self.startup_output()))
        if not harness.wait_for(lambda: read_pid(self.pid_file), harness.START_TIMEOUT):
            self.stop()
            raise TestFailure("daemonized nginx wrote no pid file:\n" + self.startup_output())
        self._ops_pgid = self.master  # a session leader: the upgraded master inherits its group
        for port in self.ports.values():
            if not harness.wait_for(lambda port=port: self._listening(port), harness.START_TIMEOUT):
                self.stop()
                raise TestFailure("nginx did not listen on %d:\n%s" % (port, self.startup_output()))
        return True

    def stop(self):
        if not self._ops_daemon:
            return super().stop()
        # The masters: from the pid files, the first one, and any whose command line names
        # this config (also when a pid file is missing). Workers share the first master's
        # process group (a session leader; an upgraded master inherits its group).
        masters = {p for p in (read_pid(self.pid_file), read_pid(self.pid_file + ".oldbin"), self._ops_pgid)
                   if p and not gone(p)}
        masters |= {p for p in _all_pids() if "master process" in title(p) and self.conf in title(p)}
        groups = ({self._ops_pgid} | masters) - {None}
        if not groups:
            return None
        for pid in masters:
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass

        def left():
            return sorted(p for g in groups for p in group(g))
        self._ops_pgid = None
        if harness.wait_for(lambda: not left(), harness.STOP_TIMEOUT):
            return None
        killed = left()
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return "nginx did not stop within %.0fs of SIGQUIT: killed %s" % (harness.STOP_TIMEOUT, killed)

    def log_problems(self):
        return [p for p in super().log_problems() if not any(a.search(p) for a in self._ops_allow)]


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


# -- processes, from /proc ---------------------------------------------------------------------

def _status(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return f.read()
    except OSError:
        return ""


def gone(pid):
    """Exited (or a zombie nobody reaped yet)."""
    m = re.search(r"^State:\s+(\S)", _status(pid), re.M)
    return m is None or m.group(1) in "ZX"


def title(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children(pid):
    return sorted(p for p in _all_pids() if "\nPPid:\t%d\n" % pid in _status(p) and not gone(p))


def group(pgid):
    """Live processes of process group `pgid`."""
    out = []
    for p in _all_pids():
        try:
            if os.getpgid(p) == pgid and not gone(p):
                out.append(p)
        except OSError:
            pass
    return out


def workers(master):
    """The master's workers that accept connections (not "is shutting down")."""
    return [p for p in children(master)
            if "worker process" in title(p) and "shutting down" not in title(p)]


def rss_kib(pid, field="RssAnon"):
    """RssAnon: a process's private memory (heap and stacks), where a leak shows."""
    m = re.search(r"^%s:\s+(\d+) kB" % field, _status(pid), re.M)
    if not m:
        raise TestFailure("no %s for pid %d (gone?)" % (field, pid))
    return int(m.group(1))


# -- server{} blocks and what their clients must see ---------------------------------------------

CONF = """\
    init_by_lua_block { require("ops_test").init(@files@, "@variant@", @cache_limits@) }
    keepalive_requests 1000000;
@servers@"""


def server_block(server_name, tag, list_name, port="tls"):
    """A TLS server{} whose certificate phase requests a certificate with CA list
    `list_name` ("by_sni": the list named by the SNI's first label)."""
    cert = pki().server(server_name)
    return """    server {
        listen 127.0.0.1:@port:%s@ ssl;
        server_name %s;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log off;
        set $ops_server %s;
        ssl_certificate_by_lua_block { require("ops_test").cert_phase("%s") }
        location / { content_by_lua_block { require("ops_test").content("%s") } }
    }
""" % (port, server_name, cert.cert, cert.key, tag, list_name, list_name)


def write_ca_file(path, certs, generation="1"):
    """A CA file: a "# generation" line (what ops_test.lua reports as gen) and the PEMs."""
    with open(path + ".tmp", "wb") as f:
        f.write(b"# generation %s\n" % generation.encode())
        for c in certs:
            f.write(c.pem())
    os.replace(path + ".tmp", path)
    return path


def chain_id(client):
    """What ops_test.lua reports as chain= for a client (None: no certificate)."""
    if client is None:
        return "nil"
    return base64.b64encode(hashlib.sha1(client.expected_chain()).digest()).decode()


CLIENTS = ("good", "unknown", "none")


def client_cert(who):
    return {"good": pki().good, "unknown": pki().unknown, "none": None}[who]


def expectation(tag, list_name, trusted, who, generation="1"):
    """What a response must say for client `who` on a server{} `tag` with CA list
    `list_name` holding `trusted` (Cert list)."""
    client = client_cert(who)
    return {"server": tag, "list": list_name, "gen": generation,
            "verify": pki().expected_verify_any(client, trusted), "chain": chain_id(client)}


def module_version():
    """The Lua module's _VERSION (what ops_nocache.lua reports as again=)."""
    with open(os.path.join(REPO, "lua-bindings", "resty", "client_tls.lua")) as f:
        return re.search(r'_VERSION = "([^"]+)"', f.read()).group(1)


def mismatch(fields, exp):
    """None when the response fields match the expectation, else what differs."""
    diffs = []
    for key, want in exp.items():
        got = fields.get(key)
        if not (got in want if isinstance(want, set) else got == want):
            diffs.append("%s=%r (expected %r)" % (key, got, sorted(want) if isinstance(want, set) else want))
    return "; ".join(diffs) or None


class Layout:
    """Three server{} blocks with their own CA lists and one choosing among `many` lists by
    SNI, all on one port: 3 + `many` distinct lists, which every worker builds and caches
    on its own (and, with a small cache limit, evicts and rebuilds).
    a.test: int + root; b.test: other root; c.test: other root + root;
    k<i>.many.test: an extra CA of its own, plus int + root (even i) or the other root (odd i)."""

    def __init__(self, directory, many=20):
        p = pki()
        lists = {"a": [p.int, p.root], "b": [p.other_root], "c": [p.other_root, p.root]}
        for i in range(many):
            extra = p.self_signed("ops-extra-%d" % i, "RCT Ops Extra CA %d" % i)
            lists["k%d" % i] = [extra] + ([p.int, p.root] if i % 2 == 0 else [p.other_root])
        self.files = {name: write_ca_file(os.path.join(directory, "ca-%s.pem" % name), certs)
                      for name, certs in lists.items()}
        self.hosts = {"a.test": ("a", "a"), "b.test": ("b", "b"), "c.test": ("c", "c")}
        self.hosts.update({"k%d.many.test" % i: ("many", "k%d" % i) for i in range(many)})
        # Verify results depend only on which CAs are trusted: compute each once.
        verdicts = {}
        self.expect = {}
        for host, (tag, name) in self.hosts.items():
            for who in CLIENTS:
                key = (tuple(c.name for c in lists[name] if not c.name.startswith("ops-extra")), who)
                if key not in verdicts:
                    verdicts[key] = expectation(tag, name, lists[name], who)["verify"]
                client = client_cert(who)
                self.expect[(host, who)] = {"server": tag, "list": name, "gen": "1",
                                            "verify": verdicts[key], "chain": chain_id(client)}

    def conf(self, variant="module", cache_limits=None):
        """variant "stock": the control without resty.client_tls (ops_test.lua);
        cache_limits: {"ca": bytes, "chain": bytes}, the module's per-worker cache limits."""
        servers = (server_block("a.test", "a", "a") + server_block("b.test", "b", "b")
                   + server_block("c.test", "c", "c") + server_block("*.many.test", "many", "by_sni"))
        return (CONF.replace("@servers@", servers).replace("@files@", harness.lua_value(self.files))
                .replace("@variant@", variant).replace("@cache_limits@", harness.lua_value(cache_limits or {})))

    def targets(self):
        """(host, client) pairs, every combination."""
        return [(h, w) for w in CLIENTS for h in self.hosts]

    def check(self, response):
        return mismatch(response.fields, self.expect[(response.host, response.who)])

    def check_stock(self, response):
        """The stock control reports nginx's view: the leaf only."""
        exp = dict(self.expect[(response.host, response.who)])
        exp["chain"] = "nil" if response.who == "none" else "leaf-only"
        return mismatch(response.fields, exp)


def scratch():
    """A new directory in this run's temp dir."""
    import tempfile
    return tempfile.mkdtemp(prefix="ops-", dir=harness._Run.tmp)


def nginx_for(layout, variant="module", cache_limits=None, **kw):
    return Nginx(layout.conf(variant, cache_limits), **kw)


# -- clients -------------------------------------------------------------------------------------

class Closed(Exception):
    """The server closed a kept-alive connection before sending any byte of the response."""


def http_get(sock, host, close):
    sock.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n"
                  % (host, "Connection: close\r\n" if close else "")).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            if not data:
                raise Closed()
            raise ConnectionError("connection closed in the response headers")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the response body")
        body += chunk
    return status, body[:length], headers.get("connection", "").lower() == "close"


class Response:
    __slots__ = ("opened", "host", "who", "kind", "status", "fields", "pid")

    def __init__(self, opened, host, who, kind, status, body):
        self.opened, self.host, self.who, self.kind, self.status = opened, host, who, kind, status
        self.fields = dict(l.split("=", 1) for l in body.decode(errors="replace").splitlines() if "=" in l)
        try:
            self.pid = int(self.fields.get("worker", ""))
        except ValueError:
            self.pid = None

    def __repr__(self):
        return "%s %s/%s %s %s" % (self.kind, self.host, self.who, self.status, self.fields)


class Load:
    """Background clients against 127.0.0.1:`port`: `full` threads each making a new
    connection (a full handshake, TLS 1.2 and 1.3 in turn) per request, `keepalive` threads
    each sending requests over one connection (reopened when the server closes it), going
    through `targets` ((host, client) pairs). Every response is kept (`responses`), every
    failure too (`errors`). A kept-alive connection that the server closed before any byte
    of the response (nginx closes idle connections when a worker stops) is reopened and the
    request sent again, as HTTP clients do: counted in `reopened`, not an error."""

    def __init__(self, port, targets, full=3, keepalive=1):
        self.port, self.targets = port, targets
        self.responses, self.errors = [], []
        self.reopened = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.contexts = {}
        for who in CLIENTS:
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.minimum_version = ctx.maximum_version = version
                c = client_cert(who)
                if c:
                    ctx.load_cert_chain(c.bundle, c.key)
                self.contexts[(who, version)] = ctx
        self.threads = [threading.Thread(target=self._full, args=(i,), daemon=True) for i in range(full)]
        self.threads += [threading.Thread(target=self._keepalive, args=(i,), daemon=True)
                         for i in range(keepalive)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 5)

    def _connect(self, host, who, version):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=CLIENT_TIMEOUT)
        try:
            return self.contexts[(who, version)].wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise

    def _record(self, item, kind):
        with self.lock:
            (self.responses if kind == "response" else self.errors).append(item)

    def _full(self, n):
        i = n * 7
        while not self.stopping.is_set():
            host, who = self.targets[i % len(self.targets)]
            version = ssl.TLSVersion.TLSv1_3 if (i // len(self.targets)) % 2 else ssl.TLSVersion.TLSv1_2
            i += 1
            opened = time.monotonic()
            try:
                with self._connect(host, who, version) as s:
                    status, body, _ = http_get(s, host, close=True)
                self._record(Response(opened, host, who, "full", status, body), "response")
            except Exception as e:  # noqa: BLE001
                self._record((opened, "full handshake %s/%s: %r" % (host, who, e)), "error")

    def _keepalive(self, n):
        i = n * 13
        sock = None
        while not self.stopping.is_set():
            host, who = self.targets[i % len(self.targets)]
            i += 1
            try:
                for attempt in (1, 2):
                    if sock is None:
                        opened, fresh = time.monotonic(), True
                        sock = self._connect(host, who, ssl.TLSVersion.TLSv1_3)
                        sock_target = (host, who)
                    else:
                        fresh = False
                        host, who = sock_target
                    try:
                        status, body, close = http_get(sock, host, close=False)
                        break
                    except (Closed, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
                            ssl.SSLZeroReturnError):
                        sock.close()
                        sock = None
                        if fresh or attempt == 2:
                            raise
                        with self.lock:
                            self.reopened += 1
                self._record(Response(opened, host, who, "keepalive", status, body), "response")
                if close:
                    sock.close()
                    sock = None
                elif i % 200 == 0:  # another target now and then: a new connection
                    sock.close()
                    sock = None
            except Exception as e:  # noqa: BLE001
                if sock is not None:
                    sock.close()
                    sock = None
                self._record((time.monotonic(), "keep-alive request %s/%s: %r" % (host, who, e)), "error")
        if sock is not None:
            sock.close()

    # -- reading what happened --

    def count(self):
        with self.lock:
            return len(self.responses)

    def since(self, index):
        with self.lock:
            return self.responses[index:]

    def wait(self, pred, n=1, start=0, timeout=WAIT):
        """Wait until `n` responses from index `start` on satisfy `pred`; True if they did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for r in self.since(start) if pred(r)) >= n:
                return True
            time.sleep(0.05)
        return False

    def wrong(self, check):
        """Messages for the responses that are not 200 or fail `check` (a function of a
        Response returning None or what is wrong)."""
        out = []
        for r in self.since(0):
            problem = "status %s" % r.status if r.status != 200 else check(r)
            if problem:
                out.append("%r: %s" % (r, problem))
        return out

    def summary(self):
        with self.lock:
            full = sum(1 for r in self.responses if r.kind == "full")
            return "%d full handshakes, %d keep-alive requests, %d failed, %d kept-alive connections reopened" % (
                full, len(self.responses) - full, len(self.errors), self.reopened)


def expect_clean(load, check):
    """No client failure and no wrong response."""
    wrong = load.wrong(check)
    if load.errors or wrong:
        raise TestFailure("%d client failures, %d wrong responses (%s)\n  %s"
                          % (len(load.errors), len(wrong), load.summary(),
                             "\n  ".join([e[1] for e in load.errors[:10]] + wrong[:10])))


def pids_seen(responses):
    return collections.Counter(r.pid for r in responses)
