-- A full create -> add -> complete cycle per connection (run with as many threads as
-- connections, so each Lua state drives one connection). Customer per thread: load-NN.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("customer", threads)
  thread:set("thread_id", threads)
end

local tokens = {}
for token in string.gmatch(os.getenv("BENCH_TOKENS"), "[^|]+") do
  table.insert(tokens, token)
end
local step, cookie, counter, failures = 0, nil, 0, 0
-- Unique per run and per thread: the sandbox verifies each reCAPTCHA token once only.
-- (init runs in the thread after setup has set thread_id.)
local prefix
init = function(args)
  prefix = os.getenv("BENCH_RUN") .. "-" .. tostring(thread_id)
end

local function headers(with_cookie)
  counter = counter + 1
  local h = {
    ["Authorization"] = "Bearer " .. tokens[customer],
    ["Content-Type"] = "application/json",
    ["X-Recaptcha-Token"] = "pass-" .. prefix .. "-" .. counter,
  }
  if with_cookie then h["Cookie"] = cookie end
  return h
end

request = function()
  local path = "/api/v1/checkout/basket"
  if step == 0 then
    local body = string.format('{"subscriptionId": "SUB-L%02d"}', customer)
    return wrk.format("POST", path, headers(false), body)
  elseif step == 1 then
    return wrk.format("PUT", path, headers(true), '{"addOffers": ["OFFER-KIDS"]}')
  end
  return wrk.format("PUT", path, headers(true), '{"complete": true}')
end

response = function(status, headers, body)
  if status >= 300 then
    failures = failures + 1
    step = 0
    return
  end
  if step == 0 then
    local set = headers["Set-Cookie"] or ""
    cookie = "landing_state=" .. (string.match(set, "landing_state=([^;]+)") or "")
  end
  step = (step + 1) % 3
end
