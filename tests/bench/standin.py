"""The issue's naive stand-ins, served like the floor: a ~6 KB Jinja page with a 10-item
loop, and the same page after one Redis GET and one SET (redis-py with hiredis).

They calibrate the targets on the machine at hand: the issue measured them at 0.51 and
0.36 of the floor; `make bench` shows what they reach here, in the same run.
"""

import os

import redis
from flask import Flask, render_template

app = Flask(__name__)
store = redis.Redis.from_url(os.environ.get("BENCH_STANDIN_REDIS", "redis://127.0.0.1:6379/0"))
ITEMS = [
    {
        "name": f"Offer {n}",
        "price": f"£{n}.50",
        "description": "A description of the offer, long enough to read like one. " * 2,
    }
    for n in range(10)
]


@app.get("/page")
def page() -> str:
    return render_template("standin.html", items=ITEMS, title="Choose your changes")


@app.get("/page-redis")
def page_with_redis() -> str:
    store.get("bench:standin")
    store.set("bench:standin", b"x" * 1500, ex=600)
    return render_template("standin.html", items=ITEMS, title="Choose your changes")
