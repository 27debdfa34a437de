"""Throwaway PKI for the nginx integration tests and the demo, built with the openssl CLI.

Everything lives in one directory. Keys and certificates are made on first use and kept for
the life of the `PKI` object, so a test run pays for the slow 4096-bit keys once.

Command line (demo/run.sh, packaging, valgrind):  python3 -m tests.harness pki DIR
writes DIR/{root,int,server,good,selfsigned}.{pem,key} and DIR/good-bundle.pem (the rest is
in DIR/work). The server certificate is for "localhost".
"""

import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

ORG = "resty-client-tls tests"

# One config for every `openssl req` and `openssl ca` call; the CA sections are per issuer.
REQ_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ext_root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ext_selfsigned_client]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
"""

CA_CONFIG = """\
[ca]
default_ca = this_ca
[this_ca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
certificate = {cert}
private_key = {key}
default_md = sha256
policy = any_dn
unique_subject = no
email_in_dn = no
copy_extensions = none
[any_dn]
organizationName = optional
commonName = supplied
"""

EXTENSIONS = {
    "ca": "basicConstraints = critical, CA:true\n"
          "keyUsage = critical, keyCertSign, cRLSign\n",
    "server": "basicConstraints = critical, CA:false\n"
              "keyUsage = critical, digitalSignature, keyEncipherment\n"
              "extendedKeyUsage = serverAuth\n",
    "client": "basicConstraints = critical, CA:false\n"
              "keyUsage = critical, digitalSignature, keyEncipherment\n"
              "extendedKeyUsage = clientAuth\n",
}
KEY_ID_EXTENSIONS = "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"

KEY_ARGS = {
    "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "rsa4096": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
}

LONG_CHAIN_INTERMEDIATES = 8


def openssl(*args, stdin=None):
    """Run the openssl CLI, raise with its stderr on failure, return stdout (bytes)."""
    proc = subprocess.run(["openssl", *args], input=stdin, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s"
                           % (" ".join(args), proc.returncode, proc.stderr.decode(errors="replace")))
    return proc.stdout


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class Cert:
    """A certificate, its key, and the intermediates a client or server sends with it."""

    def __init__(self, name, cert, key, issuer=None, sent_chain=()):
        self.name = name
        self.cert = cert              # path of the PEM certificate
        self.key = key                # path of the PEM private key
        self.issuer = issuer          # Cert or None (self-signed)
        self.sent_chain = list(sent_chain)  # intermediates sent after the leaf, in order
        self._bundle = None

    def pem(self):
        return read_bytes(self.cert)

    @cached_property
    def subject(self):
        """The subject as `openssl x509 -noout -subject` (and s_client) print it."""
        out = openssl("x509", "-in", self.cert, "-noout", "-subject").decode().strip()
        return out.removeprefix("subject=").strip()

    @property
    def intermediates_file(self):
        """A file with the intermediates only (openssl s_client -cert_chain), or None."""
        if not self.sent_chain:
            return None
        return self._write_concat(self.cert[:-4] + "-intermediates.pem", self.sent_chain)

    @property
    def bundle(self):
        """Leaf followed by its intermediates: what curl/nghttp --cert send."""
        if self._bundle is None:
            self._bundle = self._write_concat(self.cert[:-4] + "-bundle.pem", [self, *self.sent_chain])
        return self._bundle

    def expected_chain(self):
        """The bytes get_full_client_certificate_chain must return for this client."""
        return b"".join(c.pem() for c in [self, *self.sent_chain])

    @staticmethod
    def _write_concat(path, certs):
        if not os.path.exists(path):
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                for c in certs:
                    f.write(c.pem())
            os.replace(tmp, path)
        return path

    def __repr__(self):
        return "Cert(%s)" % self.name


class PKI:
    """Lazily built test PKI under `directory`. Thread-safe enough for our use (one lock)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.RLock()
        self._req_config = os.path.join(directory, "req.cnf")
        with open(self._req_config, "w") as f:
            f.write(REQ_CONFIG)

    # -- primitives -------------------------------------------------------------------------

    def _path(self, name, suffix):
        return os.path.join(self.dir, name + suffix)

    def key(self, name, kind="ec"):
        """Generate (once) a private key."""
        path = self._path(name, ".key")
        if not os.path.exists(path):
            openssl("genpkey", *KEY_ARGS[kind], "-out", path + ".tmp")
            os.replace(path + ".tmp", path)
        return path

    def _normalize(self, path):
        """Rewrite a certificate file as PEM_write_X509 writes it (what the library returns)."""
        openssl("x509", "-in", path, "-out", path)

    def self_signed(self, name, cn, profile="ext_root", kind="ec", days=3650, units=()):
        path = self._path(name, ".pem")
        key = self.key(name, kind)
        if not os.path.exists(path):
            subject = "/O=%s%s/CN=%s" % (ORG, "".join("/OU=" + u for u in units), cn)
            openssl("req", "-config", self._req_config, "-new", "-x509", "-key", key,
                    "-subj", subject, "-days", str(days), "-sha256",
                    "-extensions", profile, "-out", path)
            self._normalize(path)
        return Cert(name, path, key)

    def issue(self, name, cn, issuer, profile, san=None, kind="ec", dates=None, sent_chain=()):
        """Have `issuer` sign a new certificate. dates: (start, end) as YYYYMMDDHHMMSSZ."""
        path = self._path(name, ".pem")
        key = self.key(name, kind)
        if not os.path.exists(path):
            csr = self._path(name, ".csr")
            openssl("req", "-config", self._req_config, "-new", "-key", key,
                    "-subj", "/O=%s/CN=%s" % (ORG, cn), "-out", csr)
            ext = self._path(name, ".ext")
            with open(ext, "w") as f:
                f.write("[ext]\n" + EXTENSIONS[profile] + KEY_ID_EXTENSIONS)
                if san:
                    f.write("subjectAltName = %s\n" % ", ".join("DNS:" + s for s in san))
            validity = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "3650"]
            openssl("ca", "-batch", "-config", self._ca_config(issuer), "-in", csr, "-out", path,
                    "-notext", "-rand_serial", "-preserveDN", "-extfile", ext, "-extensions", "ext",
                    *validity)
            self._normalize(path)
        return Cert(name, path, key, issuer, sent_chain)

    def _ca_config(self, issuer):
        ca_dir = self._path(issuer.name, ".ca")
        config = os.path.join(ca_dir, "ca.cnf")
        if not os.path.exists(config):
            os.makedirs(os.path.join(ca_dir, "issued"), exist_ok=True)
            open(os.path.join(ca_dir, "index.txt"), "w").close()
            with open(config, "w") as f:
                f.write(CA_CONFIG.format(dir=ca_dir, cert=issuer.cert, key=issuer.key))
        return config

    # -- the test PKI ---------------------------------------------------------------------------
    # cached_property is not locked; every property takes the lock before building.

    def _locked(self, build):
        with self._lock:
            return build()

    @cached_property
    def root(self):
        return self._locked(lambda: self.self_signed("root", "RCT Test Root CA"))

    @cached_property
    def int(self):
        return self._locked(lambda: self.issue("int", "RCT Test Intermediate CA", self.root, "ca"))

    @cached_property
    def int2(self):
        """A second-level intermediate: root -> int -> int2."""
        return self._locked(lambda: self.issue("int2", "RCT Test Intermediate CA 2", self.int, "ca"))

    @cached_property
    def other_root(self):
        """A CA the servers under test do not know (except where a test trusts it on purpose)."""
        return self._locked(lambda: self.self_signed("other-root", "RCT Unknown Root CA"))

    def server(self, name):
        """Server certificate for `name` (e.g. "a.test", "*.wild.test"), signed by the root."""
        file_name = "server-" + name.replace("*", "star")
        return self._locked(lambda: self.issue(file_name, name, self.root, "server", san=[name]))

    @cached_property
    def good(self):
        """root -> int -> leaf; the client sends leaf + int."""
        return self._locked(lambda: self.issue("client-good", "good client", self.int, "client",
                                               sent_chain=[self.int]))

    @cached_property
    def good2(self):
        """root -> int -> int2 -> leaf; the client sends leaf + int2 + int."""
        return self._locked(lambda: self.issue("client-good2", "good client two intermediates",
                                               self.int2, "client", sent_chain=[self.int2, self.int]))

    @cached_property
    def selfsigned(self):
        return self._locked(lambda: self.self_signed("client-selfsigned", "self-signed client",
                                                     profile="ext_selfsigned_client"))

    @cached_property
    def expired(self):
        return self._locked(lambda: self.issue("client-expired", "expired client", self.int, "client",
                                               dates=("20200101000000Z", "20200201000000Z"),
                                               sent_chain=[self.int]))

    @cached_property
    def unknown(self):
        """Signed by other_root, which the servers do not trust."""
        return self._locked(lambda: self.issue("client-unknown", "unknown-CA client", self.other_root,
                                               "client"))

    def big_cas(self, count):
        """`count` self-signed CAs with subjects of 1-1.2 KB (16 OUs of 60 characters): 80 of
        them exceed the 65535 bytes of a CertificateRequest's CA list, 40 fit."""
        units = ["%02d" % i + "u" * 58 for i in range(16)]

        def make(i):  # distinct files per i: safe to run in parallel
            return self.self_signed("big-ca-%d" % i, "RCT Big CA %d" % i, units=units)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            return list(pool.map(make, range(count)))

    @cached_property
    def long(self):
        """root -> 8 intermediates -> leaf, 4096-bit RSA keys; the client sends leaf + 8 CAs."""
        def build():
            names = ["long-int%d" % i for i in range(1, LONG_CHAIN_INTERMEDIATES + 1)] + ["client-long"]
            # Key generation dominates: run it on every core.
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                list(pool.map(lambda n: self.key(n, "rsa4096"), names))
            issuer, cas = self.root, []
            for i, name in enumerate(names[:-1], start=1):
                issuer = self.issue(name, "RCT Long Chain CA %d" % i, issuer, "ca", kind="rsa4096")
                cas.append(issuer)
            return self.issue(names[-1], "long chain client", issuer, "client", kind="rsa4096",
                              sent_chain=list(reversed(cas)))
        return self._locked(build)

    # -- oracle -----------------------------------------------------------------------------

    def expected_verify(self, client, trusted, depth=1):
        """What $ssl_client_verify should say for `client` verified against `trusted` (list of
        Cert) at verify `depth`, computed independently by `openssl verify`."""
        if client is None:
            return "NONE"
        args = ["verify", "-purpose", "sslclient", "-verify_depth", str(depth)]
        if trusted:
            store = os.path.join(self.dir, "store-" + "-".join(c.name for c in trusted) + ".pem")
            args += ["-CAfile", Cert._write_concat(store, trusted)]
        else:
            args += ["-no-CAfile", "-no-CApath", "-no-CAstore"]
        if client.intermediates_file:
            args += ["-untrusted", client.intermediates_file]
        proc = subprocess.run(["openssl", *args, client.cert], capture_output=True, text=True)
        errors = [line.split("lookup:", 1)[1].strip()
                  for line in (proc.stdout + proc.stderr).splitlines()
                  if line.startswith("error ") and "lookup:" in line]
        if proc.returncode == 0 and not errors:
            return "SUCCESS"
        if not errors:
            raise RuntimeError("cannot parse openssl verify output: %s%s" % (proc.stdout, proc.stderr))
        return "FAILED:" + errors[-1]

    # `openssl verify` stops at the first error; a handshake's verify callback (nginx's and
    # ours) lets verification go on, and on some OpenSSL versions (3.6) it then ends on a
    # later error for the same missing issuer. Both results mean "no trusted issuer here".
    SAME_MISSING_ISSUER = {
        "FAILED:unable to get local issuer certificate": "FAILED:unable to verify the first certificate",
    }

    def expected_verify_any(self, client, trusted, depth=1):
        """The set of values $ssl_client_verify may take on any supported OpenSSL: the
        `openssl verify` result, plus its equivalent when the handshake goes on past it."""
        first = self.expected_verify(client, trusted, depth)
        return {first} | ({self.SAME_MISSING_ISSUER[first]} if first in self.SAME_MISSING_ISSUER else set())


def main(argv):
    if len(argv) != 2:
        print("usage: python3 -m tests.harness pki DIR", file=sys.stderr)
        return 2
    pki = PKI(os.path.join(argv[1], "work"))
    for name, cert in [("root", pki.root), ("int", pki.int), ("server", pki.server("localhost")),
                       ("good", pki.good), ("selfsigned", pki.selfsigned)]:
        shutil.copyfile(cert.cert, os.path.join(argv[1], name + ".pem"))
        shutil.copyfile(cert.key, os.path.join(argv[1], name + ".key"))
    shutil.copyfile(pki.good.bundle, os.path.join(argv[1], "good-bundle.pem"))
    return 0

