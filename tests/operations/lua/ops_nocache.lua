-- Handlers for `lua_code_cache off` (tests/operations/test_code_cache.py). There every
-- handshake and every request runs in a fresh Lua VM: this file and resty.client_tls are
-- loaded afresh each time, and the CA file is read and parsed each time.
-- variant "stock": the control, lua-resty-core's ngx.ssl.verify_client and nginx's
-- $ssl_client_verify, never loading resty.client_tls.

local ngx_ssl = require "ngx.ssl"
local H = require "rct_harness"

local _M = {}

function _M.cert_phase(variant, ca_path)
    local ca = H.parse_ca({ ca_path })
    if variant == "module" then
        H.ask(require("resty.client_tls"), ca)
        return
    end
    local ok, err = ngx_ssl.verify_client(ca)
    if not ok then
        ngx.log(ngx.ERR, "ngx.ssl.verify_client failed: ", err)
    end
end

function _M.content(variant)
    local out = { "worker=" .. ngx.worker.pid() }
    if variant == "module" then
        -- Loaded afresh: nothing in this VM has loaded it yet.
        out[#out + 1] = "fresh=" .. tostring(package.loaded["resty.client_tls"] == nil)
        local tls = require("resty.client_tls").new()
        -- A second load in the same VM (its ffi.cdef runs again) must not fail either.
        package.loaded["resty.client_tls"] = nil
        local ok, again = pcall(require, "resty.client_tls")
        out[#out + 1] = "again=" .. (ok and tostring(again._VERSION) or ("raise:" .. tostring(again)))
        local chain, cerr = tls.get_full_client_certificate_chain()
        local verify, verr = tls.get_client_verify()
        out[#out + 1] = "verify=" .. (verify or ("err:" .. tostring(verr)))
        out[#out + 1] = "chain=" .. (chain and ngx.encode_base64(ngx.sha1_bin(chain))
                                     or (cerr and ("err:" .. cerr) or "nil"))
    else
        out[#out + 1] = "verify=" .. tostring(ngx.var.ssl_client_verify)
        out[#out + 1] = "chain=" .. (ngx.var.ssl_client_raw_cert and "leaf-only" or "nil")
    end
    H.report(out)
end

return _M
