#!/usr/bin/env python3
"""Renames strings of a shared library's dynamic string table in place (same length), then
recomputes the hashes of its symbol-version tables (.gnu.version_d, .gnu.version_r).
openssl_mismatch.sh uses it to make a second OpenSSL copy the loader maps apart from the
system one (other soname and NEEDED names, e.g. libssl.so.3 -> libssX.so.3) and, for one
case, a copy whose symbol versions differ (OPENSSL_3.* -> OPENSSM_3.*), as a differently
built OpenSSL (1.1 against 3) would.

usage: elf_rename.py FILE [--exact OLD=NEW]... [--prefix OLD=NEW]..."""
import struct
import sys


def elf_hash(name):
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def sections(data):
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = secs[shstrndx][4]
    out = {}
    for s in secs:
        name = bytes(data[strtab + s[0]: data.index(b"\0", strtab + s[0])]).decode()
        out[name] = (s[4], s[5])  # offset, size
    return out


def main(argv):
    path, rules = argv[0], []
    it = iter(argv[1:])
    for flag in it:
        old, new = next(it).encode().split(b"=")
        assert len(old) == len(new), "same length only: %r %r" % (old, new)
        rules.append((flag == "--prefix", old, new))
    data = bytearray(open(path, "rb").read())
    assert data[:4] == b"\x7fELF" and data[4] == 2, "ELF64 only"
    secs = sections(data)
    lo = secs[".dynstr"][0]
    hi = lo + secs[".dynstr"][1]
    count = 0
    start = lo
    while start < hi:
        end = data.index(b"\0", start)
        s = bytes(data[start:end])
        for prefix, old, new in rules:
            if (prefix and s.startswith(old)) or (not prefix and s == old):
                data[start:start + len(old)] = new
                count += 1
                break
        start = end + 1

    def string(off):
        return bytes(data[lo + off: data.index(b"\0", lo + off)])

    if ".gnu.version_d" in secs:
        off = secs[".gnu.version_d"][0]
        while True:
            _, _, _, _, _, aux, nxt = struct.unpack_from("<HHHHIII", data, off)
            vda_name, = struct.unpack_from("<I", data, off + aux)
            struct.pack_into("<I", data, off + 8, elf_hash(string(vda_name)))
            if not nxt:
                break
            off += nxt
    if ".gnu.version_r" in secs:
        off = secs[".gnu.version_r"][0]
        while True:
            _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, off)
            a = off + aux
            for _ in range(cnt):
                _, _, _, vna_name, vna_next = struct.unpack_from("<IHHII", data, a)
                struct.pack_into("<I", data, a, elf_hash(string(vna_name)))
                if not vna_next:
                    break
                a += vna_next
            if not nxt:
                break
            off += nxt
    open(path, "wb").write(data)
    print("%s: %d strings renamed" % (path, count))


if __name__ == "__main__":
    main(sys.argv[1:])
