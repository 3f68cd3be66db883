"""`make bench`'s primary table: the checkout under realistic upstream latency.

The sandbox's `realistic` profile delays each partner call (siteverify, the backend's
reads, quotes and orders, the OAuth token, JWKS and discovery) by a long-tailed sample
around a median (sandbox/latency.py). Each scenario runs at each connection count under
`realistic` and, right after, under `none`, on the same stack: the ratio of the two
throughputs is the cost of waiting on the partner. The profile is switched at runtime
(PUT /_sandbox/latency), so the demo data and the served checkout stay the same.

Every run: a warm-up (BENCH_WARMUP s) whose requests drain before the measured run
(BENCH_SECONDS s), then a drain again; wrk with `--timeout 10s`, so slow answers count in
the latency figures; answers split into 2xx, 503 with Retry-After (the checkout's
overload answer), and anything else; socket errors by kind; and the CPU time of the
checkout's gunicorn processes (master and workers) per request made. The sandbox's and
wrk's CPU are kept too: they share the machine and can be what limits a figure. p50 and
p99 also count the requests still waiting when the run ended, at their wait so far
(tests/bench/wrk.py, `with_waiting`): with a queue longer than the run, wrk's own
percentiles are of the fast few.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.processes import cpu_seconds, machine_busy, wait_drained
from tests.bench.stack import BASKET, LOAD_CUSTOMERS, Stack, signed_in_page_cookies
from tests.bench.wrk import SECONDS, TIMEOUT, WARMUP, with_waiting, wrk
from tests.journey import signed_in_browser

SCENARIOS = ("PUT add offer", "POST create", "create-add-complete cycle", "basket page")
PROFILES = ("realistic", "none")
CONNECTIONS = tuple(
    int(n) for n in os.environ.get("BENCH_CONNECTIONS", "16,64,256").split(",") if n.strip()
)
#: wrk's threads: the keyed scripts (put.lua, cycle.lua) need no thread per connection
THREADS = 2
#: baskets per connection for PUT, so that every request finds one no other is using
BASKETS_PER_CONNECTION = 2
#: the medians of the interface, for a sandbox that cannot report its own
DOCUMENTED_MEDIANS_MS = {
    "siteverify": 80, "getSubscription": 60, "quote": 120, "order": 250,
    "token": 100, "jwks": 50, "discovery": 50,
}  # fmt: skip
#: the upstream calls a scenario waits on, as stages one after another; the calls within
#: a stage run concurrently (PUT verifies the reCAPTCHA token while it asks for the quote)
PATHS = {"PUT add offer": (("siteverify", "quote"),)}
TARGET_AT = 64  # the throughput and latency targets, for PUT
OVERLOAD_AT = 256  # the overload targets, for every scenario
SIGN_INS = int(os.environ.get("BENCH_SIGN_INS", "10"))


@dataclass
class Scenario:
    name: str
    path: str
    script: str
    env: dict[str, str] = field(default_factory=dict)


class Primary:
    """Runs the primary table's scenarios; PUT gets fresh baskets for every measured run."""

    def __init__(self, stack: Stack, alice: str) -> None:
        self.stack = stack
        self.alice = alice
        self.spent: list[str] = []  # baskets of finished runs: good enough for a warm-up

    def scenario(self, name: str) -> Scenario:
        if name == "PUT add offer":
            return Scenario(name, BASKET, "put.lua", {"BENCH_TOKEN": self.alice})
        if name == "POST create":
            env = {"BENCH_TOKEN": self.alice, "BENCH_SUBSCRIPTION": "SUB-1001"}
            return Scenario(name, BASKET, "post.lua", env)
        if name == "create-add-complete cycle":
            tokens = "|".join(self.stack.token(customer) for customer in LOAD_CUSTOMERS)
            return Scenario(name, BASKET, "cycle.lua", {"BENCH_TOKENS": tokens})
        if name == "basket page":
            cookies = signed_in_page_cookies(self.stack)
            if cookies is None:
                raise RuntimeError("could not sign in through the journey for the basket page")
            return Scenario(name, "/basket", "page.lua", {"BENCH_COOKIE": cookies})
        raise ValueError(f"no such scenario: {name}")

    def baskets(self, count: int) -> tuple[list[str], list[str]]:
        """Baskets for PUT: `count` new ones for the measured run, and `count` for its
        warm-up that earlier runs left (topped up with new ones). New ones are made under
        `none`, before the switch to the run's profile."""
        self.stack.set_latency("none")
        if len(self.spent) < count:
            self.spent.extend(self.stack.basket_cookies(self.alice, count - len(self.spent)))
        return self.stack.basket_cookies(self.alice, count), self.spent[-count:]

    def run(self, scenario: Scenario, connections: int, profile: str) -> dict[str, Any]:
        env, warm_env = scenario.env, scenario.env
        fresh: list[str] = []
        if scenario.script == "put.lua":
            fresh, warm = self.baskets(BASKETS_PER_CONNECTION * connections)
            env = {**env, "BENCH_COOKIES": "|".join(fresh)}
            warm_env = {**env, "BENCH_COOKIES": "|".join(warm)}
        stack, url = self.stack, self.stack.app.url + scenario.path
        stack.set_latency(profile)
        wrk(url, scenario.script, warm_env, WARMUP, THREADS, connections)
        warm_drain = wait_drained(stack.app.port)
        before = _usage(stack)
        row = wrk(url, scenario.script, env, SECONDS, THREADS, connections)
        ended = _usage(stack)
        row["drain_s"] = wait_drained(stack.app.port)
        drained = cpu_seconds(stack.app.pid)
        self.spent.extend(fresh)
        row["warmup_drain_s"] = warm_drain
        row["waiting"] = len(row.get("waiting_ms", []))
        row["sent"] = row["requests"] + row["waiting"]
        row["p50_all_ms"] = with_waiting(row, 50)
        row["p99_all_ms"] = with_waiting(row, 99)
        # CPU per request made: up to the end of the drain, when the requests still
        # waiting as wrk stopped have been served too (none were in flight before).
        if row["drain_s"] is not None:
            cpu, made = drained - before["app"], row["sent"]
        else:
            cpu, made = ended["app"] - before["app"], row["requests"]
        row["cpu_ms_per_request"] = cpu / made * 1000 if made else None
        seconds = row["duration_s"] or SECONDS
        row["ok_rps"] = row.get("statuses", {}).get("2xx", row["requests"]) / seconds
        used = {key: ended[key] - before[key] for key in before}
        row["cores"] = {
            "app": used["app"] / seconds,
            "sandbox": used["sandbox"] / seconds,
            "wrk": used["wrk"] / seconds,
        }
        row["machine_busy"] = used["busy"] / used["total"] if used["total"] else None
        return row


def _usage(stack: Stack) -> dict[str, float]:
    busy, total = machine_busy()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped wrk runs
    return {
        "app": cpu_seconds(stack.app.pid),
        "sandbox": cpu_seconds(stack.sandbox.pid),
        "wrk": children.ru_utime + children.ru_stime,
        "busy": busy,
        "total": total,
    }


def measure(stack: Stack, alice: str) -> dict[str, Any]:
    """The primary table: every scenario × connections × profile, and the targets."""
    latency = stack.set_latency("realistic")
    profiles_available = latency is not None
    medians = dict(latency["medianMs"]) if latency else dict(DOCUMENTED_MEDIANS_MS)
    if not profiles_available:
        print(
            "!! the sandbox has no latency profiles (/_sandbox/latency: 404): "
            "'realistic' runs without added latency",
            flush=True,
        )
    primary = Primary(stack, alice)
    rows: list[dict[str, Any]] = []
    for name in SCENARIOS:
        scenario = primary.scenario(name)
        for connections in CONNECTIONS:
            pair = {}
            for profile in PROFILES:
                print(f"… {name}, {connections} connections, {profile}", flush=True)
                row = primary.run(scenario, connections, profile)
                row.update(scenario=name, connections=connections, profile=profile)
                pair[profile] = row
                rows.append(row)
            none_rps = pair["none"]["rps"]
            pair["realistic"]["ratio_to_none"] = (
                pair["realistic"]["rps"] / none_rps if none_rps else None
            )
    stack.set_latency("none")
    return {
        "profiles_available": profiles_available,
        "median_ms": medians,
        "connections": list(CONNECTIONS),
        "seconds": SECONDS,
        "warmup_seconds": WARMUP,
        "wrk_threads": THREADS,
        "wrk_timeout": TIMEOUT,
        "rows": rows,
        "targets": targets(rows, medians),
    }


# -- targets ----------------------------------------------------------------------------------


def slowest_path_ms(scenario: str, medians: dict[str, int]) -> int:
    """The upstream time a scenario cannot beat: per stage, its slowest call's median."""
    return sum(max(medians[call] for call in stage) for stage in PATHS[scenario])


def targets(rows: list[dict[str, Any]], medians: dict[str, int]) -> list[dict[str, Any]]:
    """Each target with its figure and whether it was met (None: not measured)."""
    found = {(r["scenario"], r["connections"], r["profile"]): r for r in rows}
    checks: list[dict[str, Any]] = []

    def check(what: str, value: float | None, limit: float, op: str, unit: str = "") -> None:
        met = None if value is None else (value >= limit if op == "≥" else value <= limit)
        checks.append(
            {"target": what, "value": value, "limit": limit, "op": op, "unit": unit, "met": met}
        )

    name = "PUT add offer"
    put = found.get((name, TARGET_AT, "realistic"))
    path_ms = slowest_path_ms(name, medians)
    where = f"{name} at {TARGET_AT} connections, realistic"
    if put is None:
        checks.append({"target": f"{where}: not measured", "met": None})
    else:
        check(f"{where}: throughput ÷ its own under none", put.get("ratio_to_none"), 0.85, "≥")
        check(
            f"{where}: p50 (slowest upstream on its path {path_ms} ms + 30)",
            put["p50_all_ms"], path_ms + 30, "≤", " ms",
        )  # fmt: skip
        check(f"{where}: p99", put["p99_all_ms"], 500, "≤", " ms")
    for scenario in SCENARIOS:
        row = found.get((scenario, OVERLOAD_AT, "realistic"))
        where = f"{scenario} at {OVERLOAD_AT} connections, realistic"
        if row is None:
            checks.append({"target": f"{where}: not measured", "met": None})
            continue
        check(f"{where}: socket errors and timeouts", row["errors"], 0, "≤")
        other = row.get("statuses", {}).get("other")
        check(f"{where}: answers neither 2xx nor 503 with Retry-After", other, 0, "≤")
        check(f"{where}: p99", row["p99_all_ms"], 2000, "≤", " ms")
    return checks


# -- the cost of one sign-in ----------------------------------------------------------------


def sign_in_cost(stack: Stack, count: int = SIGN_INS) -> dict[str, Any]:
    """A full browser-less sign-in (tests/journey.py), `count` times one after another,
    under each profile: its time, and the upstream calls the sandbox's timeline saw."""
    results: dict[str, Any] = {}
    for profile in PROFILES:
        stack.set_latency(profile)
        windows, times = [], []
        for _ in range(count):
            started, clock = time.time(), time.perf_counter()
            http = signed_in_browser(stack.app.url)
            times.append((time.perf_counter() - clock) * 1000)
            windows.append((started, time.time()))
            if http is None:
                raise RuntimeError(f"the sign-in journey failed under {profile}")
            http.close()
        wait_drained(stack.app.port)
        calls = stack.calls()
        counted: list[dict[str, int]] | None = None
        if calls is not None:
            counted = [_endpoints(calls, start, end) for start, end in windows]
        results[profile] = {
            "ms": times,
            "median_ms": statistics.median(times),
            "p90_ms": _p90(times),
            "upstream_calls": (
                statistics.median(sum(c.values()) for c in counted) if counted else None
            ),
            "upstream_calls_by_endpoint": counted[-1] if counted else None,
        }
    stack.set_latency("none")
    return {"count": count, "profiles": results}


def _endpoints(calls: list[dict[str, Any]], start: float, end: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        if start <= call["arrivedAt"] <= end:
            counts[call["endpoint"]] = counts.get(call["endpoint"], 0) + 1
    return counts


def _p90(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]
    )


# -- output ---------------------------------------------------------------------------------


def print_table(results: dict[str, Any], workers: str) -> None:
    medians = ", ".join(f"{k} {v}" for k, v in results["median_ms"].items())
    realistic = (
        "realistic" if results["profiles_available"] else "realistic (NOT AVAILABLE: ran as none)"
    )
    print(
        f"\nPrimary table — sandbox latency {realistic} (medians, ms: {medians}) against none,\n"
        f"same run, same config: {workers}; wrk {results['wrk_threads']} threads, "
        f"--timeout {results['wrk_timeout']}, {results['seconds']} s after a "
        f"{results['warmup_seconds']} s warm-up that drained first\n"
    )
    header = (
        f"{'scenario':26} {'conns':>5} {'profile':9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'2xx':>7} {'503+RA':>6} {'other':>6} {'waiting':>7} {'sock c/r/w/t':>13} "
        f"{'CPU ms/req':>10} "
        f"{'cores app/sbx/wrk':>17} {'busy':>5} {'ratio':>6}"
    )
    print(header + "\n" + "-" * len(header))
    previous = None
    for row in results["rows"]:
        first = (row["scenario"], row["connections"]) != previous
        previous = (row["scenario"], row["connections"])
        statuses = row.get("statuses", {})
        errors = row["socket_errors"]
        sock = "/".join(str(errors[k]) for k in ("connect", "read", "write", "timeout"))
        cpu = row["cpu_ms_per_request"]
        cores = row["cores"]
        ratio = row.get("ratio_to_none")
        busy = row["machine_busy"]
        print(
            f"{row['scenario'] if first else '':26} {row['connections'] if first else '':>5} "
            f"{row['profile']:9} {row['rps']:7.0f} {row['p50_all_ms']:8.1f} "
            f"{row['p99_all_ms']:8.1f} "
            f"{statuses.get('2xx', '-'):>7} {statuses.get('503_retry_after', '-'):>6} "
            f"{statuses.get('other', '-'):>6} {row['waiting']:>7} {sock:>13} "
            f"{'-' if cpu is None else f'{cpu:.2f}':>10} "
            f"{cores['app']:5.2f}/{cores['sandbox']:4.2f}/{cores['wrk']:4.2f}"
            f" {'-' if busy is None else f'{busy:4.0%}':>6} "
            f"{'' if ratio is None else f'{ratio:.3f}':>6}"
        )
    undrained = sum(
        row["drain_s"] is None or row["warmup_drain_s"] is None for row in results["rows"]
    )
    if undrained:
        print(f"\n!! {undrained} runs had requests still in flight 60 s after wrk stopped")
    reused = sum(row.get("reused_baskets", 0) for row in results["rows"])
    if reused:
        print(f"\n!! {reused} PUTs went to a basket whose last request never answered")
    unmatched = sum(row.get("unmatched_answers", 0) for row in results["rows"])
    if unmatched:
        print(f"\n!! {unmatched} answers carried no X-Request-ID of ours")
    print(
        "\np50, p99: over the requests answered and those still waiting when the run ended "
        "(at their wait so far,\na lower bound; wrk's own figures leave those out: see "
        "results.json). waiting: requests unanswered\nwhen the run ended. ratio: realistic "
        "req/s ÷ none req/s. CPU ms/req: the checkout's gunicorn processes\nper request "
        "made (those waiting too, served as the run drained). cores: CPU used ÷ run time.\n"
        "busy: the whole machine during the run (others' work too)."
    )
    print("\nTargets" + ("" if results["profiles_available"] else " (NOT MEANINGFUL: no latency)"))
    for line in target_lines(results["targets"]):
        print(line)


def target_lines(checks: list[dict[str, Any]]) -> Iterator[str]:
    for check in checks:
        met = check["met"]
        label = "SKIP" if met is None else "PASS" if met else "MISS"
        if "value" not in check:
            yield f"  {label}  {check['target']}"
            continue
        value = check["value"]
        value = (
            "not measured" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.3g}"
        )
        limit = f"{check['limit']:g}"
        unit = check["unit"]
        yield f"  {label}  {check['target']}: {value}{unit} ({check['op']} {limit}{unit})"


def print_sign_in(results: dict[str, Any]) -> None:
    print(
        f"\nSign-in cost — the browser journey without a browser (tests/journey.py), "
        f"{results['count']} times one after another"
    )
    header = f"{'profile':10} {'median ms':>10} {'p90 ms':>8} {'upstream calls':>15}  by endpoint"
    print(header + "\n" + "-" * (len(header) + 20))
    for profile, row in results["profiles"].items():
        calls = "-" if row["upstream_calls"] is None else f"{row['upstream_calls']:g}"
        by = row["upstream_calls_by_endpoint"]
        detail = ", ".join(f"{k} {v}" for k, v in by.items()) if by else ""
        print(f"{profile:10} {row['median_ms']:10.0f} {row['p90_ms']:8.0f} {calls:>15}  {detail}")
    print(
        "upstream calls: those the sandbox's timeline records (backend and siteverify; "
        "the OAuth token, JWKS and discovery calls are not in it)"
    )


def chart(results: dict[str, Any], workers: str, path: Path) -> None:
    """req/s and p99 per scenario against connections, realistic and none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {(r["scenario"], r["connections"], r["profile"]): r for r in results["rows"]}
    connections = results["connections"]
    fig, axes = plt.subplots(2, len(SCENARIOS), figsize=(4 * len(SCENARIOS), 7), squeeze=False)
    styles = {"realistic": ("#d4351c", "o-"), "none": ("#1d70b8", "s--")}
    for column, scenario in enumerate(SCENARIOS):
        for line, (figure, label) in enumerate((("rps", "req/s"), ("p99_all_ms", "p99, ms"))):
            axis = axes[line][column]
            for profile in PROFILES:
                colour, style = styles[profile]
                points = [
                    (i, rows[key][figure])
                    for i, c in enumerate(connections)
                    if (key := (scenario, c, profile)) in rows
                ]
                if points:
                    xs, ys = zip(*points, strict=True)
                    axis.plot(xs, ys, style, color=colour, label=profile)
            axis.set_xticks(range(len(connections)), [str(c) for c in connections])
            axis.grid(alpha=0.3)
            axis.set_ylabel(label)
            if line == 0:
                axis.set_title(scenario)
                axis.set_ylim(bottom=0)
            else:
                axis.set_xlabel("connections")
                axis.set_yscale("log")
                axis.axhline(2000, color="#505a5f", linewidth=0.8, linestyle=":")
    axes[0][0].legend()
    axes[1][0].annotate("2 s", (0, 2000), xytext=(2, 2), textcoords="offset points", fontsize=8)
    fig.suptitle(
        f"make bench: sandbox latency realistic vs none — {workers}; {results['seconds']} s a run"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
