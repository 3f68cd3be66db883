-- A full create -> add -> complete cycle, one in flight per connection, with as few wrk
-- threads as you like: a cycle's state lives in a slot, and a request carries its slot's
-- key as X-Request-ID, which the checkout echoes, so its answer finds the slot again
-- whichever of the thread's connections it came back on. (wrk gives one Lua state per
-- thread, not per connection; this replaces running one thread per connection.)
--
-- A request takes an idle slot, or opens a new one if none is idle; its answer moves the
-- slot on a step (back to "create" after a refusal) and makes it idle again. So a thread
-- holds about as many slots as it has connections. Slot n drives customer load-NN with
-- NN = n modulo the tokens given (the load customers' subscriptions are never locked).
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")
local path = "/api/v1/checkout/basket"

local tokens = {}
for token in string.gmatch(os.getenv("BENCH_TOKENS"), "[^|]+") do
  table.insert(tokens, token)
end
local per_thread
local opened = 0
local idle = bench.queue()     -- idle slots, the longest idle first
local in_flight = {}            -- request id -> slot

init = function(args)
  per_thread = math.ceil(tonumber(os.getenv("BENCH_CONNECTIONS"))
                         / tonumber(os.getenv("BENCH_THREADS")))
end

local function take_slot()
  local slot = bench.pop(idle)
  if slot ~= nil then return slot end
  opened = opened + 1
  local n = (thread_id - 1) * per_thread + opened
  return {step = 0, customer = (n - 1) % #tokens + 1, cookie = nil}
end

request = function()
  if bench.probe() then return bench.throwaway() end
  local slot = take_slot()
  local id = bench.send_id()
  in_flight[id] = slot
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[slot.customer],
    ["Content-Type"] = "application/json",
    ["X-Request-ID"] = id,
    ["X-Recaptcha-Token"] = "pass-" .. id,
  }
  if slot.step == 0 then
    local body = string.format('{"subscriptionId": "SUB-L%02d"}', slot.customer)
    return wrk.format("POST", path, headers, body)
  end
  headers["Cookie"] = slot.cookie
  if slot.step == 1 then
    return wrk.format("PUT", path, headers, '{"addOffers": ["OFFER-KIDS"]}')
  end
  return wrk.format("PUT", path, headers, '{"complete": true}')
end

response = function(status, headers, body)
  local id = bench.response(status, headers)
  local slot = id and in_flight[id]
  if not slot then return end  -- an answer without our id: its slot stays out of use
  in_flight[id] = nil
  if status >= 300 then
    slot.step = 0
  else
    if slot.step == 0 then
      local set = bench.header(headers, "Set-Cookie") or ""
      slot.cookie = "landing_state=" .. (string.match(set, "landing_state=([^;]+)") or "")
    end
    slot.step = (slot.step + 1) % 3
  end
  bench.push(idle, slot)
end
