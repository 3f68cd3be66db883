-- Shared by the bench scripts (loaded with dofile): numbers each thread, tags each request
-- with an X-Request-ID (which the checkout echoes) and notes when it was sent, counts the
-- answers by kind, and when wrk is done prints, for tests/bench/wrk.py:
--   bench-statuses ok=<2xx> retry503=<503 with Retry-After> other=<anything else>
--                  reused=<n> unmatched=<n>
--   bench-unanswered <ms,ms,…>   how long each request still unanswered had waited
--   bench-latency <q:µs,q:µs,…>  wrk's latency percentiles of the answered requests
-- A 503 without Retry-After counts as "other": the client is not told when to come back.
-- Requests still waiting when the run ends are what wrk leaves out of its figures: with a
-- run of a few seconds and a queue longer than that, its percentiles are of the fast few.
-- `reused`: requests a keyed script (put.lua) sent on a basket whose last request never
-- answered. `unmatched`: answers without our X-Request-ID (each retires the oldest
-- request still waiting, so the waits printed stay lower bounds).
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local M = {}
local threads = {}

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
  local value = headers[name]
  if value ~= nil then return value end
  local wanted = string.lower(name)
  for key, found in pairs(headers) do
    if string.lower(key) == wanted then return found end
  end
  return nil
end

-- True for wrk's own trial call of request(): before the threads start, wrk calls it once
-- in the first thread's state to see how many requests it returns, and never sends the
-- result. A script answers it with a throwaway request, so that no basket, slot or
-- waiting entry is spent on it.
local probed = false
function M.probe()
  if probed or thread_id ~= 1 then return false end
  probed = true
  return true
end

function M.throwaway()
  return wrk.format("GET", "/healthz")
end

-- A new request's id, unique per run, thread and request, noted as sent now: for its
-- X-Request-ID, and for a single-use reCAPTCHA token.
local counter = 0
function M.send_id()
  counter = counter + 1
  local id = os.getenv("BENCH_RUN") .. "-" .. thread_id .. "-" .. counter
  bench_waiting[id] = now_ms()
  return id
end

-- Count an answer by kind and retire its request; its id, or nil if it carried none.
function M.response(status, headers)
  if status >= 200 and status < 300 then
    bench_ok = bench_ok + 1
  elseif status == 503 and M.header(headers, "Retry-After") ~= nil then
    bench_retry503 = bench_retry503 + 1
  else
    bench_other = bench_other + 1
  end
  local id = M.header(headers, "X-Request-ID")
  if id ~= nil and bench_waiting[id] ~= nil then
    bench_waiting[id] = nil
    return id
  end
  bench_unmatched = bench_unmatched + 1
  local oldest_id, oldest
  for waiting_id, sent in pairs(bench_waiting) do
    if oldest == nil or sent < oldest then oldest_id, oldest = waiting_id, sent end
  end
  if oldest_id ~= nil then bench_waiting[oldest_id] = nil end
  return nil
end

-- A first-in first-out queue with explicit ends (# is unreliable once the front is gone).
function M.queue()
  return {first = 1, last = 0, items = {}}
end

function M.push(queue, item)
  queue.last = queue.last + 1
  queue.items[queue.last] = item
end

function M.pop(queue)
  if queue.first > queue.last then return nil end
  local item = queue.items[queue.first]
  queue.items[queue.first] = nil
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
  while q < 100 do
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
