#!/usr/bin/env python3
"""API documentation checks of tests/packaging/run.sh.

usage: check_docs.py LIBRARY.so

- C: every `resty_client_tls_*` function and `RESTY_CLIENT_TLS_*` constant of
  include/resty_client_tls.h has a doc comment (cbindgen copies the Rust doc comments),
  with a `# Safety` section when it takes a pointer; the header declares no other
  function; the library exports exactly the header's functions.
- Lua: every public function of lua-bindings/resty/client_tls.lua (PDK and low layer) has
  a section in docs/lua-api.md with syntax, context, returns and a Lua example, and the
  context lists exactly the phases the module accepts.
- Kong shim: every function of kong/lua/resty/client_tls/kong.lua is named in docs/kong.md.
- README: the newcomer's page (commands, examples, platforms) links every reference page;
  docs/install.md has the install, pkg-config, LuaRocks and OpenSSL instructions.
- The repository stands alone: no tracked file names a document the repository does not
  contain (the project's private notes), and every relative Markdown link resolves.
Prints each problem; exit status 1 when there is one.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HEADER = os.path.join(REPO, "include", "resty_client_tls.h")
LUA_MODULE = os.path.join(REPO, "lua-bindings", "resty", "client_tls.lua")
KONG_MODULE = os.path.join(REPO, "kong", "lua", "resty", "client_tls", "kong.lua")
LUA_DOC = os.path.join(REPO, "docs", "lua-api.md")
KONG_DOC = os.path.join(REPO, "docs", "kong.md")
README = os.path.join(REPO, "README.md")

# nginx directive (in a **context:** line) -> ngx.get_phase() name
DIRECTIVE_PHASE = {
    "ssl_certificate": "ssl_cert", "ssl_client_hello": "ssl_client_hello", "init": "init",
    "init_worker": "init_worker", "set": "set", "rewrite": "rewrite", "access": "access",
    "content": "content", "balancer": "balancer", "header_filter": "header_filter",
    "body_filter": "body_filter", "log": "log", "timer": "timer",
}

problems = []


def problem(fmt, *args):
    problems.append(fmt % args if args else fmt)


def read(path):
    with open(path) as f:
        return f.read()


# -- C -----------------------------------------------------------------------------------------

FUNC_DECL = re.compile(r"^(?!#|\s|/|\*|extern \"C\"|})[^;{}()]*?\b([A-Za-z_]\w*)\s*\(([^;]*)\)\s*;\s*$", re.M)
DEFINE = re.compile(r"^#define\s+(RESTY_CLIENT_TLS_\w+)\b", re.M)


def doc_before(text, pos):
    """The /** ... */ block ending right before `pos` (blank lines allowed), or None."""
    before = text[:pos].rstrip()
    if not before.endswith("*/"):
        return None
    start = before.rfind("/**")
    return before[start:] if start != -1 else None


def check_header(lib):
    text = read(HEADER)
    declared = {}
    for m in FUNC_DECL.finditer(text):
        name, params = m.group(1), m.group(2)
        if not name.startswith("resty_client_tls_"):
            problem("header declares a function that is not ours: %s", m.group(0).strip())
            continue
        declared[name] = params
        doc = doc_before(text, m.start())
        words = len(re.findall(r"\w+", doc or ""))
        if words < 12:
            problem("header: %s has %s", name, "no doc comment" if doc is None else
                    "a doc comment of %d words" % words)
        elif "*" in params and "Safety" not in doc:
            problem("header: %s takes pointers but its doc has no '# Safety' section", name)
    for m in DEFINE.finditer(text):
        name = m.group(1)
        if name == "RESTY_CLIENT_TLS_H":
            continue
        if doc_before(text, m.start()) is None:
            problem("header: constant %s has no doc comment", name)
    if not declared:
        problem("header: no resty_client_tls_* function found (parser out of date?)")

    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    if out.returncode != 0:
        problem("nm -D %s failed: %s", lib, out.stderr.strip())
        return declared
    exported = set(re.findall(r"\s(resty_client_tls_\w+)$", out.stdout, re.M))
    for name in sorted(exported - set(declared)):
        problem("%s exports %s, which the header does not declare", os.path.basename(lib), name)
    for name in sorted(set(declared) - exported):
        problem("the header declares %s, which %s does not export", name, os.path.basename(lib))
    return declared


# -- Lua ---------------------------------------------------------------------------------------

def lua_phase_sets(src):
    """{"CERT": {"ssl_cert"}, ...} from `local CERT_PHASES, CERT_NAMES = phase_set({...})`."""
    sets = {}
    for m in re.finditer(r"local (\w+)_PHASES\s*,\s*\w+\s*=\s*phase_set\(\{(.*?)\}\)", src, re.S):
        sets[m.group(1)] = set(re.findall(r'"(\w+)"', m.group(2)))
    return sets


def lua_functions(src):
    """[(documented name, phase set name or None)] of the module's public functions."""
    funcs = []
    bodies = list(re.finditer(r"^function (_M|ssl_api)\.(\w+)\(.*?\)\n(.*?)^end\b", src, re.M | re.S))
    for m in bodies:
        table, name, body = m.groups()
        phases = re.search(r"check_phase\((\w+)_PHASES", body)
        funcs.append(("ssl." + name if table == "ssl_api" else name, phases and phases.group(1)))
    for m in re.finditer(r"^ssl_api\.(\w+)\s*=", src, re.M):
        funcs.append(("ssl." + m.group(1), None))
    return funcs


def doc_sections(doc):
    """{heading text: section body} for `## name` headings."""
    sections = {}
    parts = re.split(r"^## +(.+?)\s*$", doc, flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        sections[parts[i].strip()] = parts[i + 1]
    return sections


def check_lua():
    src = read(LUA_MODULE)
    sets = lua_phase_sets(src)
    funcs = lua_functions(src)
    if len(funcs) < 6:
        problem("lua: only %d public functions found in %s (parser out of date?)", len(funcs), LUA_MODULE)
    sections = doc_sections(read(LUA_DOC))
    for name, phase_set in funcs:
        body = sections.get(name)
        if body is None:
            problem("docs/lua-api.md: no '## %s' section", name)
            continue
        for label in ("**syntax:**", "**context:**", "**returns:**"):
            if label not in body:
                problem("docs/lua-api.md: '%s' has no %s line", name, label)
        if "```lua" not in body:
            problem("docs/lua-api.md: '%s' has no Lua example", name)
        syntax = re.search(r"\*\*syntax:\*\*.*?\((.*?)\)", body)
        if syntax and re.search(r"\w", syntax.group(1).replace("ssl", "")) and \
                "**parameters:**" not in body and not name.startswith("ssl."):
            problem("docs/lua-api.md: '%s' takes arguments but has no **parameters:**", name)
        context = re.search(r"\*\*context:\*\*(.*)", body)
        documented = {DIRECTIVE_PHASE.get(d, d) for d in re.findall(r"(\w+)_by_lua", context.group(1))} \
            if context else set()
        if phase_set:
            expected = sets.get(phase_set)
            if expected is None:
                problem("lua: %s checks %s_PHASES, not found", name, phase_set)
            elif documented != expected:
                problem("docs/lua-api.md: '%s' context says %s, the module allows %s",
                        name, sorted(documented), sorted(expected))
        elif documented:
            problem("docs/lua-api.md: '%s' lists phases %s but the module checks none",
                    name, sorted(documented))
    return funcs


def check_kong():
    src = read(KONG_MODULE)
    doc = read(KONG_DOC)
    names = re.findall(r"^function _M\.(\w+)\(", src, re.M)
    # the functions it does not provide (each raises "<name>: not provided ..."), too
    block = re.search(r"^local NOT_PROVIDED = \{\n(.*?)^\}", src, re.M | re.S)
    names += re.findall(r"^  (\w+) = ", block.group(1), re.M) if block else []
    if len(names) < 4 or not block:
        problem("kong: only %d functions found in %s", len(names), KONG_MODULE)
    for name in names:
        if "`%s" % name not in doc and "%s(" % name not in doc:
            problem("docs/kong.md does not mention resty.kong.tls.%s", name)
    return names


def check_readme():
    """The README is the newcomer's page: the two commands, the examples, the platforms,
    and a link to every reference page; the install page has what installing needs."""
    text = read(README)
    for what, pattern in (("the demo", r"make demo"), ("the tests", r"make test\b"),
                          ("the tested platforms", r"## Tested platforms"),
                          ("minimum versions", r"Minimum versions"),
                          ("a Lua example", r"```nginx"), ("a C example", r"```c")):
        if not re.search(pattern, text):
            problem("README.md: nothing about %s (expected /%s/)", what, pattern)
    for page in ("install", "lua-api", "c-api", "behaviour", "kong", "openssl", "performance",
                 "reliability", "testing", "troubleshooting", "architecture"):
        if "](docs/%s.md)" % page not in text:
            problem("README.md: no link to docs/%s.md", page)
    install = read(os.path.join(REPO, "docs", "install.md"))
    for what, pattern in (("make install", r"make install"), ("pkg-config", r"pkg-config"),
                          ("LuaRocks", r"luarocks make"), ("another OpenSSL", r"OPENSSL_DIR")):
        if not re.search(pattern, install):
            problem("docs/install.md: nothing about %s (expected /%s/)", what, pattern)


OUTSIDE = re.compile(r"CONTRACT\.md|PITFALLS|STYLE\.md|/work/shared")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def check_references():
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    checked = 0
    for f in files:
        if f == os.path.relpath(os.path.abspath(__file__), REPO):
            continue  # this file names the patterns it looks for
        path = os.path.join(REPO, f)
        try:
            text = open(path, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        checked += 1
        for m in OUTSIDE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            problem("%s:%d: names %r, which is not in the repository", f, line, m.group(0))
        if f.endswith(".md"):
            for m in LINK.finditer(text):
                target = m.group(1)
                if re.match(r"^[a-z]+:", target):
                    continue
                if not os.path.exists(os.path.join(os.path.dirname(path), target)):
                    line = text.count("\n", 0, m.start()) + 1
                    problem("%s:%d: link to %s, which does not exist", f, line, target)
    return checked


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    declared = check_header(argv[1])
    funcs = check_lua()
    kong = check_kong()
    check_readme()
    files = check_references()
    for p in problems:
        print(p)
    print("note: %d C functions, %d Lua functions, %d shim functions, %d files' references checked"
          % (len(declared), len(funcs), len(kong), files))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
