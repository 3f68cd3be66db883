-- A full create -> add -> complete cycle, one in flight per connection, with as few wrk
-- threads as you like: a cycle's state lives in a slot that its request is sent on, and
-- the answer (found by its X-Request-ID, statuses.lua) moves the slot on a step, back to
-- "create" after a refusal, and makes it idle again. A request takes an idle slot or opens
-- a new one, so a thread holds about as many slots as connections. Slot n drives customer
-- load-NN, NN = n modulo the tokens given (their subscriptions never lock).
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")

local tokens = {}
for token in string.gmatch(os.getenv("BENCH_TOKENS"), "[^|]+") do
  table.insert(tokens, token)
end
local per_thread
local opened = 0
local idle = bench.queue()

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
  local id = bench.send(slot)
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[slot.customer],
    ["Content-Type"] = "application/json",
    ["X-Request-ID"] = id,
    ["X-Recaptcha-Token"] = "pass-" .. id,
  }
  if slot.step == 0 then
    local body = string.format('{"subscriptionId": "SUB-L%02d"}', slot.customer)
    return wrk.format("POST", nil, headers, body)
  end
  headers["Cookie"] = slot.cookie
  if slot.step == 1 then
    return wrk.format("PUT", nil, headers, '{"addOffers": ["OFFER-KIDS"]}')
  end
  return wrk.format("PUT", nil, headers, '{"complete": true}')
end

response = function(status, headers, body)
  local slot = bench.response(status, headers)
  if slot == nil then return end  -- an answer without our id: its slot stays out of use
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
