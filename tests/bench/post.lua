-- POST a new basket: one customer's token, a fresh single-use reCAPTCHA token each time.
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")
local authorization = "Bearer " .. os.getenv("BENCH_TOKEN")
local body = string.format('{"subscriptionId": "%s"}', os.getenv("BENCH_SUBSCRIPTION"))

request = function()
  if bench.probe() then return bench.throwaway() end
  local id = bench.send()
  local headers = {
    ["Authorization"] = authorization,
    ["Content-Type"] = "application/json",
    ["X-Request-ID"] = id,
    ["X-Recaptcha-Token"] = "pass-" .. id,
  }
  return wrk.format("POST", nil, headers, body)
end
