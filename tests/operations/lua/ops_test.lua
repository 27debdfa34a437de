-- nginx side of tests/operations: what an operator's configuration does, seen per worker.
--
-- init() runs in the master (init_by_lua, again at every reload): it loads resty.client_tls
-- there, as Kong does, and reads and parses every CA file, so a reload picks up an edited
-- file and a file that cannot be read stops nginx at startup (or refuses the reload).
-- init(files, "stock") is the control without the module: lua-resty-core's
-- ngx.ssl.verify_client and nginx's $ssl_client_verify, for comparing memory figures.
-- init(files, "module", { ca = bytes, chain = bytes }) also sets the module's cache limits
-- (process-wide, inherited by every worker).
-- Each handshake asks for a client certificate with the CA list of its server{} ("by_sni":
-- the list its SNI names, k7.many.test -> k7); each request answers with what the module
-- sees, as "key=value" lines ended by "end" (tests/harness/nginx.py parse_reports).

local ngx_ssl = require "ngx.ssl"
local H = require "rct_harness"

local tls         -- resty.client_tls PDK table; nil in the stock control
local lists = {}  -- name -> { ca = STACK_OF(X509)* cdata, gen = label from the file }

local _M = {}

-- A CA file as a parsed stack and its "# generation <label>" line (PEM readers skip text
-- outside the BEGIN/END lines). Every failure is an error naming the file.
local function read_ca_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        error("cannot read CA file " .. tostring(err), 0)  -- err starts with the path
    end
    local pem, rerr = f:read("*a")
    f:close()
    if not pem then
        error("cannot read CA file " .. path .. ": " .. tostring(rerr), 0)
    end
    local ca, perr = ngx_ssl.parse_pem_cert(pem)
    if not ca then
        error("CA file " .. path .. " holds no usable PEM certificate: " .. tostring(perr), 0)
    end
    return ca, pem:match("# generation (%S+)") or "-"
end

-- files: { [list name] = path }
function _M.init(files, variant, cache_limits)
    if variant ~= "stock" then
        local client_tls = require "resty.client_tls"
        for which, bytes in pairs(cache_limits or {}) do
            client_tls.cache_limit(which, bytes)
        end
        tls = client_tls.new()
    end
    for name, path in pairs(files) do
        local ca, gen = read_ca_file(path)
        lists[name] = { ca = ca, gen = gen }
    end
end

local function list_name(list, sni)
    if list ~= "by_sni" then
        return list
    end
    return sni and sni:match("^(k%d+)%.")
end

function _M.cert_phase(list)
    local name = list_name(list, ngx_ssl.server_name())
    local l = lists[name]
    if not l then
        ngx.log(ngx.ERR, "no CA list for ", tostring(name))
        return
    end
    if tls then
        H.ask(tls, l.ca)
        return
    end
    local ok, err = ngx_ssl.verify_client(l.ca)
    if not ok then
        ngx.log(ngx.ERR, "ngx.ssl.verify_client failed: ", err)
    end
end

-- verify and chain as the client checks them: the chain as the SHA-1 of its PEM, "nil"
-- without a client certificate; and the entries of this worker's CA-list and chain caches.
-- The stock control sees only nginx's leaf: "leaf-only".
local function observed()
    if not tls then
        return ngx.var.ssl_client_verify, ngx.var.ssl_client_raw_cert and "leaf-only" or "nil", "-"
    end
    local client_tls = require "resty.client_tls"
    local _, ca_entries = client_tls.cache_usage("ca")
    local _, chain_entries = client_tls.cache_usage("chain")
    local chain, cerr = tls.get_full_client_certificate_chain()
    local verify, verr = tls.get_client_verify()
    return verify or ("err:" .. tostring(verr)),
           chain and ngx.encode_base64(ngx.sha1_bin(chain)) or (cerr and ("err:" .. cerr) or "nil"),
           ca_entries .. "/" .. chain_entries
end

function _M.content(list)
    local name = list_name(list, ngx.var.ssl_server_name)
    local verify, chain, cached = observed()
    H.report({
        "worker=" .. ngx.worker.pid(),
        "server=" .. tostring(ngx.var.ops_server),
        "list=" .. tostring(name),
        "gen=" .. (lists[name] and lists[name].gen or "?"),
        "verify=" .. verify,
        "chain=" .. chain,
        "cached=" .. cached,
    })
end

return _M
