"""The till checkout: price, coupons, points, stored value, gift cards and the purchase in ONE
transaction, and its refund. Each part is the owning app's public service, called inside
this transaction, so any refusal rolls every part back.

Decisions:
- Price: tier discount (the member's tier benefit, as coupons price it) then coupons
  (``coupons_redeem_for_order``). Points redeemed are a cash deduction capped by the
  programme's redeem policy on the amount after coupons; they are a discount, so no points
  are earned on them. Stored value and gift cards are tenders of what is left: the purchase
  records, per line, what the member paid after coupons and points (the points deduction is
  spread over the lines in proportion to their amount, largest remainder), and earns on that.
- Lock order: the member's points account first (it serialises one member's checkouts and
  refunds), then coupons, then the wallet / gift cards, then the purchase.
- Idempotent per (channel, order_no): the same request again answers the stored receipt
  (``replayed: true``); another request on that order number is 409 ``order_exists``.
- Refund: loyalty's ``purchase_refund`` (clawback of points earned), coupons given back on a
  whole refund while still valid, points redeemed returned in proportion to the money
  refunded (cumulative, the last refund returns the rest) to the lots they came from, and
  the wallet and each gift card refunded in the proportion each paid, the rest is due in
  the other tender.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.checkout.models import Checkout, CheckoutRefund
from memberhub.core.crypto import keyed_digest
from memberhub.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from memberhub.core.metrics import checkout_completed
from memberhub.coupons.checkout import (
    LineIn,
    coupons_price,
    coupons_redeem_for_order,
    coupons_restore_for_refund,
)
from memberhub.domain.member_status import Act
from memberhub.loyalty import ledger
from memberhub.loyalty.members import member_resolve
from memberhub.loyalty.models import PointsAccount, Purchase
from memberhub.loyalty.points import points_redeem, points_return
from memberhub.loyalty.programme import rules_current
from memberhub.loyalty.purchases import (
    LineInput,
    PurchaseInput,
    RefundInput,
    purchase_record,
    purchase_refund,
)
from memberhub.members.models import Member
from memberhub.stores.models import Store
from memberhub.stores.selectors import store_for_actor
from memberhub.wallet.giftcards import gift_card_refund, gift_card_spend
from memberhub.wallet.services import MAX_AMOUNT_FEN, wallet_refund, wallet_spend

MAX_LINES = 200
MAX_GIFT_CARDS = 5


@dataclass(frozen=True)
class BasketLine:
    line_id: str
    sku: str
    unit_price_fen: int
    qty: int = 1
    category: str = ""


@dataclass(frozen=True)
class GiftCardTender:
    code: str
    amount_fen: int
    pin: str | None = None


@dataclass(frozen=True)
class CheckoutInput:
    channel: str
    order_no: str
    lines: tuple[BasketLine, ...]
    store: str | None = None
    member_id: int | None = None
    member_key: str | None = None  # phone, card code or member number
    at: datetime | None = None
    coupon_codes: tuple[str, ...] = ()
    points: int = 0
    wallet_fen: int = 0
    gift_cards: tuple[GiftCardTender, ...] = ()


def _caps(data: CheckoutInput) -> list[str]:
    caps: list[str] = [Cap.PURCHASES_WRITE]
    if data.coupon_codes:
        caps.append(Cap.COUPONS_REDEEM)
    if data.points:
        caps.append(Cap.POINTS_REDEEM)
    if data.wallet_fen or data.gift_cards:
        caps.append(Cap.WALLET_SPEND)
    return caps


def _fingerprint(data: CheckoutInput, *, keyed: bool = True) -> str:
    """The request as the till sent it, PINs left out (never stored, even hashed here). Keyed
    (HMAC under the blind-index key): it holds the member's phone when the till names them by
    it, which a plain hash would give away to anyone trying every number. Checkouts stored
    before were plain sha256 (`keyed=False`); a replay of one is still recognised."""
    body = asdict(data)
    body["gift_cards"] = [{"code": g.code, "amount_fen": g.amount_fen} for g in data.gift_cards]
    body["at"] = data.at.isoformat() if data.at else None
    text = json.dumps(body, sort_keys=True, default=str).encode()
    return keyed_digest(text, purpose="checkout") if keyed else hashlib.sha256(text).hexdigest()


def _validate(data: CheckoutInput) -> None:
    if data.channel not in Purchase.Channel.values:
        raise ValidationFailed(_("Unknown channel."), code="invalid_channel", detail={"allowed": Purchase.Channel.values})
    if not data.order_no.strip() or len(data.order_no) > 64:
        raise ValidationFailed(_("An order number of 1 to 64 characters is required."), code="invalid_order_no")
    if not data.lines or len(data.lines) > MAX_LINES:
        raise ValidationFailed(_("The basket needs 1 to %(max)d lines.") % {"max": MAX_LINES}, code="invalid_basket")
    ids = [line.line_id for line in data.lines]
    if len(set(ids)) != len(ids) or not all(i.strip() for i in ids):
        raise ValidationFailed(_("Line ids must be unique within the order."), code="duplicate_line_id")
    for line in data.lines:
        if line.qty < 1 or line.unit_price_fen < 0 or line.qty * line.unit_price_fen > MAX_AMOUNT_FEN:
            raise ValidationFailed(_("The amount is not valid."), code="invalid_amount", detail={"line_id": line.line_id})
    if data.points < 0 or data.wallet_fen < 0 or any(g.amount_fen <= 0 for g in data.gift_cards):
        raise ValidationFailed(_("The amount is not valid."), code="invalid_amount")
    if len(data.gift_cards) > MAX_GIFT_CARDS or len({g.code for g in data.gift_cards}) != len(data.gift_cards):
        raise ValidationFailed(_("Name each gift card once, at most %(max)d.") % {"max": MAX_GIFT_CARDS},
                               code="invalid_gift_cards")
    if (data.coupon_codes or data.points or data.wallet_fen) and data.member_id is None and not data.member_key:
        raise ValidationFailed(_("Coupons, points and stored value need the member."), code="member_required")


def _store(actor: Principal, code: str | None) -> Store | None:
    if code is None:
        if actor.store_ids is not None:
            raise ValidationFailed(_("Name the store of the purchase."), code="store_required")
        return None
    return store_for_actor(actor=actor, code=code)


def _spread(total: int, weights: list[int]) -> list[int]:
    """`total` over the weights in proportion, largest remainder; never above a weight."""
    whole = sum(weights)
    if not total or not whole:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _replay(found: Checkout, fingerprint: str, actor: Principal, data: CheckoutInput) -> dict[str, Any]:
    if not store_scope.may_read_record(actor, found.store_id, found.member.home_store_id if found.member else None):
        # another store's order: the number is taken, and nothing else about it is said
        raise Conflict(_("This order number is already in use."), code="order_exists")
    if found.fingerprint != fingerprint and found.fingerprint != _fingerprint(data, keyed=False):
        raise Conflict(_("This order number was already checked out with different details."), code="order_exists",
                       detail={"checkout_id": found.pk})
    return {**found.receipt, "replayed": True}


def checkout_create(*, actor: Principal, data: CheckoutInput, now: datetime | None = None) -> dict[str, Any]:
    """Check out one basket; every part or none. Answers the receipt."""
    actor.require(*_caps(data))
    _validate(data)
    now = now or timezone.now()
    fingerprint = _fingerprint(data)
    found = Checkout.objects.select_related("member").filter(channel=data.channel, order_no=data.order_no).first()
    if found is not None:
        return _replay(found, fingerprint, actor, data)
    store = _store(actor, data.store)
    member = member_resolve(member_id=data.member_id, key=data.member_key, actor=actor) \
        if data.member_id is not None or data.member_key else None
    try:
        with transaction.atomic():
            receipt = _checkout(actor, data, store, member, fingerprint, now)
        checkout_completed()
        return receipt
    except (IntegrityError, ApplicationError) as exc:
        # a twin of this request committed first: answer its receipt
        if isinstance(exc, ApplicationError) and exc.code not in ("order_exists", "order_already_redeemed"):
            raise
        found = Checkout.objects.select_related("member").filter(channel=data.channel, order_no=data.order_no).first()
        if found is None:
            if isinstance(exc, IntegrityError):
                raise Conflict(_("This order number is already in use."), code="order_exists") from None
            raise
        return _replay(found, fingerprint, actor, data)


def _tier_basket(data: CheckoutInput, account: PointsAccount | None) -> tuple[str | None, dict[str, Any]]:
    rules = rules_current()
    tier = account.tier if account is not None else None
    codes = {t.code for t in rules.ladder.tiers}
    if tier is not None and tier not in codes:
        tier = rules.ladder.tiers[0].code
    benefits = rules.benefits_for(tier) if tier else None
    lines = tuple(LineIn(line_id=ln.line_id, sku=ln.sku, unit_price_fen=ln.unit_price_fen, qty=ln.qty,
                         category=ln.category,
                         tier_discountable=benefits is None or (
                             ln.category not in benefits.discount_excluded_categories
                             and ln.sku not in benefits.discount_excluded_skus))
                  for ln in data.lines)
    return tier, {"lines": lines, "shipping_fee_fen": 0, "tier_discount_permille": benefits.discount_permille if benefits else 1000}


def _tender_check(movement: Any, now: datetime, what: str) -> None:
    """A wallet/gift card service answers an earlier payment under this order number as a
    replay; at checkout that means the order number was paid outside this checkout."""
    if movement.at != now:
        raise Conflict(_("This order number was already paid with %(what)s.") % {"what": what},
                       code="order_exists", detail={"tender": what})


def _checkout(actor: Principal, data: CheckoutInput, store: Store | None, member: Member | None, fingerprint: str,
              now: datetime) -> dict[str, Any]:
    # a frozen member checks out nothing (409 member_frozen): no earn, points, coupons or stored value
    account = ledger.account_lock_resolved(member.pk, Act.PURCHASE) if member is not None else None
    tier, basket = _tier_basket(data, account)
    member_id = member.pk if member is not None else None
    store_id = store.pk if store is not None else None
    if data.coupon_codes:
        priced = coupons_redeem_for_order(actor=actor, member_id=member_id, codes=list(data.coupon_codes),
                                          basket=basket, channel=data.channel, store_id=store_id,
                                          order_no=data.order_no, now=now)
        if priced.get("replayed"):  # coupons were redeemed on this order number outside a checkout
            raise Conflict(_("This order number is already in use."), code="order_exists")
    else:
        priced = coupons_price(member_id=member_id, codes=[], basket=basket, channel=data.channel,
                               store_id=store_id, now=now).as_dict()
    priced_lines = {ln["line_id"]: ln for ln in priced["lines"]}
    nets = [priced_lines[ln.line_id]["net_fen"] for ln in data.lines]
    payable = sum(nets)

    points_ref, deduction = "", 0
    if data.points:
        points_ref = f"checkout:{data.channel}:{data.order_no}"
        redeemed = points_redeem(actor=actor, points=data.points, member_id=member_id, order_fen=payable,
                                 reference=points_ref, now=now, store_id=store_id)
        deduction = redeemed.deduction_fen
    shares = _spread(deduction, nets)
    paid_lines = [n - s for n, s in zip(nets, shares, strict=True)]
    paid = sum(paid_lines)

    tendered = data.wallet_fen + sum(g.amount_fen for g in data.gift_cards)
    if tendered > paid:
        raise ValidationFailed(_("Stored value and gift cards exceed the amount due."), code="tender_exceeds_due",
                               detail={"due_fen": paid, "tendered_fen": tendered})
    wallet_out = None
    if data.wallet_fen:
        assert member_id is not None  # refused earlier: stored value needs the member
        move = wallet_spend(actor=actor, member_id=member_id, amount_fen=data.wallet_fen, order_no=data.order_no,
                            store=data.store, channel=data.channel, now=now)
        _tender_check(move, now, "stored value")
        wallet_out = {"amount_fen": data.wallet_fen, "principal_fen": -move.principal_fen, "bonus_fen": -move.bonus_fen,
                      "principal_after_fen": move.principal_after_fen, "bonus_after_fen": move.bonus_after_fen}
    cards_out = []
    for g in data.gift_cards:
        card_move = gift_card_spend(actor=actor, code=g.code, amount_fen=g.amount_fen, order_no=data.order_no,
                               store=data.store, now=now, pin=g.pin)
        _tender_check(card_move, now, "a gift card")
        cards_out.append({"code": card_move.card.code, "amount_fen": -card_move.amount_fen,
                          "balance_after_fen": card_move.balance_after_fen})

    discounts: list[dict[str, Any]] = []
    if priced["tier_discount_fen"]:
        discounts.append({"kind": "tier", "tier": tier, "fen": priced["tier_discount_fen"]})
    discounts += [{"kind": "coupon", "code": a["code"], "fen": a["amount_fen"]} for a in priced["applied"]]
    if deduction:
        discounts.append({"kind": "points", "points": data.points, "fen": deduction})
    result = purchase_record(actor=actor, now=now, data=PurchaseInput(
        channel=data.channel, order_no=data.order_no, paid_fen=paid, at=data.at, store=data.store,
        member_id=member_id, discounts=tuple(discounts),
        lines=tuple(LineInput(paid_fen=p, sku=ln.sku, category=ln.category, qty=ln.qty,
                              unit_price_fen=ln.unit_price_fen, line_id=ln.line_id)
                    for ln, p in zip(data.lines, paid_lines, strict=True))))
    if result.replayed:
        raise Conflict(_("This order number is already in use."), code="order_exists")
    purchase = result.purchase
    earned = {pl.line_id: pl.points for pl in purchase.lines.all()}
    pending_lots = [e.lot for e in result.entries if e.lot is not None and e.lot.pending]
    due = paid - tendered
    receipt: dict[str, Any] = {
        "order_no": data.order_no, "channel": data.channel, "store": data.store, "at": purchase.at.isoformat(),
        "member_id": member_id, "tier": tier, "purchase_id": purchase.pk,
        "lines": [{
            "line_id": ln.line_id, "sku": ln.sku, "category": ln.category, "qty": ln.qty,
            "unit_price_fen": ln.unit_price_fen, "gross_fen": pl["gross_fen"],
            "tier_discount_fen": pl["tier_discount_fen"], "member_price_fen": pl["gross_fen"] - pl["tier_discount_fen"],
            "coupon_discount_fen": pl["coupon_discount_fen"], "coupons": pl["coupons"],
            "points_deduction_fen": share, "paid_fen": p, "points_earned": earned.get(ln.line_id, 0),
        } for ln, pl, share, p in zip(data.lines, (priced_lines[ln.line_id] for ln in data.lines), shares, paid_lines,
                                      strict=True)],
        "gross_fen": priced["goods_gross_fen"], "tier_discount_fen": priced["tier_discount_fen"],
        "member_price_fen": priced["goods_gross_fen"] - priced["tier_discount_fen"],
        "coupon_discount_fen": priced["coupon_discount_fen"],
        "coupons": [{"code": a["code"], "amount_fen": a["amount_fen"], "lines": a["lines"]} for a in priced["applied"]],
        "payable_fen": payable,
        "points": {"redeemed": data.points, "deduction_fen": deduction, "earned": purchase.points,
                   "pending": sum(lot.points for lot in pending_lots),
                   "available_at": pending_lots[0].available_at.isoformat() if pending_lots else None},
        "paid_fen": paid, "wallet": wallet_out, "gift_cards": cards_out, "due_fen": due,
        "tier_change": {"from": result.tier_change.from_tier, "to": result.tier_change.to_tier}
        if result.tier_change is not None and result.tier_change.from_tier != result.tier_change.to_tier else None,
    }
    Checkout.objects.create(
        channel=data.channel, order_no=data.order_no, member=member, store=store, purchase=purchase,
        fingerprint=fingerprint, coupon_codes=[a["code"] for a in priced["applied"]], points_redeemed=data.points,
        points_ref=points_ref, wallet_fen=data.wallet_fen,
        gift_cards=[{"code": c["code"], "amount_fen": c["amount_fen"]} for c in cards_out], paid_fen=paid,
        due_fen=due, receipt=receipt, created_by=actor.label, created_at=now)
    return {**receipt, "replayed": False}


# --- refunds ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckoutRefundInput:
    channel: str
    order_no: str
    refund_no: str
    lines: dict[str, int] | None = None  # line_id -> paid fen refunded; None = everything left
    reason: str = ""


def _refund_caps(checkout: Checkout) -> list[str]:
    caps: list[str] = [Cap.PURCHASES_WRITE]
    if checkout.coupon_codes:
        caps.append(Cap.COUPONS_REDEEM)
    if checkout.points_redeemed:
        caps.append(Cap.POINTS_REDEEM)
    if checkout.wallet_fen or checkout.gift_cards:
        caps.append(Cap.WALLET_SPEND)
    return caps


def _share(total: int, refunded: int, paid: int, whole: bool) -> int:
    """The cumulative part of `total` that `refunded` of `paid` stands for; all of it at the end."""
    if whole:
        return total
    return total * refunded // paid if paid else 0


def checkout_refund(*, actor: Principal, data: CheckoutRefundInput, now: datetime | None = None) -> dict[str, Any]:
    """Refund a checkout in whole or by line, every part in one transaction."""
    actor.require(Cap.PURCHASES_WRITE)
    now = now or timezone.now()
    if not data.refund_no.strip() or len(data.refund_no) > 80:
        raise ValidationFailed(_("A refund number is required."), code="refund_no_required")
    found = Checkout.objects.filter(channel=data.channel, order_no=data.order_no).first()
    if found is None or not store_scope.may_act_on_record(actor, found.store_id, None):
        raise NotFound(_("No such checkout."), code="checkout_not_found")
    actor.require(*_refund_caps(found))
    asked = {k: v for k, v in (data.lines or {}).items() if v}
    with transaction.atomic():
        if found.member_id is not None:
            ledger.account_lock(found.member_id)
        checkout = Checkout.objects.select_for_update().get(pk=found.pk)
        done = checkout.refunds.filter(refund_no=data.refund_no).first()
        if done is not None:
            if data.lines is not None and asked != done.lines:
                raise Conflict(_("This refund number was already used with different amounts."), code="refund_exists")
            return {**done.receipt, "replayed": True}
        before = checkout.refunds.aggregate(points=Sum("points_returned"), wallet=Sum("wallet_fen"))
        cards_before: dict[str, int] = {}
        for r in checkout.refunds.all():
            for code, fen in r.gift_cards.items():
                cards_before[code] = cards_before.get(code, 0) + fen
        refund = purchase_refund(actor=actor, now=now, data=RefundInput(
            channel=data.channel, order_no=data.order_no, refund_no=data.refund_no, lines=data.lines,
            reason=data.reason))
        purchase = Purchase.objects.get(pk=checkout.purchase_id)
        whole = purchase.refunded_fen >= purchase.paid_fen

        points_back = _share(checkout.points_redeemed, purchase.refunded_fen, purchase.paid_fen, whole) \
            - (before["points"] or 0)
        if points_back > 0 and checkout.member_id is not None:
            points_return(actor=actor, member_id=checkout.member_id, points=points_back,
                          reason=f"refund {data.refund_no} of {data.order_no}",
                          reference=f"{checkout.points_ref}:refund:{data.refund_no}"[:120],
                          spend_reference=checkout.points_ref, now=now)
        wallet_back = _share(checkout.wallet_fen, purchase.refunded_fen, purchase.paid_fen, whole) \
            - (before["wallet"] or 0)
        wallet_out = None
        if wallet_back > 0 and checkout.member_id is not None:
            move = wallet_refund(actor=actor, member_id=checkout.member_id, order_no=data.order_no,
                                 amount_fen=wallet_back, refund_no=data.refund_no, now=now)
            wallet_out = {"amount_fen": wallet_back, "principal_fen": move.principal_fen, "bonus_fen": move.bonus_fen}
        cards_back: dict[str, int] = {}
        for card in checkout.gift_cards:
            back = _share(card["amount_fen"], purchase.refunded_fen, purchase.paid_fen, whole) \
                - cards_before.get(card["code"], 0)
            if back > 0:
                gift_card_refund(actor=actor, code=card["code"], order_no=data.order_no, amount_fen=back,
                                 refund_no=data.refund_no, now=now)
                cards_back[card["code"]] = back
        coupons_out: list[dict[str, Any]] = []
        if checkout.coupon_codes:
            full = None if whole else [ln.line_id for ln in purchase.lines.all()
                                       if ln.paid_fen and ln.refunded_fen >= ln.paid_fen]
            coupons_out = coupons_restore_for_refund(channel=data.channel, order_no=data.order_no, now=now,
                                                     refunded_line_ids=full, actor=actor, refund_ref=data.refund_no)
        tenders = (wallet_out or {}).get("amount_fen", 0) + sum(cards_back.values())
        receipt = {
            "order_no": data.order_no, "channel": data.channel, "refund_no": data.refund_no,
            "amount_fen": refund.amount_fen, "lines": refund.lines, "whole": whole,
            "points_clawed_back": refund.points, "points_settlement": refund.settlement, "points_returned": points_back,
            "coupons": coupons_out, "wallet": wallet_out,
            "gift_cards": [{"code": c, "amount_fen": f} for c, f in cards_back.items()],
            "due_fen": refund.amount_fen - tenders, "at": now.isoformat(),
        }
        CheckoutRefund.objects.create(checkout=checkout, refund_no=data.refund_no, lines=refund.lines,
                                      amount_fen=refund.amount_fen, points_returned=max(points_back, 0),
                                      wallet_fen=max(wallet_back, 0), gift_cards=cards_back, receipt=receipt,
                                      created_by=actor.label, at=now)
    return {**receipt, "replayed": False}
