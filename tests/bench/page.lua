-- The basket page of a signed-in customer: the session and landing cookies.
wrk.method = "GET"
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
