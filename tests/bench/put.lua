-- PUT adding an offer: alternate two offers so every request changes the basket (and so
-- needs a quote), spread over several baskets, with a fresh reCAPTCHA token each time.
-- Each thread has baskets of its own: two threads on one basket would make some PUTs
-- no-ops (the other thread already chose that offer) and the scenario cheaper than it is.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

local cookies = {}
for cookie in string.gmatch(os.getenv("BENCH_COOKIES"), "[^|]+") do
  table.insert(cookies, cookie)
end
local offers = {"OFFER-SPORTS", "OFFER-KIDS"}
local counter = 0
-- Unique per run and per thread: the sandbox verifies each reCAPTCHA token once only.
-- (init runs in the thread after setup has set thread_id.)
local prefix, first, own
init = function(args)
  prefix = os.getenv("BENCH_RUN") .. "-" .. tostring(thread_id)
  own = math.floor(#cookies / tonumber(os.getenv("BENCH_THREADS")))
  first = (thread_id - 1) * own
end

request = function()
  counter = counter + 1
  local headers = {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Cookie"] = cookies[first + (counter % own) + 1],
    ["Content-Type"] = "application/json",
    ["X-Recaptcha-Token"] = "pass-" .. prefix .. "-" .. counter,
  }
  local offer = offers[(math.floor(counter / own) % 2) + 1]
  return wrk.format("PUT", "/api/v1/checkout/basket", headers,
                    '{"addOffers": ["' .. offer .. '"]}')
end
