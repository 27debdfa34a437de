"""Run the nginx integration tests (tests/nginx/test_*.py).

usage: python3 -m tests.nginx.run [--keep] [--list] [--debug-log] [NAME ...]

NAME selects tests: a full test id (`test_verify[expired]`), a function name (all its cases)
or a module name (`test_sessions`). Prints PASS/FAIL per test and ends with `N passed, N failed`;
exit status 0 only when nothing failed. Missing prerequisites (nginx, its lua module, curl,
nghttp, openssl, luajit, the built library) are a failure, never a skip.
"""

import sys

from tests.harness import lua_module_has_ssl_pointer, runner


def applicable(tests):
    """test_old_module checks the one thing an nginx without the SSL-pointer function can do
    (a clear error); every other test needs that function. Which set runs depends on the lua
    module, and the run says so."""
    has_pointer = lua_module_has_ssl_pointer()
    kept = [t for t in tests if (t.module == "test_old_module") != has_pointer]
    return kept, "%d tests %s (this lua module %s ngx_http_lua_ffi_get_req_ssl_pointer)" % (
        len(tests) - len(kept), "for lua modules without it" if has_pointer else "need it",
        "exports" if has_pointer else "lacks")


if __name__ == "__main__":
    sys.exit(runner.main(__package__, __doc__, applicable=applicable))
