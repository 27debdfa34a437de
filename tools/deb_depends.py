#!/usr/bin/env python3
"""The Depends line of a Debian package holding the shared object FILE, computed the way
dpkg-shlibdeps computes it, from this system's dpkg database (dpkg-dev is not needed):

  for each library FILE needs (NEEDED), the package that holds it (dpkg -S), then that
  package's symbols file: the highest minimal version among the symbols FILE imports from
  it (weak imports do not count), or, without a symbols file, its shlibs file.

usage: deb_depends.py FILE       prints e.g. "libc6 (>= 2.34), libgcc-s1 (>= 4.2), libssl3 (>= 3.0.0)"
"""

import os
import re
import subprocess
import sys

INFO = "/var/lib/dpkg/info"


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run("readelf", "-d", path))


def imports(path):
    """Strong undefined dynamic symbols, as name@VERSION (or bare name)."""
    out = set()
    for line in run("nm", "-D", "--undefined-only", path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            out.add(parts[1])
    return out


def resolved(path):
    """soname -> file, as the dynamic linker resolves them for `path`."""
    libs = {}
    for line in run("ldd", path).splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2)
        else:
            m = re.match(r"\s*(/\S+) \(0x", line)   # the dynamic linker itself
            if m:
                libs[os.path.basename(m.group(1))] = m.group(1)
    return libs


def owner(path):
    """The package holding `path`, trying the merged-/usr aliases too."""
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):
        if p.startswith("/usr/lib/"):
            candidates.append(p[len("/usr"):])
        elif p.startswith("/lib"):
            candidates.append("/usr" + p)
    for p in candidates:
        proc = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if proc.returncode == 0:
            # "libssl3:amd64: /usr/lib/...", or a list "pkg1, pkg2: path"; diversions come
            # first as "diversion by libc6 from: ..." lines (trixie's /lib64 loader)
            for line in proc.stdout.splitlines():
                if line.startswith("diversion by ") or ": " not in line:
                    continue
                return line.split(": ", 1)[0].split(",")[0].strip()
    raise SystemExit("deb_depends: no package holds %s (tried %s)" % (path, ", ".join(candidates)))


def info_file(pkg, ext):
    for name in (pkg, pkg.split(":")[0]):
        p = os.path.join(INFO, "%s.%s" % (name, ext))
        if os.path.exists(p):
            return p
    arch = run("dpkg", "--print-architecture").strip()
    p = os.path.join(INFO, "%s:%s.%s" % (pkg.split(":")[0], arch, ext))
    return p if os.path.exists(p) else None


def vmax(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return b if subprocess.run(["dpkg", "--compare-versions", b, "gt", a]).returncode == 0 else a


def from_symbols(path, soname, wanted):
    """(dependency template, minimal version) from a symbols file, or None."""
    section, template, best = False, None, None
    with open(path) as f:
        for line in f:
            if not line.startswith((" ", "|", "*")):
                fields = line.split()
                section = bool(fields) and fields[0] == soname
                if section:
                    template = " ".join(f for f in fields[1:] if f != "#MINVER#")
                continue
            if not section or not line.startswith(" "):
                continue
            fields = line.split()
            sym = re.sub(r"^\([^)]*\)", "", fields[0])   # tags like (c++) or (arch=...)
            if sym in wanted and len(fields) > 1:
                best = vmax(best, fields[1])
    return (template, best) if template else None


def from_shlibs(path, soname):
    m = re.fullmatch(r"(.+)\.so\.(.+)", soname) or re.fullmatch(r"(.+)-(.+)\.so", soname)
    if not m:
        return None
    with open(path) as f:
        for line in f:
            fields = line.split(None, 2)
            if len(fields) == 3 and fields[0] == m.group(1) and fields[1] == m.group(2):
                dep = fields[2].strip()
                v = re.search(r"\(>= ([^)]+)\)", dep)
                return dep.split(" ", 1)[0].split(",")[0], v.group(1) if v else None
    return None


def depends(path):
    wanted = imports(path)
    files = resolved(path)
    deps = {}   # package -> minimal version (None: any)
    for soname in needed(path):
        if soname not in files:
            raise SystemExit("deb_depends: %s needs %s, which ldd cannot find" % (path, soname))
        pkg = owner(files[soname])
        found = None
        sym = info_file(pkg, "symbols")
        if sym:
            found = from_symbols(sym, soname, wanted)
        if not found:
            shl = info_file(pkg, "shlibs")
            if shl:
                found = from_shlibs(shl, soname)
        template, version = found if found else (pkg.split(":")[0], None)
        name = template.split()[0]
        deps[name] = vmax(deps.get(name), version) if name in deps else version
    return ", ".join("%s (>= %s)" % (n, v) if v and v != "0" else n for n, v in sorted(deps.items()))


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(depends(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
