-- GET one page or resource again and again: the basket (a token and a landing cookie) or
-- the basket page (a signed-in customer's cookies, no token).
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")
local token = os.getenv("BENCH_TOKEN")
local cookie = os.getenv("BENCH_COOKIE")

request = function()
  if bench.probe() then return bench.throwaway() end
  local headers = {["Cookie"] = cookie, ["X-Request-ID"] = bench.send()}
  if token then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", nil, headers)
end
