-- nginx-side helpers for tests/reliability (resumption attacks, bad input, soak).
-- Reports are "key=value" lines ended by "end" (tests/harness/nginx.py parse_reports).

local client_tls = require "resty.client_tls"
local ngx_ssl = require "ngx.ssl"
local H = require "rct_harness"

local tls = client_tls.new()

local _M = {}

-- Certificate phase: opts = { ca = {paths}, depth = n, disable = bool, request = bool }.
-- CA lists are parsed once per worker (as Kong keeps them).
function _M.cert_phase(opts)
    opts = opts or {}
    if opts.request ~= false then
        H.ask(tls, H.cached_ca(opts.ca), opts.depth, opts.disable)
        return
    end
    if opts.disable then
        local ok, err = tls.disable_session_reuse()
        if not ok then
            ngx.log(ngx.ERR, "disable_session_reuse failed: ", err)
        end
    end
end

-- The check a plugin runs to refuse cross-host session reuse: a resumed session must
-- have been established for the host this request is for. Returns true, or false and
-- the reason.
function _M.session_matches_host()
    local info, err = tls.get_session_info()
    if not info then
        return false, "no session info: " .. tostring(err)
    end
    if info.resumed and info.server_name ~= ngx.var.host then
        return false, "session resumed from " .. tostring(info.server_name)
                      .. " on " .. tostring(ngx.var.host)
    end
    return true
end

-- access phase with the guard: 421 Misdirected Request when the session was made for
-- another host.
function _M.guard()
    local ok, why = _M.session_matches_host()
    if not ok then
        ngx.header["X-Refused"] = why
        return ngx.exit(421)
    end
end

function _M.report()
    local chain, cerr = tls.get_full_client_certificate_chain()
    local n = 0
    if chain then
        for _ in chain:gmatch("BEGIN CERTIFICATE") do
            n = n + 1
        end
    end
    local info, ierr = tls.get_session_info()
    local var = ngx.var
    local out = {
        "server=" .. tostring(var.rel_server),
        "sni=" .. tostring(var.ssl_server_name),
        "host=" .. tostring(var.host),
        "reused=" .. tostring(var.ssl_session_reused),
        "protocol=" .. tostring(var.ssl_protocol),
        "verify=" .. tostring(tls.get_client_verify()),
        "nginx_verify=" .. tostring(var.ssl_client_verify),
        "chain=" .. (chain and ("certs:" .. n) or (cerr and ("err:" .. cerr) or "nil")),
        "chain_b64=" .. (chain and ngx.encode_base64(chain) or ""),
        "session.resumed=" .. (info and tostring(info.resumed) or ("err:" .. tostring(ierr))),
        "session.server_name=" .. (info and tostring(info.server_name) or ""),
    }
    H.report(out)
end


-- ---- bad input ---------------------------------------------------------------------------

local ffi = require "ffi"

-- "ok:<values>" / "nil,<err>" / "raise:<message without the file:line prefix>"
local function outcome(ok, a, b)
    if not ok then
        return "raise:" .. H.message(a)
    end
    if a == nil then
        return "nil," .. tostring(b)
    end
    return "ok:" .. tostring(a)
end

local function record(name, ...)
    H.keep("bad", name, outcome(pcall(...)))
end

-- Certificate phase of the bad-input server: misuse of every argument, and a CA list
-- over the 65535-byte hint limit, then a normal request (so the handshake goes on).
function _M.bad_cert_phase(opts)
    local name = ngx_ssl.server_name()
    if name == "args.test" then
        record("ca_string", tls.request_client_certificate, "-----BEGIN CERTIFICATE-----")
        record("ca_table", tls.request_client_certificate, {})
        record("ca_table_ctx_string", tls.request_client_certificate, { ctx = "x" })
        record("ca_number", tls.request_client_certificate, 42)
        record("ca_boolean", tls.request_client_certificate, true)
        record("ca_cdata_array", tls.request_client_certificate, ffi.new("int[4]"))
        record("ca_cdata_int64", tls.request_client_certificate, ffi.new("int64_t", 1))
        record("ca_cdata_null", tls.request_client_certificate, ffi.cast("void *", 0))
        record("depth_string", tls.request_client_certificate, nil, "2")
        record("depth_fraction", tls.request_client_certificate, nil, 1.5)
        record("wrong_phase_chain_in_ssl_cert", tls.get_full_client_certificate_chain)
        record("wrong_phase_set_verify_in_ssl_cert", tls.set_client_verify, "SUCCESS")
        record("wrong_phase_session_info_in_ssl_cert", tls.get_session_info)
    elseif name == "bigca.test" then
        record("ca_over_hint_limit", tls.request_client_certificate, H.cached_ca(opts.big_ca), 2)
        return  -- the connection goes on without a certificate request
    end
    H.ask(tls, H.cached_ca(opts.ca), opts.depth)
end

-- set_by_lua phase: no function of the module is allowed there.
function _M.bad_set_phase()
    record("wrong_phase_chain_in_set", tls.get_full_client_certificate_chain)
    record("wrong_phase_session_info_in_set", tls.get_session_info)
    return ""
end

-- Request phase: misuse from content.
function _M.bad_content()
    record("wrong_phase_request_in_content", tls.request_client_certificate)
    record("wrong_phase_disable_in_content", tls.disable_session_reuse)
    record("set_verify_nil", tls.set_client_verify, nil)
    record("set_verify_number", tls.set_client_verify, 42)
    record("set_verify_bogus", tls.set_client_verify, "bogus")
    record("low_ssl_nil", client_tls.ssl.get_client_verify, nil)
    record("low_ssl_string", client_tls.ssl.get_client_verify, "not an SSL*")
    record("low_ssl_table", client_tls.ssl.get_full_client_certificate_chain, {})
    record("low_is_valid_number", client_tls.ssl.is_valid_client_verify, 42)
    _M.report()
end

-- On a plain-HTTP server: the readers answer nil, err.
function _M.plain_content()
    record("plain_chain", tls.get_full_client_certificate_chain)
    record("plain_verify", tls.get_client_verify)
    record("plain_session_info", tls.get_session_info)
    ngx.say("plain ok")
end

function _M.dump_bad()
    H.say_kept("bad")
end

-- Misuse that passes the Lua checks: pointers of another type. What happens is recorded
-- by the test (which runs them in a throwaway nginx).
function _M.dangerous(kind, key_path)
    if kind == "ca_char_pointer" then
        record(kind, tls.request_client_certificate, ffi.cast("char *", "abcdefgh"))
    elseif kind == "ca_private_key_pointer" then
        local key = ngx_ssl.parse_pem_priv_key(H.read_file(key_path))
        record(kind, tls.request_client_certificate, key)
    elseif kind == "low_ssl_int_array" then
        record(kind, client_tls.ssl.get_client_verify, ffi.new("int[1]"))
    end
end

return _M
