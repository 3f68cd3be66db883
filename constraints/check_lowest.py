"""Fail when constraints/lowest.txt and pyproject.toml's lower bounds disagree.

Every runtime dependency in [project] dependencies must have a lower bound (`>=`) and a
pin in lowest.txt equal to it (`flask>=3.1` and `flask==3.1.0` agree); lowest.txt pins
nothing else. With --installed it also checks that the running interpreter has exactly
those versions installed (run it with the lowest-versions venv's python).

Standard library only, so the system python3 can run it before any venv exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOWEST = ROOT / "constraints" / "lowest.txt"
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[tuple[int, ...], str]:
    """3.1 and 3.1.0 are the same release; a pre-release keeps its tag (0.51b0: the
    OpenTelemetry instrumentations only ever ship as betas); anything else is refused."""
    match = re.fullmatch(r"(\d+(?:\.\d+)*)((?:a|b|rc)\d+)?", version)
    if not match:
        raise ValueError(f"not a release number: {version!r}")
    parts = [int(p) for p in match[1].split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts), match[2] or ""


def lower_bounds() -> tuple[dict[str, str], set[str], list[str]]:
    """Each runtime dependency's lower bound, every runtime dependency's name, problems."""
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    bounds: dict[str, str] = {}
    names: set[str] = set()
    problems: list[str] = []
    for dep in deps:
        match = REQUIREMENT.match(dep.strip())
        if not match:
            problems.append(f"pyproject.toml: cannot read {dep!r}")
            continue
        name, specs = canonical(match[1]), match[2]
        names.add(name)
        lows = [s.strip()[2:].strip() for s in specs.split(",") if s.strip().startswith(">=")]
        if len(lows) != 1:
            problems.append(f"pyproject.toml: {dep!r} needs exactly one lower bound (>=)")
            continue
        bounds[name] = lows[0]
    return bounds, names, problems


def pins() -> tuple[dict[str, str], list[str]]:
    found: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(LOWEST.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\S+)", line)
        if not match:
            problems.append(f"lowest.txt:{number}: not `name==version`: {line!r}")
            continue
        found[canonical(match[1])] = match[2]
    return found, problems


def main() -> int:
    bounds, names, problems = lower_bounds()
    pinned, more = pins()
    problems += more
    for name, low in bounds.items():
        if name not in pinned:
            problems.append(f"lowest.txt has no pin for {name} (pyproject.toml: >={low})")
        elif release(pinned[name]) != release(low):
            problems.append(
                f"{name}: lowest.txt pins {pinned[name]} but pyproject.toml says >={low};"
                " make them equal"
            )
    for name in sorted(pinned.keys() - names):
        problems.append(f"lowest.txt pins {name}, which is not a runtime dependency")
    if "--installed" in sys.argv[1:]:
        from importlib.metadata import PackageNotFoundError, version

        for name, want in pinned.items():
            try:
                have = version(name)
            except PackageNotFoundError:
                have = "nothing"
            if have != want:
                problems.append(f"{name}: {want} pinned but {have} installed")
    for problem in problems:
        print(f"constraints/lowest.txt: {problem}", file=sys.stderr)
    if not problems:
        where = " and installed" if "--installed" in sys.argv[1:] else ""
        print(f"constraints/lowest.txt: {len(pinned)} pins equal pyproject.toml's bounds{where}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
