-- Request handlers of the soak (tests/soak/soak.py): every resty.client_tls function on every
-- connection, with collectgarbage() pressure, counting what is seen per outcome.

local client_tls = require "resty.client_tls"
local ngx_ssl = require "ngx.ssl"
local H = require "rct_harness"

local tls = client_tls.new()
local _M = {}

local ca_pem            -- the CA list as PEM, read once per worker
local ca_cached         -- parsed once per worker (Kong's way)
local counts = {}
local n_requests = 0

local function bump(k)
    counts[k] = (counts[k] or 0) + 1
end

function _M.init(ca_path)
    ca_pem = H.read_file(ca_path)
end

-- Certificate phase. mode "cached": the parsed stack is kept; "fresh": parsed on every
-- handshake and dropped right away (the library must not keep it). Reuse is disabled on
-- every other connection.
function _M.cert_phase(mode, depth)
    local ca
    if mode == "fresh" then
        ca = assert(ngx_ssl.parse_pem_cert(ca_pem))
    else
        ca_cached = ca_cached or assert(ngx_ssl.parse_pem_cert(ca_pem))
        ca = ca_cached
    end
    H.ask(tls, ca, depth, math.random() < 0.5)
    -- Misuse in the right phase: must raise, never crash or leak.
    if math.random() < 0.1 then
        assert(not pcall(tls.request_client_certificate, "not a stack"))
        assert(not pcall(tls.get_full_client_certificate_chain))
    end
    if mode == "fresh" then
        ca = nil  -- luacheck: ignore
        collectgarbage("step", 100)
    end
end

local function read_all()
    local chain, err = tls.get_full_client_certificate_chain()
    if err then
        bump("chain_err:" .. err)
    end
    local verify, verr = tls.get_client_verify()
    if verr then
        bump("verify_err:" .. verr)
    end
    local info, ierr = tls.get_session_info()
    if ierr then
        bump("session_err:" .. ierr)
    end
    return chain, verify, info
end

function _M.access()
    local chain, verify, info = read_all()
    local ctx = ngx.ctx
    ctx.chain_len = chain and #chain or 0
    ctx.verify = verify
    ctx.resumed = info and info.resumed
    bump("resumed:" .. tostring(ctx.resumed))
    if ngx.var.arg_set then
        tls.set_client_verify("FAILED:soak override")
    end
    if math.random() < 0.05 then
        -- Misuse: wrong phase, bad arguments.
        assert(not pcall(tls.request_client_certificate))
        assert(not pcall(tls.disable_session_reuse))
        assert(not pcall(tls.set_client_verify, "bogus"))
    end
end

function _M.content()
    local chain, verify = read_all()
    n_requests = n_requests + 1
    if (chain and #chain or 0) ~= ngx.ctx.chain_len then
        bump("chain_changed")
    end
    bump("verify:" .. tostring(verify))
    -- GC pressure: a step every request, a full collection every 500.
    if n_requests % 500 == 0 then
        collectgarbage()
    else
        collectgarbage("step", 10)
    end
    H.report({ "verify=" .. tostring(verify), "chain=" .. (chain and #chain or 0),
               "resumed=" .. tostring(ngx.ctx.resumed) })
end

function _M.log()
    read_all()
end

-- Plain-HTTP port: the functions answer nil, err on a connection without TLS.
function _M.plain()
    local chain, err = tls.get_full_client_certificate_chain()
    local v, verr = tls.get_client_verify()
    local info, ierr = tls.get_session_info()
    if chain or v or info or not (err and verr and ierr) then
        bump("plain_unexpected")
    end
    collectgarbage("step", 10)
    H.respond("ok\n")
end

function _M.stats()
    collectgarbage()
    local out = { "lua_kb=" .. string.format("%.0f", collectgarbage("count")),
                  "requests=" .. n_requests }
    for k, v in pairs(counts) do
        out[#out + 1] = "count." .. k .. "=" .. v
    end
    table.sort(out)
    H.report(out)
end

return _M
