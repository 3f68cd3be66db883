"""What the docs repeat from the code, checked against it: a hand-kept copy drifts."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Defaults

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "operators" / "configuration.md"


def _settings_table() -> list[str]:
    """The variable of each row of the configuration table (its first cell)."""
    names = []
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3:
            found = re.fullmatch(r"`([A-Z][A-Z0-9_]+)`", cells[0])
            if found:
                names.append(found[1])
    return names


def _defaults() -> set[str]:
    return {f"CHECKOUT_{name}" for name in vars(Defaults) if name.isupper()}


def _gunicorn_settings() -> set[str]:
    """The variables app/gunicorn_config.py reads itself."""
    text = (ROOT / "app" / "gunicorn_config.py").read_text(encoding="utf-8")
    return set(re.findall(r"os\.environ(?:\.get\(|\[)\"([A-Z_]+)\"", text))


def test_every_setting_is_documented_once_and_nothing_else_is():
    documented = _settings_table()
    assert len(documented) == len(set(documented)), "a setting has two rows"
    expected = _defaults() | _gunicorn_settings()
    assert "CHECKOUT_REDIS_MIN_REPLICAS_TIMEOUT_MS" in expected  # the reading works
    assert "CHECKOUT_BIND" in expected and "PROMETHEUS_MULTIPROC_DIR" in expected
    assert expected - set(documented) == set(), "settings missing from the docs"
    assert set(documented) - expected == set(), "the docs name settings that do not exist"


def test_the_readme_stays_a_front_door():
    words = len((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert words <= 2000, f"README.md has {words} words; move the rest under docs/"


def test_every_relative_link_in_the_docs_leads_to_a_file():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []
