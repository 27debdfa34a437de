-- resty.kong.tls served by resty-client-tls (see docs/kong.md). After make install,
-- this directory is meant to come first on lua_package_path in an OpenResty built
-- without lua-kong-nginx-module; the Debian package installs this file on the lua
-- module's default path. The implementation lives in resty.client_tls.kong.
return require "resty.client_tls.kong"
