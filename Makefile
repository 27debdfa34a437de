# resty-client-tls: `make demo` shows the feature, `make test` runs every test.
# Both install what they need (Debian 12, apt-get) through tools/install-deps.sh.

CARGO ?= cargo
PYTHON ?= python3
LIB := target/release/libresty_client_tls.so

.PHONY: all build deps demo test test-rust test-lua test-nginx lint clean

all: build

build:
	$(CARGO) build --release

deps:
	bash tools/install-deps.sh

demo: deps build
	bash demo/run.sh

# Rust unit and integration tests (real in-memory handshakes, the header check, the C
# program), the Lua module under plain LuaJIT, then real nginx with real clients.
test: deps build test-rust test-lua test-nginx

test-rust:
	$(CARGO) test --release

test-lua: build
	bash tests/lua/run.sh

test-nginx: build
	$(PYTHON) tests/nginx/run.py

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

clean:
	$(CARGO) clean
