"""For shell scripts, from the repository root:
  python3 -m tests.harness worker-user   the `user` line their nginx.conf needs (worker_user())
  python3 -m tests.harness versions      the platform line (platform_versions())
  python3 -m tests.harness pki DIR       the demo PKI in DIR (see certs.py)
  python3 -m tests.harness has-ssl-pointer   exit status 0 when the lua module exports
                                         ngx_http_lua_ffi_get_req_ssl_pointer, else 1
"""

import sys

from . import certs, nginx

if sys.argv[1:] == ["worker-user"]:
    print(nginx.worker_user())
elif sys.argv[1:] == ["versions"]:
    print(nginx.platform_versions())
elif sys.argv[1:] == ["has-ssl-pointer"]:
    sys.exit(0 if nginx.lua_module_has_ssl_pointer() else 1)
elif len(sys.argv) == 3 and sys.argv[1] == "pki":
    sys.exit(certs.main(sys.argv[1:]))
else:
    sys.exit("usage: python3 -m tests.harness worker-user | versions | pki DIR | has-ssl-pointer")
