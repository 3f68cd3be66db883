-- PUT adding an offer: every request changes its basket (each basket alternates between
-- two offers, and adding one replaces the other, so every PUT needs a quote), with a
-- fresh reCAPTCHA token each time, and no two requests in flight on one basket.
--
-- Each thread owns an equal share of BENCH_COOKIES (give it at least twice as many
-- baskets as connections) and keeps the idle ones in a queue: a request takes the basket
-- idle longest and tags itself with an X-Request-ID, which the checkout echoes; its
-- answer puts that basket back. A basket moves on to the other offer only after a 2xx:
-- a refused change (a 503) left it as it was. If no basket is idle (answers lost to
-- socket errors) the oldest unanswered one is taken again and counted as `reused`.
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")

local cookies = {}
for cookie in string.gmatch(os.getenv("BENCH_COOKIES"), "[^|]+") do
  table.insert(cookies, cookie)
end
local offers = {"OFFER-SPORTS", "OFFER-KIDS"}
local authorization = "Bearer " .. os.getenv("BENCH_TOKEN")
local idle = bench.queue()     -- idle baskets, the longest idle first
local in_flight = {}            -- request id -> {basket, sequence}
local next_offer = {}           -- basket -> index into offers
local sent = 0

init = function(args)
  local own = math.floor(#cookies / tonumber(os.getenv("BENCH_THREADS")))
  for basket = (thread_id - 1) * own + 1, thread_id * own do
    bench.push(idle, basket)
    next_offer[basket] = 1
  end
end

local function take_basket()
  local basket = bench.pop(idle)
  if basket ~= nil then return basket end
  local oldest_id, oldest
  for id, entry in pairs(in_flight) do
    if oldest == nil or entry[2] < oldest[2] then oldest_id, oldest = id, entry end
  end
  in_flight[oldest_id] = nil
  bench_reused = bench_reused + 1
  return oldest[1]
end

request = function()
  if bench.probe() then return bench.throwaway() end
  local basket = take_basket()
  local id = bench.send_id()
  sent = sent + 1
  in_flight[id] = {basket, sent}
  local headers = {
    ["Authorization"] = authorization,
    ["Cookie"] = cookies[basket],
    ["Content-Type"] = "application/json",
    ["X-Request-ID"] = id,
    ["X-Recaptcha-Token"] = "pass-" .. id,
  }
  local body = '{"addOffers": ["' .. offers[next_offer[basket]] .. '"]}'
  return wrk.format("PUT", "/api/v1/checkout/basket", headers, body)
end

response = function(status, headers, body)
  local id = bench.response(status, headers)
  local entry = id and in_flight[id]
  if not entry then return end
  in_flight[id] = nil
  local basket = entry[1]
  if status >= 200 and status < 300 then next_offer[basket] = 3 - next_offer[basket] end
  bench.push(idle, basket)
end
