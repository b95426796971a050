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
    # coupons, rewards, stored value (domain errors)
    "coupon_template_invalid": _("The coupon template is not valid."),
    "coupon_template_mismatch": _("The coupon does not belong to this template."),
    "basket_invalid": _("The basket is not valid."),
    "naive_datetime": _("Times must carry a time zone."),
    "code_spec_invalid": _("The code length or prefix is not valid."),
    "unknown_line": _("The refunded line is not part of this order."),
    "reward_invalid": _("The reward is not valid."),
    "illegal_fulfilment_transition": _("The reward order cannot move to this status."),
    "wallet_amount_invalid": _("The wallet amount is not valid."),
    "insufficient_balance": _("The balance is too low."),
    "refund_exceeds_payment": _("The refund exceeds what this payment took."),
    # why a coupon does not apply (refusal codes, shown beside each coupon)
    "already_used": _("This coupon has already been used."),
    "revoked": _("This coupon has been revoked."),
    "not_yet_valid": _("This coupon is not valid yet."),
    "expired": _("This coupon has expired."),
    "not_owner": _("This coupon belongs to another member."),
    "wrong_store": _("This coupon cannot be used in this store."),
    "wrong_channel": _("This coupon cannot be used on this channel."),
    "tier_not_eligible": _("The member's tier cannot use this coupon."),
    "not_first_purchase": _("This coupon is for a first purchase only."),
    "already_applied": _("This coupon is already applied."),
    "not_stackable": _("This coupon cannot be combined with the other coupons."),
    "not_stackable_with_tier_discount": _("This coupon cannot be combined with the member discount."),
    "no_eligible_items": _("No item in the basket qualifies for this coupon."),
    "below_minimum_spend": _("The basket does not reach this coupon's minimum spend."),
    "no_shipping_fee": _("There is no shipping fee to take off."),
    "nothing_to_discount": _("This coupon gives no discount on this basket."),
    "budget_exhausted": _("This coupon campaign's budget is used up."),
    "coupon_not_found": _("No coupon has this code."),
}


def domain_message(exc: DomainError) -> str | Promise:
    return DOMAIN_MESSAGES.get(exc.code, exc.message)
