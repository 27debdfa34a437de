"""The Python test suites, one package per kind (tests/<kind>/), sharing tests/harness.

Run every suite as a module from the repository root, e.g. `python3 -m tests.nginx.run`:
then each test file imports the harness plainly (`from tests.harness import Nginx, pki`).
"""

import sys

sys.dont_write_bytecode = True  # no __pycache__ under the suites (this file's own is ignored)
