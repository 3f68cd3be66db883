"""Referrer and tracking capture: first touch, bounded, inert.

Kept: `utm_*` parameters, the ad platforms' click ids, `ref` and `promo` (the campaign's
code, so a deal's customers can be counted by it); at most 20 keys, values of at most 256
characters with control characters stripped. Anything else is dropped,
so a crafted link cannot grow a basket or smuggle data into the order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_KEYS = 20
MAX_VALUE = 256
MAX_REFERRER = 2048
LINK_KEYS = frozenset(
    {
        "gclid",
        "gbraid",
        "wbraid",
        "dclid",
        "fbclid",
        "msclkid",
        "ttclid",
        "twclid",
        "li_fat_id",
        "yclid",
        "ref",
        "promo",
    }
)
_UTM = re.compile(r"^utm_[a-z0-9_]{1,40}$")


def clean_text(value: str, limit: int) -> str:
    """Strip control and format characters (CR, LF, NUL, bidi overrides) and truncate."""
    kept = (ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf"))
    return "".join(kept).strip()[:limit]


def is_tracking_key(key: str) -> bool:
    return key in LINK_KEYS or bool(_UTM.match(key))


def capture(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The bounded tracking map from (key, value) pairs, first value of a key wins."""
    kept: dict[str, str] = {}
    for key, value in pairs:
        key = key.lower()
        if len(kept) >= MAX_KEYS:
            break
        if is_tracking_key(key) and key not in kept:
            cleaned = clean_text(value, MAX_VALUE)
            if cleaned:
                kept[key] = cleaned
    return kept


def clean_referrer(value: str | None) -> str | None:
    """An absolute http(s) URL, or nothing: `javascript:` and friends are not referrers."""
    if not value:
        return None
    value = clean_text(value, MAX_REFERRER)
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return value
