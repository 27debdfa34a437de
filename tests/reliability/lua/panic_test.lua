-- nginx side of tests/reliability/panic.sh: calls the module with a panic injected into
-- the library (RESTY_CLIENT_TLS_TEST_PANIC set through setenv around each call).
local ffi = require "ffi"
ffi.cdef [[
int setenv(const char *name, const char *value, int overwrite);
int unsetenv(const char *name);
]]
local H = require "rct_harness"
local tls = require("resty.client_tls").new()
local _M = {}

local function with_panic(f, ...)
    ffi.C.setenv("RESTY_CLIENT_TLS_TEST_PANIC", "1", 1)
    local ok, a, b = pcall(f, ...)
    ffi.C.unsetenv("RESTY_CLIENT_TLS_TEST_PANIC")
    if not ok then
        return "raise:" .. H.message(a)
    end
    return tostring(a) .. "," .. tostring(b)
end

function _M.cert_phase()
    H.keep("panic", "request", with_panic(tls.request_client_certificate))
    H.keep("panic", "disable", with_panic(tls.disable_session_reuse))
    assert(tls.request_client_certificate())  -- and then for real
end

function _M.content()
    local out = {
        "request=" .. H.kept("panic", "request"),
        "disable=" .. H.kept("panic", "disable"),
        "chain=" .. with_panic(tls.get_full_client_certificate_chain),
        "verify=" .. with_panic(tls.get_client_verify),
        "session=" .. with_panic(tls.get_session_info),
        "set_verify=" .. with_panic(tls.set_client_verify, "SUCCESS"),
        "after.verify=" .. tostring(tls.get_client_verify()),
        "after.chain=" .. (tls.get_full_client_certificate_chain() and "present" or "nil"),
        "worker=" .. ngx.worker.pid(),
    }
    H.report(out)
end

return _M
