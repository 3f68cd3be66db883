-- GET the basket: one token and one landing cookie, fixed headers.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
