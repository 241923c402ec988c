-- Lodestone's Lua sandbox and `redis` API, run once per Lua state.
-- Arguments: raw (Rust primitives), dbg (the debug library, kept private),
-- mode ("eval" or "function").
local raw, dbg, mode = ...
local G = _G
local orig_setmetatable, orig_getmetatable = setmetatable, getmetatable
local orig_rawset, orig_pcall, orig_error = rawset, pcall, error
local orig_loadstring, orig_load, orig_type = loadstring, load, type
local orig_tostring, orig_select, orig_unpack = tostring, select, unpack

-- Tables scripts may not modify (Redis protects every table reachable
-- from the globals).
local readonly = orig_setmetatable({}, {__mode = 'k'})
local function ro_error() orig_error("Attempt to modify a readonly table", 2) end

local function protect(t)
  local shown = {}
  orig_setmetatable(shown, {__newindex = ro_error, __metatable = false})
  readonly[shown] = true
  local p = {}
  orig_setmetatable(p, {__index = t, __newindex = ro_error, __metatable = shown})
  readonly[p] = true
  return p
end

local function missing_global(_, k)
  orig_error("Script attempted to access nonexistent global variable '" .. orig_tostring(k) .. "'", 0)
end

-- A table of globals whose missing names raise Redis's error.
local function globals_table(base)
  local real = {}
  for k, v in pairs(base) do real[k] = v end
  orig_setmetatable(real, {__index = missing_global})
  return real
end

local real = globals_table(G)
for _, name in ipairs({'print', 'dofile', 'loadfile', 'debug', 'module', 'require',
                       'package', 'os', 'io', 'newproxy', 'gcinfo'}) do
  real[name] = nil
end

real.setmetatable = function(t, mt)
  if readonly[t] then orig_error("Attempt to modify a readonly table", 2) end
  return orig_setmetatable(t, mt)
end
real.rawset = function(t, k, v)
  if readonly[t] then orig_error("Attempt to modify a readonly table", 2) end
  return orig_rawset(t, k, v)
end
-- No precompiled chunks (bytecode can break out of the sandbox).
real.loadstring = function(s, name)
  if orig_type(s) == 'string' and s:byte(1) == 27 then
    return nil, "loading binary chunks is not allowed"
  end
  return orig_loadstring(s, name)
end
real.load = function(f, name)
  local parts = {}
  while true do
    local p = f()
    if p == nil or p == '' then break end
    parts[#parts + 1] = p
  end
  return real.loadstring(table.concat(parts), name)
end

-- Redis's pcall: an error table {err=...} is returned as its message.
local function pack(...) return {n = orig_select('#', ...), ...} end
real.pcall = function(f, ...)
  local r = pack(orig_pcall(f, ...))
  if not r[1] then
    local e = r[2]
    if orig_type(e) == 'table' and orig_type(e.err) == 'string' then
      return false, e.err
    end
  end
  return orig_unpack(r, 1, r.n)
end

local math2 = {}
for k, v in pairs(math) do math2[k] = v end
math2.random = raw.random
math2.randomseed = raw.randomseed

local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end

local redis = {}
redis.call = raw.call
redis.pcall = raw.pcall
redis.error_reply = raw.error_reply
redis.status_reply = function(...)
  if orig_select('#', ...) ~= 1 or orig_type((...)) ~= 'string' then
    return raw.error_reply("-ERR wrong number or type of arguments")
  end
  return {ok = (...)}
end
redis.sha1hex = raw.sha1hex
redis.log = raw.log
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.setresp = raw.setresp
redis.set_repl = raw.set_repl
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = raw.acl_check_cmd
redis.REDIS_VERSION = raw.version
redis.REDIS_VERSION_NUM = raw.version_num

local function protect_libs(t)
  for _, name in ipairs({'string', 'table', 'coroutine', 'cjson', 'cmsgpack', 'bit', 'struct'}) do
    local v = rawget(t, name)
    if orig_type(v) == 'table' then t[name] = protect(v) end
  end
end

real.math = protect(math2)
real.redis = protect(redis)
protect_libs(real)

local gmt
local function finish_globals(t)
  local proxy = {}
  local shown = {}
  orig_setmetatable(shown, {__newindex = ro_error, __index = missing_global, __metatable = false})
  readonly[shown] = true
  gmt = {__index = t, __newindex = ro_error, __metatable = shown}
  orig_setmetatable(proxy, gmt)
  readonly[proxy] = true
  t._G = proxy
  return proxy
end

-- Error handler: Redis's {err=..., source=..., line=...} error tables,
-- located at the innermost frame of user code.
local function handler(err)
  local lvl, info = 2, nil
  while true do
    info = dbg.getinfo(lvl, 'Sl')
    if not info then break end
    if info.what ~= 'C' and info.source ~= '=lodestone' then break end
    lvl = lvl + 1
  end
  if orig_type(err) ~= 'table' then
    err = {err = 'ERR ' .. orig_tostring(err)}
  end
  if info then
    err.source = info.source
    err.line = info.currentline
  end
  return err
end

local function run(f, a, b)
  return xpcall(function() return f(a, b) end, handler)
end

local api = {run = run, handler = handler, real = real, protect = protect}

api.globals = finish_globals(real)

if mode == 'function' then
  -- While FUNCTION LOAD runs the library code, the globals offer only
  -- `redis` with register_function, log and the version fields.
  local load_redis = {
    register_function = raw.register_function,
    log = redis.log,
    LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
    REDIS_VERSION = raw.version, REDIS_VERSION_NUM = raw.version_num,
  }
  orig_setmetatable(load_redis, {__index = missing_global})
  -- Only `redis` exists while a library loads (Redis's LIBRARY_API).
  local load_real = {redis = protect(load_redis)}
  orig_setmetatable(load_real, {__index = missing_global})
  api.load = function(code)
    local f, e = orig_loadstring(code, '@user_function')
    if not f then return false, e end
    gmt.__index = load_real
    local ok, err = xpcall(f, handler)
    gmt.__index = real
    return ok, err
  end
end

return api
