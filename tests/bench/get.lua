-- GET the basket: one token and one landing cookie.
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")
local authorization = "Bearer " .. os.getenv("BENCH_TOKEN")
local cookie = os.getenv("BENCH_COOKIE")

request = function()
  if bench.probe() then return bench.throwaway() end
  local headers = {
    ["Authorization"] = authorization,
    ["Cookie"] = cookie,
    ["X-Request-ID"] = bench.send_id(),
  }
  return wrk.format("GET", nil, headers)
end
