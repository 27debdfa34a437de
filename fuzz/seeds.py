#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into fuzz/corpus/<target>/ (kept when present).
cert_stacks seeds embed real DER certificates made with the openssl CLI, so the DER
parser path starts from valid certificates and mutates from there."""
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def der_cert(cn, tmp):
    key, crt = os.path.join(tmp, cn + ".key"), os.path.join(tmp, cn + ".der")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-subj", "/O=fuzz seeds/CN=" + cn, "-days", "30",
                    "-outform", "DER", "-out", crt], check=True, capture_output=True)
    with open(crt, "rb") as f:
        return f.read()


def rec_der(der):
    return bytes([0]) + struct.pack("<H", len(der)) + der


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "seed-" + name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        a, b = der_cert("Seed CA A", tmp), der_cert("Seed CA B", tmp)
    hs13, hs12 = 0x1 | 0x2 | 0x10 | (3 << 5), 0x1 | 0x10 | (3 << 5)
    cs = {
        "empty-stack-tls13": bytes([hs13]),
        "empty-stack-tls12-nocert": bytes([0x1 | 0x8]),
        "der-two": bytes([hs13]) + rec_der(a) + rec_der(b),
        "der-dup-subject": bytes([hs12]) + rec_der(a) + bytes([3, 0, 0]) + bytes([2, 0, 0]),
        "big-name": bytes([hs12, 1]) + struct.pack("<H", 900) + bytes([63, 7]),
        "big-names-over-limit": bytes([hs13]) + (bytes([1]) + struct.pack("<H", 600) + bytes([63, 1])) * 2,
        "thousands-repeat": bytes([hs13]) + rec_der(a) + bytes([4, 0x0F]) + struct.pack("<H", 2999),
        "thousands-distinct": bytes([hs12, 5]) + struct.pack("<H", 0) + bytes([0x0F]) + struct.pack("<H", 2999),
        "distinct-then-root": bytes([hs13 | 0x4, 5]) + struct.pack("<H", 100) + bytes([0x0F]) + struct.pack("<H", 1500) + bytes([6]),
        "root-only": bytes([hs13, 6]),
    }
    for name, data in cs.items():
        write("cert_stacks", name, data)
    for name, data in {"success": b"SUCCESS", "none": b"NONE", "failed": b"FAILED:x", "bad": b"FAILED"}.items():
        write("is_valid_client_verify", name, data)
    calls = b"".join(bytes([conn, func, flags, mode, 7, 0])
                     for conn in range(6) for func in range(3) for flags in (0, 1, 2, 4, 8) for mode in range(6))
    write("buffer_protocol", "all-combinations", calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
