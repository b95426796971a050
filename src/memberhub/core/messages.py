"""Human messages for domain error codes, translatable; the domain itself stays Django-free."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from memberhub.domain.errors import DomainError

DOMAIN_MESSAGES: dict[str, Promise] = {
    "insufficient_points": _("Not enough points."),
    "invalid_amount": _("The amount is not valid."),
    "invalid_rule": _("The rule is not valid."),
    "invalid_refund": _("The refund is not valid."),
    "self_approval": _("An adjustment cannot be approved by the person who requested it."),
    "unknown_tier": _("Unknown tier."),
}


def domain_message(exc: DomainError) -> str | Promise:
    return DOMAIN_MESSAGES.get(exc.code, exc.message)
