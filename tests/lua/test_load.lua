-- Loading resty.client_tls: `require` raises the library's own message when the library
-- refuses this process (its OpenSSL-copy check), and refuses a library that lacks the
-- check; the module's _VERSION is the library's. The refusing libraries are stand-ins
-- (fake_lib.c, built by run.sh into $RCT_FAKE_LIBS/{refuse,lacking}/): the real check is
-- tested by tests/openssl_guard.rs and tests/reliability.
local H = require "helper"
local ffi = require "ffi"
local test, eq, ok = H.test, H.eq, H.ok

local fakes = assert(os.getenv("RCT_FAKE_LIBS"), "RCT_FAKE_LIBS unset")

-- require "resty.client_tls" finding the library along `cpath` only; a failed load is
-- forgotten, whatever the module leaves in package.loaded.
local function require_with(cpath)
  local saved = package.cpath
  package.cpath = cpath
  package.loaded["resty.client_tls"] = nil
  local loaded, mod = pcall(require, "resty.client_tls")
  package.cpath = saved
  if not loaded then
    package.loaded["resty.client_tls"] = nil
  end
  return loaded, mod
end

test("a library that refuses this process: require raises its message, every time", function()
  for i = 1, 2 do
    local loaded, err = require_with(fakes .. "/refuse/lib?.so")
    eq(loaded, false, "require " .. i .. " succeeded")
    eq(err, "resty.client_tls: stand-in: refusing to mix OpenSSL copies (test)", "message " .. i)
  end
end)

test("a library without resty_client_tls_openssl_check is refused, by name", function()
  local loaded, err = require_with(fakes .. "/lacking/lib?.so")
  eq(loaded, false, "require succeeded")
  ok(tostring(err):find("resty.client_tls: the library lacks resty_client_tls_openssl_check", 1, true),
     "message: " .. tostring(err))
end)

test("the real library loads after them; _VERSION is the library's version", function()
  local loaded, tls = require_with(H.lib_dir .. "/lib?.so")
  ok(loaded, "require: " .. tostring(tls))
  ok(type(tls._VERSION) == "string" and tls._VERSION:find("^%d+%.%d+%.%d+"), "_VERSION " .. tostring(tls._VERSION))
  eq(tls._VERSION, ffi.string(H.lib_global.resty_client_tls_version()), "resty_client_tls_version()")
end)

H.done()
