"""The test harness every Python suite imports (`from tests.harness import ...`).

- nginx.py: `Nginx` (config from a template, free ports, start and stop by pid, error-log
  scan), server{} blocks, report parsing, assertions, `note()`, `cases()`, platform facts.
- clients.py: curl, openssl s_client and nghttp, as `from tests.harness import clients`.
- certs.py: the throwaway PKI (`pki()` returns the run's one).
- runner.py: discovery, selection, the PASS/FAIL lines and "N passed, N failed".
- lua/rct_harness.lua: the nginx side, on every test nginx's lua_package_path
  (`require "rct_harness"`): PEM files as CA stacks, the certificate-phase request, reports.
- __main__.py: `python3 -m tests.harness worker-user | versions | pki DIR | has-ssl-pointer`,
  for shell scripts.

Everything public in nginx.py is re-exported here. A script that changes a setting the
harness reads at run time (NGINX, START_TIMEOUT, STOP_TIMEOUT) assigns it in
tests.harness.nginx, where the harness looks it up.
"""

from . import certs, clients  # noqa: F401
from .nginx import *  # noqa: F401,F403
from .nginx import _Run  # noqa: F401
