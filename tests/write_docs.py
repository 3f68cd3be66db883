"""`make docs`: write what the docs repeat from the code (tests/unit/test_openapi.py
fails while they differ): the partners' error table in docs/partners/errors.md."""

from __future__ import annotations

import re
from pathlib import Path

from app.api.openapi import errors_table

ERRORS = Path(__file__).resolve().parent.parent / "docs" / "partners" / "errors.md"


def main() -> None:
    text = ERRORS.read_text(encoding="utf-8")
    section = re.compile(r"(<!-- errors:start -->\n).*?(<!-- errors:end -->)", re.S)
    if not section.search(text):
        raise SystemExit(f"{ERRORS}: no errors:start/end markers")
    ERRORS.write_text(section.sub(lambda m: m[1] + errors_table() + m[2], text), encoding="utf-8")
    print(f"wrote {ERRORS.relative_to(Path.cwd())}")


if __name__ == "__main__":
    main()
