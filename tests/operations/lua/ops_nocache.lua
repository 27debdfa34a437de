-- Handlers for `lua_code_cache off` (tests/operations/test_code_cache.py). There every
-- handshake and every request runs in a fresh Lua VM: this file and resty.client_tls are
-- loaded afresh each time, and the CA file is read and parsed each time.
-- variant "stock": the control, lua-resty-core's ngx.ssl.verify_client and nginx's
-- $ssl_client_verify, never loading resty.client_tls.

local ngx_ssl = require "ngx.ssl"

local _M = {}

local function ca_list(path)
    local f = assert(io.open(path, "rb"))
    local pem = f:read("*a")
    f:close()
    return assert(ngx_ssl.parse_pem_cert(pem))
end

function _M.cert_phase(variant, ca_path)
    local ca = ca_list(ca_path)
    local ok, err
    if variant == "module" then
        ok, err = require("resty.client_tls").request_client_certificate(ca)
    else
        ok, err = ngx_ssl.verify_client(ca)
    end
    if not ok then
        ngx.log(ngx.ERR, "requesting a client certificate failed: ", err)
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
    out[#out + 1] = "end"
    local body = table.concat(out, "\n") .. "\n"
    ngx.header["Content-Type"] = "text/plain"
    ngx.header["Content-Length"] = #body
    ngx.print(body)
end

return _M
