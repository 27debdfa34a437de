-- The CA-list cache's byte limit bounds real memory: 1001 distinct lists (4 of 14 CAs
-- each) go through request_client_certificate on throwaway SSLs, their stacks dropped
-- by the caller so the cache holds the only reference to every certificate (the worst
-- case). The worker's RssAnon growth must stay under what the cache counts, and what
-- it counts under its limit.
local H = require "helper"
local ffi = require "ffi"
local test, ok = H.test, H.ok

local tls = require "resty.client_tls"
ffi.cdef[[ void SSL_set_accept_state(void *s); ]]

local function rss_kib()
  for l in io.lines("/proc/self/status") do
    local v = l:match("^RssAnon:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local d = H.tmpdir()
local pems = {}
for i = 1, 14 do
  H.sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout /dev/null"
       .. " -subj '/C=US/O=Tenant Organisation " .. i .. "/OU=Client Certificates/CN=Tenant CA " .. i
       .. "' -days 2 -out " .. d .. "/t" .. i .. ".pem 2>/dev/null")
  pems[i] = H.read(d .. "/t" .. i .. ".pem")
end
local lists = {}
for a = 1, 11 do for b = a + 1, 12 do for c = b + 1, 13 do for e = c + 1, 14 do
  lists[#lists + 1] = { pems[a], pems[b], pems[c], pems[e] }
end end end end

local ctx = H.libssl.SSL_CTX_new(H.libssl.TLS_server_method())
local function pass(list)
  local s = H.libssl.SSL_new(ctx)
  H.libssl.SSL_set_accept_state(s)
  assert(tls.ssl.request_client_certificate(s, H.x509_stack(list), 3))
  H.libssl.SSL_free(s)
end

test("1001 lists, certificates held by the cache alone: RssAnon growth <= the cache's count", function()
  local before = tls.cache_limit("ca", 1024 * 1024 * 1024)
  pass(lists[1]) -- warm OpenSSL's own one-time allocations
  collectgarbage(); collectgarbage()
  local r0 = rss_kib()
  for i = 2, #lists do
    pass(lists[i])
    if i % 64 == 0 then collectgarbage() end
  end
  collectgarbage(); collectgarbage()
  local grown = (rss_kib() - r0) * 1024
  local bytes, entries = tls.cache_usage("ca")
  ok(entries == #lists, "every list cached: " .. entries)
  ok(grown <= bytes, string.format("RssAnon grew %d bytes, the cache counts %d", grown, bytes))
  ok(grown >= bytes / 4, string.format("the count is not wildly off: grew %d, counted %d", grown, bytes))
  -- A limit of a tenth: the count stays under it, and lists still work.
  local tenth = math.floor(bytes / 10)
  tls.cache_limit("ca", tenth)
  for i = 1, #lists, 7 do
    pass(lists[i])
  end
  local b2, e2 = tls.cache_usage("ca")
  ok(b2 <= tenth and e2 < #lists / 5, string.format("%d bytes in %d entries, limit %d", b2, e2, tenth))
  tls.cache_limit("ca", before)
end)

H.done()
