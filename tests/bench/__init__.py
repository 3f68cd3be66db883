"""`make bench` and `make bench-compare`: the checkout as processes, driven by wrk."""
