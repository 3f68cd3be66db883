"""The customer's language, English or Welsh, and how money and dates read in it.

Chosen, for a customer's page, in this order: `lang=` on any page or marketing link
(remembered in the session, so it survives the sign-in round trip), then the language the
session remembers, then the browser's `Accept-Language`, then `CHECKOUT_DEFAULT_LANGUAGE`;
only among `CHECKOUT_LANGUAGES`. The partner API, the probes and the operators' pages stay
in English: partners rely on problem codes, operators on one vocabulary.

Flask-Babel does the rest as it ships: gettext and ngettext, the catalogues compiled from
translations/ (`make translations`), money and dates formatted by Babel in the locale. The
chosen language also goes to the subscription backend (`Accept-Language`), which names its
offers in it where it can (app/adapters/language.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from flask import Flask, current_app, g, request, session
from flask_babel import Babel, format_currency, format_date, gettext, to_user_timezone
from werkzeug.datastructures import MultiDict

from ..adapters import language as upstream_language
from ..checkout.values import Money
from ..config import check_languages
from .problems import back_url
from .routes import kind_of

# The session key that remembers a customer's choice.
LANGUAGE = "language"
# Each language's Babel locale: British English, and Welsh.
LOCALES = {"en": "en_GB", "cy": "cy_GB"}
# Each language's name, in itself, for the switch.
NAMES = {"en": "English", "cy": "Cymraeg"}
TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
_CHOSEN = "checkout.language"
_UPSTREAM = "checkout.language_token"


def init_app(app: Flask) -> None:
    check_languages(app.config, set(NAMES))
    Babel(
        app,
        locale_selector=lambda: LOCALES[chosen()],
        default_timezone=str(app.config["DISPLAY_TIMEZONE"]),
        default_translation_directories=str(TRANSLATIONS),
    )
    app.before_request(_remember)
    app.teardown_request(_forget)
    app.context_processor(lambda: {"language": chosen(), "language_switch": switch()})
    for name, format_ in (("money", money), ("per_month", per_month), ("long_date", long_date)):
        app.add_template_filter(format_, name)


def chosen() -> str:
    """This request's language: `en` or `cy` (worked out once a request)."""
    environ = request.environ
    if _CHOSEN not in environ:
        environ[_CHOSEN] = _choose()
    return str(environ[_CHOSEN])


def _choose() -> str:
    config = current_app.config
    if not kind_of(request.path).localised:
        return "en"
    offered = list(config["LANGUAGES"])
    asked = request.args.get("lang")
    if asked in offered:
        return str(asked)
    remembered = session.get(LANGUAGE)
    if remembered in offered:
        return str(remembered)
    return str(request.accept_languages.best_match(offered) or config["DEFAULT_LANGUAGE"])


def _remember() -> None:
    """A choice on the link is kept for the visit; the backend is asked in the language."""
    if not kind_of(request.path).localised:
        return
    language = chosen()
    if request.args.get("lang") == language and session.get(LANGUAGE) != language:
        session[LANGUAGE] = language
    g.setdefault(_UPSTREAM, upstream_language.use(language))


def _forget(_: BaseException | None) -> None:
    token = g.pop(_UPSTREAM, None)
    if token is not None:
        upstream_language.reset(token)


def switch() -> list[dict[str, str]]:
    """The page in each other language: the same page for a GET, the page a form was on
    after a POST."""
    if not kind_of(request.path).localised:
        return []
    here = chosen()
    return [
        {"code": code, "name": NAMES[code], "url": _in_language(code)}
        for code in current_app.config["LANGUAGES"]
        if code != here
    ]


def _in_language(code: str) -> str:
    if request.method == "GET":
        path, args = request.script_root + request.path, MultiDict(request.args)
    else:
        path, _, query = back_url().partition("?")
        args = MultiDict(parse_qsl(query))
    args.setlist("lang", [code])
    return f"{path}?{urlencode(list(args.items(multi=True)))}"


# -- how money and dates read ---------------------------------------------------------------


def money(value: Money) -> str:
    """£24, £6.50, £1,024: whole amounts without pence, as the pages have always shown."""
    if value.amount == value.amount.to_integral_value():
        return str(format_currency(value.amount, value.currency, "¤#,##0", currency_digits=False))
    return str(format_currency(value.amount, value.currency))


def per_month(value: Money) -> str:
    """£24 a month."""
    return gettext("%(price)s a month", price=money(value))


def long_date(value: str | date) -> str:
    """1 December 2026."""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return str(format_date(day, "d MMMM y"))


def local_time(epoch: float) -> str:
    """2:05pm on 27 November 2026, in the customers' time zone."""
    moment = to_user_timezone(datetime.fromtimestamp(epoch, UTC))
    hour = moment.hour % 12 or 12
    clock = (
        gettext("%(hour)d:%(minute)02dam", hour=hour, minute=moment.minute)
        if moment.hour < 12
        else gettext("%(hour)d:%(minute)02dpm", hour=hour, minute=moment.minute)
    )
    return gettext("%(time)s on %(date)s", time=clock, date=long_date(moment.date()))
