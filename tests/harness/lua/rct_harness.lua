-- The nginx side of the shared test harness: what every suite's Lua helper does the same
-- way (tests/nginx/lua/rct_test.lua, tests/reliability/lua/*.lua, tests/soak/lua/soak.lua,
-- tests/operations/lua/*.lua, tests/http3/lua/h3_test.lua).
--
-- tests/harness/nginx.py puts this directory on every test nginx's lua_package_path.
-- Reports are "key=value" lines ended by a line "end", which tests/harness/nginx.py parses
-- (parse_report, parse_reports). Nothing here loads resty.client_tls: a suite passes its
-- own PDK table, so `lua_code_cache off` and the stock controls (no module at all) work too.

local ngx_ssl = require "ngx.ssl"

local _M = {}

-- The whole file, or an error naming it.
function _M.read_file(path)
    local f = assert(io.open(path, "rb"))
    local data = f:read("*a")
    f:close()
    return data
end

-- A STACK_OF(X509)* cdata of the certificates in the PEM files `paths`, in that order;
-- nil for nil (no CA list). Parsed afresh on every call: the caller owns the stack.
function _M.parse_ca(paths)
    if not paths then
        return nil
    end
    local pems = {}
    for i, path in ipairs(paths) do
        pems[i] = _M.read_file(path)
    end
    return assert(ngx_ssl.parse_pem_cert(table.concat(pems)))
end

local ca_cache = {}

-- parse_ca, parsed once per worker and kept, as Kong keeps its CA lists.
function _M.cached_ca(paths)
    if not paths then
        return nil
    end
    local key = table.concat(paths, "|")
    local ca = ca_cache[key]
    if not ca then
        ca = _M.parse_ca(paths)
        ca_cache[key] = ca
    end
    return ca
end

-- Certificate phase: request_client_certificate(ca, depth) through `tls` (a PDK table), then
-- disable_session_reuse() when `disable` is true. A failure is logged at [error] (the suites
-- fail on unexpected [error] lines) and answered false.
function _M.ask(tls, ca, depth, disable)
    local ok, err = tls.request_client_certificate(ca, depth)
    if not ok then
        ngx.log(ngx.ERR, "request_client_certificate failed: ", err)
        return false
    end
    if disable then
        ok, err = tls.disable_session_reuse()
        if not ok then
            ngx.log(ngx.ERR, "disable_session_reuse failed: ", err)
            return false
        end
    end
    return true
end

-- A raised error's message without its "file:line: " prefix.
function _M.message(err)
    return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

-- A text/plain response with its Content-Length (no chunked encoding to parse).
function _M.respond(body)
    ngx.header["Content-Type"] = "text/plain"
    ngx.header["Content-Length"] = #body
    ngx.print(body)
end

-- The report `lines` ("key=value" strings), ended by "end", as the response.
function _M.report(lines)
    local out = {}
    for i, line in ipairs(lines) do
        out[i] = line
    end
    out[#out + 1] = "end"
    _M.respond(table.concat(out, "\n") .. "\n")
end

-- Outcomes kept across requests in lua_shared_dict rct (declared by the harness) under
-- "<prefix>:<name>", and said back as "name=value" lines (newlines escaped), sorted.
function _M.keep(prefix, name, value)
    local ok, err = ngx.shared.rct:set(prefix .. ":" .. name, value)
    if not ok then
        ngx.log(ngx.ERR, "shared dict set failed: ", err)
    end
end

function _M.kept(prefix, name)
    return ngx.shared.rct:get(prefix .. ":" .. name)
end

function _M.say_kept(prefix)
    local dict = ngx.shared.rct
    local keys = dict:get_keys(0)
    table.sort(keys)
    local start = prefix .. ":"
    for _, key in ipairs(keys) do
        if key:sub(1, #start) == start then
            ngx.say(key:sub(#start + 1), "=", (tostring(dict:get(key)):gsub("\n", "\\n")))
        end
    end
end

return _M
