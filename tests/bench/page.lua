-- The basket page of a signed-in customer: the session and landing cookies.
local bench = dofile(os.getenv("BENCH_DIR") .. "/statuses.lua")
local cookie = os.getenv("BENCH_COOKIE")

request = function()
  if bench.probe() then return bench.throwaway() end
  return wrk.format("GET", nil, {["Cookie"] = cookie, ["X-Request-ID"] = bench.send_id()})
end
