-- PUT adding an offer: every request changes its basket (each basket alternates between
-- two offers, and adding one replaces the other, so every PUT needs a quote), with a
-- fresh reCAPTCHA token each time, and no two requests in flight on one basket.
--
-- Each thread owns an equal share of BENCH_COOKIES (give it at least twice as many
-- baskets as connections) and takes the basket idle longest; the answer puts it back,
-- moved on to the other offer only after a 2xx (a refused change left it as it was). If
-- none is idle (answers lost to socket errors), the oldest unanswered one is taken again.
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")

local cookies = {}
for cookie in string.gmatch(os.getenv("BENCH_COOKIES"), "[^|]+") do
  table.insert(cookies, cookie)
end
local offers = {"OFFER-SPORTS", "OFFER-KIDS"}
local authorization = "Bearer " .. os.getenv("BENCH_TOKEN")
local idle = bench.queue()
local next_offer = {}  -- basket -> index into offers

init = function(args)
  local own = math.floor(#cookies / tonumber(os.getenv("BENCH_THREADS")))
  for basket = (thread_id - 1) * own + 1, thread_id * own do
    bench.push(idle, basket)
    next_offer[basket] = 1
  end
end

request = function()
  if bench.probe() then return bench.throwaway() end
  local basket = bench.pop(idle)
  if basket == nil then
    basket = bench.retire_oldest()
    bench_reused = bench_reused + 1
  end
  local id = bench.send(basket)
  local headers = {
    ["Authorization"] = authorization,
    ["Cookie"] = cookies[basket],
    ["Content-Type"] = "application/json",
    ["X-Request-ID"] = id,
    ["X-Recaptcha-Token"] = "pass-" .. id,
  }
  local body = '{"addOffers": ["' .. offers[next_offer[basket]] .. '"]}'
  return wrk.format("PUT", nil, headers, body)
end

response = function(status, headers, body)
  local basket = bench.response(status, headers)
  if basket == nil then return end
  if status >= 200 and status < 300 then next_offer[basket] = 3 - next_offer[basket] end
  bench.push(idle, basket)
end
