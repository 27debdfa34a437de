# resty-client-tls: `make demo` shows the feature, `make test` runs every test.
# Both install what they need (Debian 12, apt-get) through tools/install-deps.sh.

CARGO ?= cargo
PYTHON ?= python3
LIB := target/release/libresty_client_tls.so

.PHONY: all build deps demo test test-rust test-lua test-nginx test-operations test-reliability test-firstrun test-matrix test-static-nginx soak-long fuzz bench lint clean

all: build

build:
	$(CARGO) build --release

deps:
	bash tools/install-deps.sh

demo: deps build
	bash demo/run.sh

# Rust unit and integration tests (real in-memory handshakes, the header check, the C
# program), the Lua module under plain LuaJIT, then real nginx with real clients.
test: deps build test-rust test-lua test-nginx test-operations test-packaging test-reliability test-firstrun

test-rust:
	$(CARGO) test --release

test-lua: build
	bash tests/lua/run.sh

test-nginx: build
	$(PYTHON) -m tests.nginx.run

# nginx run as in production (~1 min): 2 and 4 workers, 20 reloads, a reload with an edited
# CA file, a binary upgrade, a killed worker, lua_code_cache off, broken setups refused at
# startup. Ends with "N passed, N failed".
test-operations: build
	$(PYTHON) -m tests.operations.run

# Issue 5: memcheck/ASan runs, resumption attacks and bad input in nginx, the OpenSSL-copy
# guard with two copies in one process, an injected panic, and the short soak.
test-reliability: build
	bash tests/reliability/valgrind.sh
	bash tests/reliability/run.sh
	bash tests/soak/run.sh --short

# A clone of HEAD in a 0700 directory (as in /root): `make demo`, an nginx test and a short
# soak from there. Ends with "N passed, N failed".
test-firstrun: build
	bash tests/firstrun/run.sh

# The platform matrix: Debian 11, 13 and sid chroots (OpenSSL 1.1.1, 3.5, 3.6), made once
# with debootstrap and cached in /var/cache/resty-client-tls/matrix; in each, the library
# built against that release's OpenSSL and the Rust, Lua, nginx, valgrind/ASan, operations
# and short-soak suites (the last two n/a on Debian 11: its lua module lacks the SSL pointer).
# Needs root. One line per release, then "N passed, N failed". CI runs it after `make test`.
test-matrix:
	bash tools/matrix.sh

# The OpenSSL-copy guard in real nginx binaries that embed OpenSSL statically: Debian's
# nginx source rebuilt with --with-openssl= the 3.0 source (must work) and bullseye's
# 1.1.1 source (must be refused). About 5 minutes the first time (two nginx builds,
# cached in /var/cache/resty-client-tls/static-nginx), seconds afterwards. Needs root.
STATIC_NGINX_DEPS := dpkg-dev libpcre2-dev zlib1g-dev libgeoip-dev libgd-dev libxslt1-dev libperl-dev
test-static-nginx: build
	@missing=$$(for p in $(STATIC_NGINX_DEPS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	bash tests/reliability/static_nginx.sh

# Not part of `make test`: the long soak (~16 min), the fuzzers (FUZZ_SECONDS per target,
# needs `cargo install cargo-fuzz`), the benchmarks (~4 min; ratios, never pass/fail).
soak-long: build
	bash tests/soak/run.sh --long

fuzz:
	bash fuzz/run.sh $(or $(FUZZ_SECONDS),60)

bench: build
	bash bench/run.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

clean:
	$(CARGO) clean

# -- install / uninstall (docs/install.md) -----------------------------------------------
# `make build && sudo make install [PREFIX=/usr/local] [DESTDIR=]`: the shared library,
# the header, resty-client-tls.pc, the Lua module (with the Kong shim) where LuaJIT's
# default package.path/cpath look, so `require "resty.client_tls"` needs no
# lua_package_path. OpenResty:
#   make install PREFIX=/usr/local/openresty/site LUA_LIBDIR=/usr/local/openresty/site/lualib \
#                LUA_CLIBDIR=/usr/local/openresty/site/lualib
# Built against another OpenSSL (OPENSSL_DIR / OPENSSL_LIB_DIR / OPENSSL_INCLUDE_DIR in
# the environment or on the command line): the .pc file then points at that OpenSSL.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
LUA_LIBDIR ?= $(PREFIX)/share/lua/5.1
LUA_CLIBDIR ?= $(PREFIX)/lib/lua/5.1
DATADIR ?= $(PREFIX)/share/resty-client-tls
DESTDIR ?=
INSTALL ?= install
LDCONFIG ?= ldconfig

RCT_COMMA := ,
RCT_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
RCT_OSSL_INC := $(or $(OPENSSL_INCLUDE_DIR),$(if $(OPENSSL_DIR),$(OPENSSL_DIR)/include))
RCT_OSSL_LIB := $(or $(OPENSSL_LIB_DIR),$(if $(OPENSSL_DIR),$(OPENSSL_DIR)/lib))
# The library reaches Lua through a link in LUA_CLIBDIR (the module tries lib?.so on each
# package.cpath entry), unless both are one directory.
RCT_LUA_LINK := $(if $(filter-out $(abspath $(LIBDIR)),$(abspath $(LUA_CLIBDIR))),$(LUA_CLIBDIR)/libresty_client_tls.so)

.PHONY: install uninstall test-packaging deb

install:
	@test -f $(LIB) || $(CARGO) build --release
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(LUA_LIBDIR)/resty/client_tls $(DESTDIR)$(LUA_CLIBDIR) \
		$(DESTDIR)$(DATADIR)/kong-shim/resty/kong
	$(INSTALL) -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/libresty_client_tls.so
	$(INSTALL) -m 0644 include/resty_client_tls.h $(DESTDIR)$(INCLUDEDIR)/resty_client_tls.h
	sed -e 's|@prefix@|$(PREFIX)|' -e 's|@libdir@|$(LIBDIR)|' -e 's|@includedir@|$(INCLUDEDIR)|' \
		-e 's|@lualibdir@|$(LUA_LIBDIR)|' -e 's|@luaclibdir@|$(LUA_CLIBDIR)|' \
		-e 's|@version@|$(RCT_VERSION)|' \
		-e 's|@requires@|$(if $(RCT_OSSL_INC)$(RCT_OSSL_LIB),,libssl libcrypto)|' \
		-e 's|@openssl_cflags@|$(if $(RCT_OSSL_INC),-I$(RCT_OSSL_INC))|' \
		-e 's|@openssl_libs@|$(if $(RCT_OSSL_LIB),-L$(RCT_OSSL_LIB) -Wl$(RCT_COMMA)-rpath$(RCT_COMMA)$(RCT_OSSL_LIB) -lssl -lcrypto)|' \
		pkg/resty-client-tls.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/resty-client-tls.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/resty-client-tls.pc
	$(INSTALL) -m 0644 lua-bindings/resty/client_tls.lua $(DESTDIR)$(LUA_LIBDIR)/resty/client_tls.lua
	$(INSTALL) -m 0644 kong/lua/resty/client_tls/kong.lua $(DESTDIR)$(LUA_LIBDIR)/resty/client_tls/kong.lua
	$(INSTALL) -m 0644 kong/shim/resty/kong/tls.lua $(DESTDIR)$(DATADIR)/kong-shim/resty/kong/tls.lua
	$(if $(RCT_LUA_LINK),ln -sfn $(LIBDIR)/libresty_client_tls.so $(DESTDIR)$(RCT_LUA_LINK))
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; then $(LDCONFIG); fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libresty_client_tls.so $(DESTDIR)$(INCLUDEDIR)/resty_client_tls.h \
		$(DESTDIR)$(PKGCONFIGDIR)/resty-client-tls.pc $(DESTDIR)$(LUA_LIBDIR)/resty/client_tls.lua \
		$(DESTDIR)$(LUA_LIBDIR)/resty/client_tls/kong.lua \
		$(DESTDIR)$(DATADIR)/kong-shim/resty/kong/tls.lua $(if $(RCT_LUA_LINK),$(DESTDIR)$(RCT_LUA_LINK))
	-rmdir $(DESTDIR)$(LUA_LIBDIR)/resty/client_tls $(DESTDIR)$(DATADIR)/kong-shim/resty/kong \
		$(DESTDIR)$(DATADIR)/kong-shim/resty $(DESTDIR)$(DATADIR)/kong-shim $(DESTDIR)$(DATADIR) 2>/dev/null

# make install/uninstall into temp prefixes, the C example built with pkg-config, the
# installed Lua module in nginx, the Kong shim and Kong's call patterns, the version in
# every file, the rockspec (luarocks make, offline), an OPENSSL_DIR build, the API docs,
# the Debian package (tests/packaging/deb.sh: installs and purges it; needs root).
# Ends with "N passed, N failed".
test-packaging: build
	bash tests/packaging/run.sh

# -- Debian package (docs/debian.md) ------------------------------------------------------
# target/deb/resty-client-tls_<version>_<arch>.deb, for the Debian release this runs on
# (its Depends come from this system's dpkg database). Other releases: build it in their
# chroot, `RCT_MATRIX_SUITES=deb tools/matrix.sh trixie sid` (builds and tests it there).
deb: build
	bash tools/deb.sh target/deb
