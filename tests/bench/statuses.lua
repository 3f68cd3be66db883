-- Shared by the bench scripts (loaded with dofile). Tags each request with an X-Request-ID,
-- which the checkout echoes, so that the answer finds its request (and the basket or slot
-- it was sent on) whichever connection it comes back on; counts answers by kind; and when
-- wrk is done prints, for tests/bench/wrk.py:
--   bench-statuses ok=<2xx> retry503=<503 with Retry-After> other=<n> reused=<n> unmatched=<n>
--   bench-unanswered <ms,…>   how long each request still unanswered had waited
--   bench-latency <q:µs,…>    wrk's latency percentiles of the answered requests
-- A 503 without Retry-After is "other": the client is not told when to come back. `reused`:
-- requests sent on a basket whose last request never answered (put.lua). `unmatched`:
-- answers without our id; each retires the oldest request waiting (the waits stay lower
-- bounds).
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
]]
local timespec = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, timespec)  -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local M = {}
local threads = {}
local keys = {}  -- request id -> what the script sent it on (a basket, a slot)
local counter = 0
local probed = false

-- Globals, so that done() can read each thread's with thread:get.
bench_ok, bench_retry503, bench_other, bench_reused, bench_unmatched = 0, 0, 0, 0, 0
bench_waiting = {}  -- request id -> when it was sent (ms)
thread_id = 0

function M.setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- A header by name, whatever its case.
function M.header(headers, name)
  local wanted = string.lower(name)
  for key, value in pairs(headers) do
    if string.lower(key) == wanted then return value end
  end
  return nil
end

-- True for wrk's trial call of request(), made once in the first thread's state before
-- the run and never sent: answer it with M.throwaway(), so that no basket is spent on it.
function M.probe()
  if probed or thread_id ~= 1 then return false end
  probed = true
  return true
end

function M.throwaway()
  return wrk.format("GET", "/healthz")
end

-- A new request on `key`, noted as sent now: its id, unique per run, for its X-Request-ID
-- and a single-use reCAPTCHA token.
function M.send(key)
  counter = counter + 1
  local id = os.getenv("BENCH_RUN") .. "-" .. thread_id .. "-" .. counter
  bench_waiting[id] = now_ms()
  keys[id] = key
  return id
end

-- The oldest request still waiting, retired: its key.
function M.retire_oldest()
  local oldest_id
  for id, sent in pairs(bench_waiting) do
    if oldest_id == nil or sent < bench_waiting[oldest_id] then oldest_id = id end
  end
  if oldest_id == nil then return nil end
  local key = keys[oldest_id]
  bench_waiting[oldest_id], keys[oldest_id] = nil, nil
  return key
end

-- Count an answer by kind and retire its request: its key, or nil if it carried no id.
function M.response(status, headers)
  if status >= 200 and status < 300 then
    bench_ok = bench_ok + 1
  elseif status == 503 and M.header(headers, "Retry-After") ~= nil then
    bench_retry503 = bench_retry503 + 1
  else
    bench_other = bench_other + 1
  end
  local id = M.header(headers, "X-Request-ID")
  if id == nil or bench_waiting[id] == nil then
    bench_unmatched = bench_unmatched + 1
    M.retire_oldest()
    return nil
  end
  local key = keys[id]
  bench_waiting[id], keys[id] = nil, nil
  return key
end

-- A first-in first-out queue with explicit ends (# is unreliable once the front is gone).
function M.queue()
  return {first = 1, last = 0}
end

function M.push(queue, item)
  queue.last = queue.last + 1
  queue[queue.last] = item
end

function M.pop(queue)
  if queue.first > queue.last then return nil end
  local item = queue[queue.first]
  queue[queue.first] = nil
  queue.first = queue.first + 1
  return item
end

function M.done(summary, latency, requests)
  local ended = now_ms()
  local sums = {ok = 0, retry503 = 0, other = 0, reused = 0, unmatched = 0}
  local waits = {}
  for _, thread in ipairs(threads) do
    for name in pairs(sums) do sums[name] = sums[name] + thread:get("bench_" .. name) end
    for _, sent in pairs(thread:get("bench_waiting")) do
      table.insert(waits, string.format("%.1f", ended - sent))
    end
  end
  io.write(string.format(
    "bench-statuses ok=%d retry503=%d other=%d reused=%d unmatched=%d\n",
    sums.ok, sums.retry503, sums.other, sums.reused, sums.unmatched))
  io.write("bench-unanswered " .. table.concat(waits, ",") .. "\n")
  local points = {}
  local q = 0
  while q < 100 do  -- finer towards the tail
    table.insert(points, string.format("%g:%d", q, latency:percentile(q)))
    q = q + (q < 90 and 1 or q < 99 and 0.1 or 0.01)
  end
  table.insert(points, string.format("100:%d", latency.max))
  io.write("bench-latency " .. table.concat(points, ",") .. "\n")
end

setup = M.setup
response = function(status, headers, body) M.response(status, headers) end
done = M.done
return M
