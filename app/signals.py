"""What happens in the checkout, announced for whoever observes it (blinker, as Flask's own
signals are).

The parts that do the work send; the operations package (app/ops/) listens and counts:
the metrics and the marketing funnel. Nothing that sends knows who listens, so counting
is never woven into the rules, the adapters or the pages. Receivers run in the sender's
thread, inside its request when there is one.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# The checkout's own events (app/checkout/events.py); the sender is the event.
checkout_event = _signals.signal("checkout-event")

# Adapters. Senders: the service's name ("backend", "siteverify", "identity"), with
# `outcome` ("2xx", "5xx", "unreachable", "ok", "error"…) and `seconds`.
upstream_called = _signals.signal("upstream-called")
# The backend's circuit opened or closed; sender: the service's name, with `is_open`.
circuit_changed = _signals.signal("circuit-changed")
# A Redis command failed; sender: the exception.
redis_failed = _signals.signal("redis-failed")
# A basket write answered before CHECKOUT_REDIS_MIN_REPLICAS replicas had it; sender: None.
write_unreplicated = _signals.signal("write-unreplicated")
# A bot check's outcome; sender: "passed", "missing", "replayed", "invalid", "low_score",
# "wrong_action", "wrong_hostname" or "unavailable".
recaptcha_checked = _signals.signal("recaptcha-checked")

# Requests. A problem answered; sender: the CheckoutError.
problem_answered = _signals.signal("problem-answered")
# The campaign a request is about, before any basket says so (the API's create); sender:
# None, with `tracking` and `referrer`.
campaign_seen = _signals.signal("campaign-seen")
# A customer's step that only the pages see; sender: "opened" (a marketing link
# followed), "signed_in" or "reviewed" (a basket's first review).
journey_step = _signals.signal("journey-step")
