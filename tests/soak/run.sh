#!/usr/bin/env bash
# Soak of resty-client-tls inside a real nginx worker (see tests/soak/soak.py).
#
#   tests/soak/run.sh --short   17,000 full handshakes (10,500 with a client certificate) and
#                         100,000 keep-alive requests, 10 rounds: about 1-2 minutes; part of
#                         `make test`
#   tests/soak/run.sh --long    170,000 full handshakes and 1,000,000 keep-alive requests,
#                         20 rounds: about 15-20 minutes
#   tests/soak/run.sh [soak.py options]   e.g. --handshakes 5000 --requests 20000 --rounds 5
#
# Needs the built library (cargo build --release), nginx + its lua module, python3.
# Ends with exactly "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "${1:-}" in
    --short) shift; set -- --handshakes 17000 --requests 100000 --rounds 10 "$@" ;;
    --long) shift; set -- --handshakes 170000 --requests 1000000 --rounds 20 "$@" ;;
esac
cd "$here/../.."  # the Python suites run as modules from the repository root
exec python3 -m tests.soak.soak "$@"
