"""The journey's forms. Every one is a POST that CSRFProtect checks before the view runs.

The fields are hidden: the customer's choice is which button they press. The templates
write the hidden inputs themselves (several forms share a page, and ids must stay
unique), so these classes are for reading and validating what came back.
"""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, StringField
from wtforms.validators import DataRequired, Optional, ValidationError

from ..checkout.values import is_id, is_promo_code


def _an_id(form: FlaskForm, field: Field) -> None:
    if field.data and not is_id(field.data):
        raise ValidationError(gettext("Choose an offer from the list"))


def _a_code(form: FlaskForm, field: Field) -> None:
    if field.data and not is_promo_code(field.data.strip()):
        raise ValidationError(
            gettext("Enter a promotion code of letters and numbers, like SPORTSHALF")
        )


class RecaptchaForm(FlaskForm):
    # Filled on submit by static/checkout.js with a reCAPTCHA v3 token.
    recaptcha_token = HiddenField()

    class Meta:
        csrf = True


class StartForm(RecaptchaForm):
    subscription = HiddenField(validators=[DataRequired(), _an_id])
    offer = HiddenField(validators=[Optional(), _an_id])
    promo = HiddenField(validators=[Optional(), _a_code])


class BasketForm(RecaptchaForm):
    """A form about the basket as the page showed it: `version` is the basket's version
    then, so a post from a page another window has overtaken changes nothing."""

    version = HiddenField()

    def shown_version(self) -> int | None:
        data = self.version.data
        return int(data) if isinstance(data, str) and data.isdigit() else None


class OfferForm(BasketForm):
    offer = HiddenField(
        validators=[DataRequired(lazy_gettext("Choose an offer from the list")), _an_id]
    )


class ConfirmForm(BasketForm):
    pass


class PromoForm(BasketForm):
    """A promotion code typed in, to apply; or the basket's, to remove (`remove` pressed)."""

    code = StringField(validators=[Optional(), _a_code])
    remove = HiddenField()

    def wanted(self) -> str | None:
        """The code to apply, or None to take the basket's away."""
        if self.remove.data:
            return None
        code = (self.code.data or "").strip()
        if not code:
            raise ValidationError(gettext("Enter a promotion code"))
        return code
