"""The operators' pages: the marketing funnel per campaign, as a page and as CSV.

Operators sign in through the same OpenID provider as customers; what makes them
operators is the `roles` claim (`OPERATOR_ROLE`), read from the ID token (or userinfo) at
sign-in for the pages, and from the access token for the CSV fetched with
`Authorization: Bearer`. A customer is refused (403). Without credentials the page sends
the browser to sign in, and the CSV answers 401.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField
from wtforms.validators import DataRequired, Length

from ..checkout.errors import CheckoutError, InvalidRequest, Unauthorized
from ..pages.signin import customer_or_none, roles, roles_of
from ..web.problems import Forbidden, SignInRequired
from ..web.services import services
from . import charts, funnel
from .funnel import EXITS, STEPS, Report

bp = Blueprint("ops", __name__, url_prefix="/ops")

DEFAULT_DAYS = 7
MAX_DAYS = 92
CSV_COLUMNS = ("campaign", "source", "medium", "promo_code", *STEPS, *EXITS)
STEP_NAMES = {
    "opened": "Link opened",
    "started": "Checkout started",
    "signed_in": "Signed in",
    "changed": "Changed",
    "reviewed": "Reviewed",
    "confirmed": "Confirmed",
}
EXIT_NAMES = {
    "locked": "Locked subscription",
    "not_found": "Subscription not found",
    "expired": "Basket expired",
    "bot_check_failed": "Bot check failed",
    "upstream_error": "Upstream error",
    "shed": "Turned away, busy",
}
# A spreadsheet runs a cell that starts like a formula (OWASP: CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _range() -> tuple[date, date]:
    """`from` and `to` (YYYY-MM-DD, UTC days, both included); the last 7 days by default."""
    today = funnel.today()
    try:
        end = date.fromisoformat(request.args.get("to") or today.isoformat())
        start_text = request.args.get("from")
        start = date.fromisoformat(start_text) if start_text else end - timedelta(DEFAULT_DAYS - 1)
    except ValueError as exc:
        raise InvalidRequest("from and to are dates like 2026-12-01") from exc
    if start > end:
        raise InvalidRequest("from is after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"at most {MAX_DAYS} days at once")
    return start, end


def _report(start: date, end: date) -> Report:
    return funnel.store().report(funnel.days_between(start, end))


def _operator_signed_in(otherwise: CheckoutError) -> None:
    """A browser session of an operator: `otherwise` when nobody is signed in."""
    if customer_or_none() is None:
        raise otherwise
    _operator(roles(), "signed in without the operator role")


def _operator(held: list[str], reason: str) -> None:
    if current_app.config["OPERATOR_ROLE"] not in held:
        raise Forbidden(reason)


@bp.get("/funnel")
def funnel_page() -> tuple[str, int]:
    _operator_signed_in(SignInRequired("operators sign in"))  # a GET: to sign in and back
    error = None
    try:
        start, end = _range()
    except InvalidRequest as exc:
        error = exc.reason
        end = funnel.today()
        start = end - timedelta(DEFAULT_DAYS - 1)
    report = _report(start, end)
    steps = [(STEP_NAMES[step], report.total(step)) for step in STEPS]
    per_day = report.per_day("confirmed")
    html = render_template(
        "ops/funnel.html",
        report=report,
        error=error,
        given_from=request.args.get("from", start.isoformat()),
        given_to=request.args.get("to", end.isoformat()),
        steps=STEPS,
        exits=EXITS,
        step_names=STEP_NAMES,
        exit_names=EXIT_NAMES,
        funnel_chart=charts.funnel_chart("funnel-chart", "Checkout funnel, all campaigns", steps),
        daily_chart=charts.daily_chart("daily-chart", "Confirmations per day", per_day),
        per_day=per_day,
        csv_query={"from": start.isoformat(), "to": end.isoformat()},
        totals=report.totals(),
        conversion=conversion,
    )
    return html, 400 if error else 200


@bp.get("/funnel.csv")
def funnel_csv() -> Response:
    """An operator's access token (`Authorization: Bearer`), else an operator's session."""
    header = request.headers.get("Authorization")
    if header:
        claims = services().tokens.validate(header).claims
        _operator(roles_of(claims), "the token does not carry the operator role")
    else:
        _operator_signed_in(Unauthorized("an operator's Bearer token is needed"))
    start, end = _range()
    report = _report(start, end)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        touch = row.touch
        writer.writerow(
            [_cell(touch.campaign), _cell(touch.source), _cell(touch.medium), _cell(touch.code)]
            + [row[event] for event in (*STEPS, *EXITS)]
        )
    name = f"funnel-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def conversion(counts: Mapping[str, int], step: str) -> str:
    """The share that reached `step` of the nearest step before it that anyone reached
    (the API has no sign-in or review step): "67 %", or "–" when there is none."""
    before = next((counts.get(s, 0) for s in reversed(STEPS[: STEPS.index(step)])
                   if counts.get(s, 0)), 0)  # fmt: skip
    return charts.percent(counts.get(step, 0), before)  # rounded as the chart rounds it


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


# -- partner events ------------------------------------------------------------------------


class ResendForm(FlaskForm):
    """Send one failed event again; CSRF-checked like every form."""

    shard = HiddenField(validators=[DataRequired(), Length(max=100)])
    event = HiddenField(validators=[DataRequired(), Length(max=100)])


@bp.get("/events")
def events_page() -> str:
    """The partner events: the last deliveries, and the failed ones to send again."""
    _operator_signed_in(SignInRequired("operators sign in"))
    outbox = services().outbox
    depth, oldest = outbox.backlog()
    return render_template(
        "ops/events.html",
        recent=outbox.recent(),
        failed=outbox.failed(),
        depth=depth,
        oldest=oldest,
        when=_moment,
    )


@bp.post("/events/resend")
def resend_event() -> Response:
    _operator_signed_in(SignInRequired("operators sign in"))
    form = ResendForm()
    if not form.validate():
        raise InvalidRequest("the form was altered")
    if services().outbox.resend(str(form.shard.data), str(form.event.data)):
        flash(f"Event {form.event.data} will be sent again now.", "success")
    else:
        flash(f"Event {form.event.data} is no longer waiting to be sent again.", "warning")
    return redirect(url_for(".events_page"), 303)


def _moment(epoch: float) -> str:
    """A time on the operators' page: UTC, to the second."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
