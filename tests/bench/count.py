"""`make bench-count [BASE=<rev>]`: instructions per request, counted by callgrind.

Time on this machine is too noisy to see most single changes: the same code's GET ratio
has moved from 0.37 to 0.59 between runs, and `make bench-compare` reads ±5 % as no
difference. Instructions are steady: valgrind's callgrind counts what the CPU is asked
to do, and the same code on the same requests gives the same count to within ~0.5 %
(hash seed fixed; measured here: ±0.3 % between runs and trees). So this tells whether a
change makes a request do less work.

Each request is served in process, as `make bench-layers` does, by a child under
callgrind (tests/bench/counted.py): warmed up, then counted over COUNTED repetitions.
It counts our Python and the libraries' (Flask, Jinja, redis-py), not gunicorn's, the
kernel's, Redis's or the sandbox's, and not time spent waiting: what it shows is a
lower bound of what `make bench` sees, which under load is several times more.

With BASE, the revision is counted too (a temporary git worktree), at the same time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

from sandbox.stack import ROOT
from tests.bench.compare import worktree
from tests.bench.stack import Stack, as_request

WARM = int(os.environ.get("BENCH_WARM", "100"))
COUNTED = int(os.environ.get("BENCH_COUNTED", "200"))
CHILD = Path(__file__).with_name("counted.py")


def requests(stack: Stack) -> list[dict[str, object]]:
    alice = stack.token("alice")
    asked: list[dict[str, object]] = [
        {"name": "floor", "path": "/hello", "headers": {}},
        {"name": "app, no work (/healthz)", "path": "/healthz", "headers": {}},
    ]
    for scenario in ("GET basket", "basket page"):
        path, headers = as_request(stack, scenario, alice)
        asked.append({"name": scenario, "path": path, "headers": headers})
    return asked


def count(tree: Path, settings: Path, scratch: Path) -> list[int]:
    """Instructions per request of each of the settings' requests, served by `tree`."""
    out = scratch / f"callgrind.{tree.name}"
    command = [
        "valgrind", "--tool=callgrind", "--dump-before=getppid", f"--callgrind-out-file={out}",
        sys.executable, str(CHILD), str(settings),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"counting {tree} failed:\n{done.stderr[-2000:]}")
    dumps = sorted(scratch.glob(f"{out.name}.*"), key=lambda p: int(p.suffix[1:]))
    totals = [int(re.search(r"^totals: (\d+)", p.read_text(), re.M).group(1)) for p in dumps]  # type: ignore[union-attr]
    return [total // COUNTED for total in totals[1:]]  # the first: start-up, warm-up


def main() -> int:
    rev = os.environ.get("BASE", "")
    with tempfile.TemporaryDirectory(prefix="bench-count-") as scratch_dir, Stack() as stack:
        scratch = Path(scratch_dir)
        asked = requests(stack)
        settings = scratch / "settings.json"
        config = {"config": stack.app_config(), "requests": asked, "warm": WARM, "counted": COUNTED}
        settings.write_text(json.dumps(config))
        with worktree(rev) if rev else nullcontext() as base:
            trees = [ROOT] + ([base] if base else [])
            # One valgrind per tree, side by side; a failure is raised here, not lost.
            with ThreadPoolExecutor() as pool:
                counts = pool.map(lambda tree: count(tree, settings, scratch), trees)
                found = dict(zip(trees, counts, strict=True))
    here = found[ROOT]
    print(f"\ninstructions per request, counted in process ({COUNTED} of each)")
    header = f"{'request':26} {'this tree':>10} {'× floor':>8}"
    print(header + (f" {rev:>12} {'change':>8}" if rev else ""))
    for i, request in enumerate(asked):
        row = f"{request['name']:26} {here[i]:10,} {here[i] / here[0]:8.1f}"
        if rev:
            then = found[trees[1]][i]
            row += f" {then:12,} {(here[i] - then) / then:+8.1%}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
