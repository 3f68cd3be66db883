"""The languages the partner's systems answer in: English, the default, and Welsh.

The backend names its plans and offers in the language of a call's ``Accept-Language``
where the partner has a Welsh form for them (:mod:`sandbox.data` keeps the Welsh beside the
English), and in English where it has none. The sign-in and signed-out pages follow
OpenID Connect's ``ui_locales``. Ids, prices and error messages are the same in both, but
for the refusal of a promotion code, whose message is for the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

ENGLISH = "en"
WELSH = "cy"
#: what the partner answers in, the default first
LANGUAGES = (ENGLISH, WELSH)


def in_language(language: str, english: str, welsh: str | None) -> str:
    """The Welsh text for ``cy`` if there is one; otherwise the English."""
    return welsh if language == WELSH and welsh is not None else english


def from_ui_locales(ui_locales: str | None) -> str:
    """The first language of ``ui_locales`` (space-separated BCP 47 tags) the pages know.

    ``cy-GB`` counts as ``cy``; with none known, English.
    """
    for tag in (ui_locales or "").split():
        primary = tag.split("-", 1)[0].lower()
        if primary in LANGUAGES:
            return primary
    return ENGLISH


@dataclass(frozen=True)
class PageText:
    """The words of the sandbox's pages (base, sign-in, signed-out, error) in one language."""

    lang: str
    #: after each page's title
    site: str
    #: the banner's warning, beside the brand
    notice: str
    sign_in_title: str
    sign_in_heading: str
    #: around the client's id: "The application <strong>checkout-dev</strong> asks you ..."
    client_asks_before: str
    client_asks_after: str
    choose_customer: str
    operator: str
    sign_in_button: str
    rejected_title: str
    rejected_default: str
    error_code: str
    no_such_customer: str
    signed_out_title: str
    signed_out_heading: str
    signed_out_body: str


PAGE_TEXTS: dict[str, PageText] = {
    ENGLISH: PageText(
        lang=ENGLISH,
        site="Partner TV (sandbox)",
        notice="Sandbox: demo accounts only, no real sign-in.",
        sign_in_title="Sign in",
        sign_in_heading="Sign in to Partner TV",
        client_asks_before="The application",
        client_asks_after="asks you to sign in.",
        choose_customer="Choose a demo customer",
        operator="operator",
        sign_in_button="Sign in",
        rejected_title="Sign-in request rejected",
        rejected_default="The request could not be processed.",
        error_code="Error code:",
        no_such_customer="Choose one of the demo customers.",
        signed_out_title="Signed out",
        signed_out_heading="You are signed out",
        signed_out_body="You have signed out of Partner TV. You can close this window.",
    ),
    WELSH: PageText(
        lang=WELSH,
        site="Partner TV (amgylchedd prawf)",
        notice="Amgylchedd prawf: cyfrifon demo yn unig, dim mewngofnodi go iawn.",
        sign_in_title="Mewngofnodi",
        sign_in_heading="Mewngofnodi i Partner TV",
        client_asks_before="Mae'r gwasanaeth",
        client_asks_after="yn gofyn i chi fewngofnodi.",
        choose_customer="Dewiswch gwsmer demo",
        operator="gweithredwr",
        sign_in_button="Mewngofnodi",
        rejected_title="Gwrthodwyd y cais i fewngofnodi",
        rejected_default="Nid oedd modd prosesu'r cais.",
        error_code="Cod gwall:",
        no_such_customer="Dewiswch un o'r cwsmeriaid demo.",
        signed_out_title="Wedi allgofnodi",
        signed_out_heading="Rydych wedi allgofnodi",
        signed_out_body="Rydych wedi allgofnodi o Partner TV. Gallwch gau'r ffenestr hon.",
    ),
}
