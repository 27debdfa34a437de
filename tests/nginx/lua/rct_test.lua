-- Server-side helpers for the nginx integration tests (tests/nginx/*.py).
--
-- Every test server calls these from its *_by_lua blocks. What the module under test sees is
-- reported as "key=value" lines ending with a line "end", which tests/harness/nginx.py parses.
-- The chain is base64-encoded so that the Python side can compare it byte for byte.

local client_tls = require "resty.client_tls"
local ngx_ssl = require "ngx.ssl"
local H = require "rct_harness"

local tls = client_tls.new()   -- PDK style, as Kong does

local _M = {}

-- "ok", "nil", "err:<message>" or the value, one line.
local function describe(ok, value, err)
    if not ok then
        return "raise:" .. tostring(value)
    end
    if value == nil then
        return err and ("err:" .. tostring(err)) or "nil"
    end
    return tostring(value)
end

-- get_session_info() is an extension beyond Kong's API: "resumed,<name>", "full,<name>",
-- "unsupported" when the module lacks it, or the failure.
local function session_info()
    if not tls.get_session_info then
        return "unsupported"
    end
    local ok, info, err = pcall(tls.get_session_info)
    if ok and info then
        return (info.resumed and "resumed," or "full,") .. tostring(info.server_name)
    end
    return describe(ok, info, err)
end

-- What the module and nginx see in the current phase, as an array of {key, value}.
function _M.snapshot()
    local ok, chain, err = pcall(tls.get_full_client_certificate_chain)
    if ok and chain then
        chain = "pem:" .. ngx.encode_base64(chain)
    end
    local var = ngx.var
    return {
        { "phase", ngx.get_phase() },
        { "verify", describe(pcall(tls.get_client_verify)) },
        { "chain", describe(ok, chain, err) },
        { "override", tostring(ngx.ctx.CLIENT_VERIFY_OVERRIDE) },
        { "session", session_info() },
        { "nginx_verify", tostring(var.ssl_client_verify) },
        { "reused", tostring(var.ssl_session_reused) },
        { "protocol", tostring(var.ssl_protocol) },
        { "sni", tostring(var.ssl_server_name) },
        { "host", tostring(var.host) },
        { "server", tostring(var.rct_server) },
        { "conn", tostring(var.connection) },
        { "conn_requests", tostring(var.connection_requests) },
        { "http2", tostring(var.http2) },
        { "worker", tostring(ngx.worker.pid()) },
    }
end

local function serialize(prefix, snap, out)
    for _, kv in ipairs(snap) do
        out[#out + 1] = prefix .. kv[1] .. "=" .. kv[2]:gsub("\n", "\\n")
    end
    return out
end

-- request_client_certificate with the certificates of `files` (nil: no CA list), then free
-- the stack at once and churn the allocator a little, so a module that kept the caller's
-- stack would read someone else's memory.
local function request(files, depth, disable)
    local ca = H.parse_ca(files)
    local ok = H.ask(tls, ca, depth, disable)
    if ca then
        ca = nil  -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        local pem = H.read_file(files[1])
        for _ = 1, 16 do
            ngx_ssl.parse_pem_cert(pem)
        end
    end
    return ok
end

-- Certificate phase. opts: { ca = {pem files}, depth = n, disable = true,
-- ca_first = {pem files} (an earlier call, which the main one replaces),
-- try_all = true (first record the phase matrix, see try_all),
-- by_sni = { [server name] = opts } (options chosen by SNI instead) }
function _M.cert_phase(opts)
    if opts.by_sni then
        local name = ngx_ssl.server_name()
        opts = opts.by_sni[name]
        if not opts then
            ngx.log(ngx.ERR, "no certificate phase options for SNI ", tostring(name))
            return
        end
    end
    if opts.try_all then
        _M.try_all()
    end
    if opts.ca_first then
        request(opts.ca_first, opts.depth)
    end
    request(opts.ca, opts.depth, opts.disable)
end

-- rewrite/access phase: apply ?set=<value> through set_client_verify, then remember what the
-- module sees.
function _M.access()
    local ctx = ngx.ctx
    local v = ngx.var.arg_set
    if v then
        v = ngx.unescape_uri(v)
        local ok, err = pcall(tls.set_client_verify, v)
        ctx.set_result = ok and "ok" or ("raise:" .. tostring(err))
    end
    ctx.access = _M.snapshot()
end

-- The report's lines: the snapshots, each key under its prefix, and set_client_verify's
-- outcome.
local function report(snap_prefixes)
    local out = {}
    for _, p in ipairs(snap_prefixes) do
        if p[2] then
            serialize(p[1], p[2], out)
        end
    end
    if ngx.ctx.set_result then
        out[#out + 1] = "set=" .. ngx.ctx.set_result
    end
    return out
end

function _M.content()
    H.report(report({ { "content.", _M.snapshot() }, { "access.", ngx.ctx.access } }))
end

-- log phase: keep what the module sees under ?id=<id>, for /seen?id=<id>.
function _M.log()
    local id = ngx.var.arg_id
    if id then
        H.keep("log", id, table.concat(report({ { "log.", _M.snapshot() } }), "\n"))
    end
end

function _M.seen()
    local data = H.kept("log", ngx.var.arg_id or "")
    if not data then
        return ngx.exit(404)
    end
    H.report({ data })
end

-- Phase matrix: call every API function from the current phase and keep the outcome.
-- In this order: get_client_verify sees the connection's value before set_client_verify
-- stores an override (the same value, "SUCCESS", as the tests use a good client).
local CALLS = {
    { "request_client_certificate", function() return tls.request_client_certificate() end },
    { "disable_session_reuse", function() return tls.disable_session_reuse() end },
    { "get_full_client_certificate_chain", function()
        local chain, err = tls.get_full_client_certificate_chain()
        return chain and ("pem:" .. ngx.encode_base64(chain)) or nil, err
    end },
    { "get_client_verify", function() return tls.get_client_verify() end },
    { "set_client_verify", function() return tls.set_client_verify("SUCCESS") end },
}

-- Record only the first call per (phase, function): body_filter runs more than once.
function _M.try_all()
    local phase = ngx.get_phase()
    for _, entry in ipairs(CALLS) do
        local name, call = entry[1], entry[2]
        local key = phase .. "|" .. name
        if not H.kept("phase", key) then
            local ok, value, err = pcall(call)
            if ok and value == nil and err == nil and name == "set_client_verify" then
                value = "ok"  -- set_client_verify returns nothing
            end
            H.keep("phase", key, describe(ok, value, err))
        end
    end
end

function _M.dump_phases()
    H.say_kept("phase")
end

return _M
