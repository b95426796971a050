"""Purchases and refunds: recording an order earns its points once; a refund takes back
what the refunded part earned. Each service owns one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core import events, rows
from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.domain.member_status import Act
from memberhub.domain.points_refund import EarnedLine, refund_clawback, whole_refund
from memberhub.domain.points_rules import OrderLine, Rounding, earn_points
from memberhub.loyalty import ledger
from memberhub.loyalty.members import member_id_resolve, member_resolve
from memberhub.loyalty.models import PointsAccount, Purchase, PurchaseLine, Refund
from memberhub.loyalty.programme import Rules, rules_current
from memberhub.loyalty.tiering import tier_fact_from, tier_fact_read, tier_on_purchase, tier_upgrade_possible
from memberhub.members.models import Member
from memberhub.stores.models import Store


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 2.5× (an import makes one per row)
class LineInput:
    paid_fen: int
    sku: str = ""
    category: str = ""
    qty: int = 1
    unit_price_fen: int | None = None
    line_id: str | None = None


@dataclass(frozen=True)
class PurchaseInput:
    channel: str
    order_no: str
    paid_fen: int
    at: datetime | None = None
    lines: tuple[LineInput, ...] = ()
    store: str | None = None  # store code
    member_id: int | None = None
    member_key: str | None = None  # phone, card code or member number
    discounts: tuple[dict[str, Any], ...] = ()
    external_ref: str = ""


@dataclass
class PurchaseResult:
    purchase: Purchase
    replayed: bool = False
    entries: list[Any] = field(default_factory=list)
    tier_change: Any = None
    lines: list[PurchaseLine] | None = None  # as written (None on a replay: read them)
    store_code: str | None = None


_STORE_SQL = f'SELECT "id" FROM "{Store._meta.db_table}" WHERE "code" = %s'


def _store_id(actor: Principal, code: str | None) -> int | None:
    if code is None:
        if actor.store_ids is not None:
            raise ValidationFailed(_("Name the store of the purchase."), code="store_required")
        return None
    found = rows.one(_STORE_SQL, [code])
    if found is None:
        raise ValidationFailed(_("Unknown store."), code="store_not_found", detail={"store": code})
    actor.require_store(found[0])
    return found[0]


def _programme_start() -> datetime:
    """The earliest purchase time: the programme's `starts_on`, else MEMBERHUB_PROGRAMME_START,
    at midnight in the programme's time zone."""
    from zoneinfo import ZoneInfo

    rules = rules_current()
    day = rules.config.starts_on or settings.PROGRAMME_START
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(rules.timezone))


def purchase_validate(data: PurchaseInput, *, now: datetime) -> tuple[datetime, list[LineInput]]:
    if data.channel not in Purchase.Channel.values:
        raise ValidationFailed(_("Unknown channel."), code="invalid_channel", detail={"allowed": Purchase.Channel.values})
    if not data.order_no.strip():
        raise ValidationFailed(_("An order number is required."), code="order_no_required")
    at = data.at or now
    if at.tzinfo is None:
        raise ValidationFailed(_("Times must carry a timezone."), code="naive_datetime")
    if at > now + timedelta(seconds=settings.PURCHASE_CLOCK_SKEW_SECONDS):  # till clocks drift, a little
        raise ValidationFailed(_("The purchase time is in the future."), code="purchase_in_future")
    if at < _programme_start():
        raise ValidationFailed(_("The purchase time is before the programme started."), code="purchase_before_start",
                               detail={"starts_on": _programme_start().date().isoformat()})
    if not 0 <= data.paid_fen <= settings.MAX_AMOUNT_FEN:
        raise ValidationFailed(_("The amount is not valid."), code="invalid_amount",
                               detail={"max_fen": settings.MAX_AMOUNT_FEN})
    lines = list(data.lines) or [LineInput(paid_fen=data.paid_fen, unit_price_fen=data.paid_fen)]
    ids = [line.line_id or str(i) for i, line in enumerate(lines, start=1)]
    if len(set(ids)) != len(ids):
        raise ValidationFailed(_("Line ids must be unique within the order."), code="duplicate_line_id")
    for line in lines:
        if not (0 <= line.paid_fen <= settings.MAX_AMOUNT_FEN and 0 <= line.qty <= 1_000_000
                and 0 <= (line.unit_price_fen or 0) <= settings.MAX_AMOUNT_FEN):
            raise ValidationFailed(_("The amount is not valid."), code="invalid_amount")
    if sum(line.paid_fen for line in lines) != data.paid_fen:
        raise ValidationFailed(_("The lines' paid amounts do not add up to the total paid."),
                               code="paid_total_mismatch",
                               detail={"paid_fen": data.paid_fen, "lines_paid_fen": sum(line.paid_fen for line in lines)})
    return at, [LineInput(line.paid_fen, line.sku, line.category, line.qty,
                          line.paid_fen if line.unit_price_fen is None and line.qty == 1 else (line.unit_price_fen or 0),
                          ids[i]) for i, line in enumerate(lines)]


def _replay(existing: Purchase, member_id: int | None, paid_fen: int, actor: Principal) -> PurchaseResult:
    home = Member.objects.filter(pk=existing.member_id).values_list("home_store_id", flat=True).first() \
        if actor.store_ids is not None and existing.member_id is not None else None
    if not store_scope.may_read_record(actor, existing.store_id, home):
        # another store's order: the number is taken, and nothing else about it is said
        raise Conflict(_("This order number was already recorded with different details."), code="order_exists")
    if existing.member_id != member_id or existing.paid_fen != paid_fen:
        raise Conflict(_("This order number was already recorded with different details."), code="order_exists",
                       detail={"purchase_id": existing.pk})
    return PurchaseResult(existing, replayed=True)


def earn_compute(*, account: PointsAccount, purchase: Purchase, lines: list[PurchaseLine], rules: Rules) -> Any:
    """The order's points on what was paid, with the member's tier multiplier (set on the
    purchase and its lines; nothing is written)."""
    benefits = rules.benefits_for(account.tier)
    result = earn_points(rules=rules.earn, at=purchase.at, tier_code=account.tier,
                         tier_multiplier=benefits.points_multiplier,
                         lines=[OrderLine(line.line_id, line.sku, line.category, line.paid_fen) for line in lines])
    by_id = {earn.line_id: earn for earn in result.lines}
    for line in lines:
        line.points, line.rounding = by_id[line.line_id].points, by_id[line.line_id].rounding.value
    purchase.points, purchase.earned = result.points, True
    return result


_channel_labels: dict[tuple[str | None, str], str] = {}


def _channel_label(channel: str) -> str:
    """`get_channel_display()` without its per-call choices lookup and lazy translation."""
    key = (get_language(), channel)
    label = _channel_labels.get(key)
    if label is None:
        label = _channel_labels[key] = str(Purchase.Channel(channel).label)
    return label


def _earn_terms(purchase: Purchase, rules: Rules, actor: str) -> tuple[ledger.LotTerms, ledger.Why]:
    terms = ledger.lot_terms(rules=rules, earned_at=purchase.at, pending_days=rules.return_window_days)
    why = ledger.Why(rule="purchase", purchase=purchase, actor=actor,
                     reason=f"{_channel_label(purchase.channel)} {purchase.order_no}")
    return terms, why


def earn_credit(*, account: PointsAccount, purchase: Purchase, result: Any, rules: Rules, now: datetime,
                actor: str) -> list[Any]:
    """Book computed points as one pending lot (after refilling an overdraft and debt)."""
    terms, why = _earn_terms(purchase, rules, actor)
    return ledger.credit(account, result.points, kind=ledger.Kind.EARN, at=purchase.at, now=now, terms=terms,
                         why=why, trace=result.trace, earned=True)


def earn_book(*, account: PointsAccount, purchase: Purchase, lines: list[PurchaseLine], rules: Rules,
              now: datetime, actor: str) -> list[Any]:
    """Compute the order's points on what was paid and book them as one pending lot."""
    result = earn_compute(account=account, purchase=purchase, lines=lines, rules=rules)
    return earn_credit(account=account, purchase=purchase, result=result, rules=rules, now=now, actor=actor)


def _tier_checked_at(now: datetime, clock: bool) -> datetime:
    """When the time is the clock's, the upgrade check is made as of a moment taken under the
    account's lock, not the request's start: a purchase another till began a moment later
    but committed first (its time later than this request's start) then counts, so the
    purchase that completes a tier upgrades at once. A `now` given by the caller is kept."""
    return timezone.now() if clock else now


def purchase_record(*, actor: Principal, data: PurchaseInput, now: datetime | None = None) -> PurchaseResult:
    """Record a purchase (once per channel and order number) and earn its points.

    The same order again answers the first result (`replayed`); with different details 409.

    The till's hot path: everything that needs no lock (validation, store, member, rules,
    the points themselves) is done before the transaction, which then writes the purchase
    with its points already computed (`INSERT … ON CONFLICT DO NOTHING` tells a replay),
    its lines in one statement, the lot, the entry and one relative UPDATE of the account
    (on PostgreSQL, when the points are one new lot, all of these in one statement)."""
    actor.require(Cap.PURCHASES_WRITE)
    clock = now is None
    now = now or timezone.now()
    at, lines_in = purchase_validate(data, now=now)
    store_id = _store_id(actor, data.store)
    # by id, the member is checked with its account's lock (one read); by key, found first
    member_id = data.member_id if data.member_id is not None else \
        member_resolve(key=data.member_key, actor=actor).pk if data.member_key else None
    rules = rules_current()
    purchase = rows.new(
        Purchase, member_id=member_id, channel=data.channel, order_no=data.order_no, store_id=store_id, at=at,
        total_fen=sum(line.qty * (line.unit_price_fen or 0) for line in lines_in) or data.paid_fen,
        paid_fen=data.paid_fen, discounts=list(data.discounts), external_ref=data.external_ref,
        recorded_by=actor.label,
    )
    lines = [rows.new(PurchaseLine, line_id=line.line_id or "", sku=line.sku, category=line.category,
                      qty=line.qty, unit_price_fen=line.unit_price_fen or 0, paid_fen=line.paid_fen) for line in lines_in]
    entries: list[Any] = []
    change = None
    with rows.writing():
        account = None
        if data.member_id is not None:
            account = ledger.account_lock_live(data.member_id)
            if account is None:  # no account yet, or a merged (→ survivor), erased or unknown member
                member_id = purchase.member_id = member_id_resolve(member_id=member_id)
                account = ledger.account_lock_resolved(member_id, Act.PURCHASE)  # a frozen member: 409
        elif member_id is not None:
            account = ledger.account_lock_resolved(member_id, Act.PURCHASE)
        checked_at = _tier_checked_at(now, clock)
        earned = earn_compute(account=account, purchase=purchase, lines=lines, rules=rules) \
            if account is not None else None
        # PostgreSQL, a plain earn: purchase, lines, lot, entry, account (and the tier's totals) in one statement
        linked = ledger.Linked(False)
        fact = None
        if account is not None and earned is not None:
            terms, why = _earn_terms(purchase, rules, actor.label)
            read = tier_fact_read(member_id=account.member_id, ladder=rules.ladder, at=checked_at) \
                if tier_upgrade_possible(account=account, rules=rules) else None
            linked = ledger.credit_with_purchase(account, purchase, lines, earned.points, at=purchase.at, now=now,
                                                 terms=terms, why=why, trace=earned.trace, read=read)
            if linked.read is not None:  # the read saw the window without this purchase
                fact = tier_fact_from(linked.read, ladder=rules.ladder, at=checked_at, unseen=purchase)
        written, booked = linked.written, linked.entries
        if (written and booked is None) or (not written and not rows.insert(purchase, conflict=("channel", "order_no"))):
            # recorded before (or just now by a twin, which the INSERT waited for)
            existing = Purchase.objects.filter(channel=data.channel, order_no=data.order_no).first()
            if existing is None:
                raise Conflict(_("The purchase changed meanwhile; try again."), code="purchase_concurrent_change")
            return _replay(existing, member_id, data.paid_fen, actor)
        if not written:
            for line in lines:
                line.purchase = purchase
            rows.insert_many(lines)
        if account is not None and earned is not None:
            # the terms and reasons computed above, once (the usual way is SQLite's every time)
            entries = booked if booked is not None else \
                ledger.credit(account, earned.points, kind=ledger.Kind.EARN, at=purchase.at, now=now, terms=terms,
                              why=why, trace=earned.trace, earned=True)
            change = tier_on_purchase(account=account, rules=rules, now=checked_at, actor=actor.label, fact=fact)
        events.emit(events.PURCHASE_RECORDED, purchase_id=purchase.pk, member_id=member_id, points=purchase.points)
    return PurchaseResult(purchase, entries=entries, tier_change=change, lines=lines, store_code=data.store)


@dataclass(frozen=True)
class RefundInput:
    channel: str
    order_no: str
    refund_no: str
    lines: dict[str, int] | None = None  # line_id -> fen; None = everything still refundable
    at: datetime | None = None
    reason: str = ""


def purchase_refund(*, actor: Principal, data: RefundInput, now: datetime | None = None) -> Refund:
    """Refund a purchase in whole or by line; the points its refunded part earned are taken back.

    The same refund number again answers the first refund (with different amounts 409)."""
    actor.require(Cap.PURCHASES_WRITE)
    now = now or timezone.now()
    if not data.refund_no.strip():
        raise ValidationFailed(_("A refund number is required."), code="refund_no_required")
    found = Purchase.objects.filter(channel=data.channel, order_no=data.order_no).first()
    if found is None:
        raise NotFound(_("No such purchase."), code="purchase_not_found")
    if found.store_id is not None:
        actor.require_store(found.store_id)
    elif actor.store_ids is not None:
        raise NotFound(_("No such purchase."), code="purchase_not_found")
    rules = rules_current()
    with transaction.atomic():
        account = ledger.account_lock(found.member_id) if found.member_id else None
        purchase = Purchase.objects.select_for_update(of=("self",)).get(pk=found.pk)
        if purchase.member_id != found.member_id:
            raise Conflict(_("The purchase changed meanwhile; try again."), code="purchase_concurrent_change")
        existing = Refund.objects.filter(purchase=purchase, refund_no=data.refund_no).first()
        if existing is not None:
            if data.lines is not None and {k: v for k, v in data.lines.items() if v} != existing.lines:
                raise Conflict(_("This refund number was already used with different amounts."), code="refund_exists")
            return existing
        lines = list(purchase.lines.all())
        earned = [EarnedLine(line.line_id, line.paid_fen, line.points, Rounding(line.rounding), line.refunded_fen,
                             line.clawed_back) for line in lines]
        amounts = dict(data.lines) if data.lines is not None else whole_refund(lines=earned)
        claw = refund_clawback(lines=earned, refund_fen=amounts)
        total = sum(amounts.values())
        if total <= 0:
            raise ValidationFailed(_("There is nothing left to refund."), code="nothing_to_refund")
        at = data.at or now
        refund = Refund.objects.create(
            purchase=purchase, refund_no=data.refund_no, at=at, amount_fen=total,
            whole=purchase.refunded_fen + total == purchase.paid_fen, lines={k: v for k, v in amounts.items() if v},
            points=claw.points, recorded_by=actor.label,
        )
        by_id = {line.line_id: line for line in lines}
        for c in claw.lines:
            line = by_id[c.line_id]
            if PurchaseLine.objects.filter(pk=line.pk, refunded_fen=line.refunded_fen).update(
                    refunded_fen=c.refunded_fen_total, clawed_back=c.clawed_back_total) != 1:
                raise Conflict(_("The purchase changed meanwhile; try again."), code="purchase_concurrent_change")
        Purchase.objects.filter(pk=purchase.pk).update(refunded_fen=F("refunded_fen") + total,
                                                       clawed_back=F("clawed_back") + claw.points)
        settlement: dict[str, int] = {}
        if account is not None and claw.points:
            ledger.housekeep(account, now)
            why = ledger.Why(rule="refund", purchase=purchase, refund=refund, actor=actor.label,
                             reason=f"refund {data.refund_no} of {purchase.order_no}")
            settle = ledger.clawback(account, claw.points, kind=ledger.Kind.REVERSE, now=now, why=why,
                                     max_negative=rules.max_negative, purchase=purchase)
            settlement = {"from_pending": settle.from_pending, "from_balance": settle.from_balance,
                          "into_negative": settle.into_negative, "debt": settle.debt}
            Refund.objects.filter(pk=refund.pk).update(settlement=settlement)
            refund.settlement = settlement
        audit_record(actor=actor, action="loyalty.refund", target=refund, reason=data.reason,
                     after={"order_no": purchase.order_no, "channel": purchase.channel, "amount_fen": total,
                            "points": claw.points, **settlement})
    return refund


def purchase_claim(*, actor: Principal, channel: str, order_no: str, paid_fen: int, member_id: int | None = None,
                   member_key: str | None = None, now: datetime | None = None) -> PurchaseResult:
    """A member claims an anonymous purchase from its receipt (补登), within `claim_days`.

    The paid amount must match the receipt: it is what proves the claimant holds it."""
    actor.require(Cap.PURCHASES_WRITE)
    clock = now is None
    now = now or timezone.now()
    member = member_resolve(member_id=member_id, key=member_key, actor=actor)
    rules = rules_current()
    found = Purchase.objects.filter(channel=channel, order_no=order_no).first()
    # a receipt of another store (or of none, for a store-scoped caller) answers as a missing one
    if found is None or found.paid_fen != paid_fen or not store_scope.may_act_on_store(actor, found.store_id):
        raise NotFound(_("No such purchase."), code="purchase_not_found")
    if found.member_id == member.pk:
        return PurchaseResult(found, replayed=True)
    if found.member_id is not None:
        raise Conflict(_("This purchase already belongs to a member."), code="purchase_already_claimed")
    if now - found.at > timedelta(days=rules.claim_days):
        raise Conflict(_("This purchase is too old to be claimed."), code="claim_window_over",
                       detail={"claim_days": rules.claim_days})
    if found.refunded_fen:
        raise Conflict(_("A refunded purchase cannot be claimed."), code="purchase_refunded")
    with transaction.atomic():
        account = ledger.account_lock_resolved(member.pk, Act.EARN)
        purchase = Purchase.objects.select_for_update(of=("self",)).get(pk=found.pk)
        if purchase.member_id is not None or purchase.refunded_fen:
            raise Conflict(_("This purchase already belongs to a member."), code="purchase_already_claimed")
        purchase.member = member
        lines = list(purchase.lines.all())
        entries = earn_book(account=account, purchase=purchase, lines=lines, rules=rules, now=now, actor=actor.label)
        Purchase.objects.filter(pk=purchase.pk).update(member=member, points=purchase.points, earned=True)
        PurchaseLine.objects.bulk_update(lines, ["points", "rounding"])
        change = tier_on_purchase(account=account, rules=rules, now=_tier_checked_at(now, clock), actor=actor.label)
        audit_record(actor=actor, action="loyalty.claim", target=purchase,
                     after={"member_id": member.pk, "order_no": order_no, "points": purchase.points})
    return PurchaseResult(purchase, entries=entries, tier_change=change)
