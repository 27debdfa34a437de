-- Server side of the HTTP/3 tests (tests/http3/*.py): tests/nginx/lua/rct_test.lua, whose
-- reports also carry what only a QUIC request shows: $http3 ("h3" over HTTP/3) and
-- $ssl_early_data ("1" while the request is served from 0-RTT data, before the handshake
-- has completed). Loaded once by init_by_lua (tests/http3/h3.py); every report that
-- rct_test.lua makes goes through its module table's snapshot(), replaced here.

local rct = require "rct_test"

local snapshot = rct.snapshot

function rct.snapshot()
    local snap = snapshot()
    local var = ngx.var
    snap[#snap + 1] = { "http3", tostring(var.http3) }
    snap[#snap + 1] = { "early_data", tostring(var.ssl_early_data) }
    return snap
end

return {}
