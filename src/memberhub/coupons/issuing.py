"""Issuing coupons: to one member, in bulk chunks, as bearer codes, by claim code, for points.

Every path goes through ``_issue_chunk``: it locks the members (pk order), reads the counts,
asks ``coupon_issue_check``, then claims the quantity with a conditional UPDATE on the
template (``issued_count + n <= total_quantity``) so concurrent issuers can never overrun it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from memberhub.coupons import seams
from memberhub.coupons.models import Coupon, CouponTemplate, IssueBatch
from memberhub.coupons.templates import template_get, template_to_domain
from memberhub.domain import coupon_rules as rules
from memberhub.domain.coupon_codes import code_normalize, codes_generate
from memberhub.members.models import Member

log = logging.getLogger("memberhub.coupons")
LIVE = (Member.Status.ACTIVE, Member.Status.FROZEN)

_ISSUE_MESSAGES = {
    "member_limit_reached": _("The member already has as many of these coupons as allowed."),
    "sold_out": _("All of these coupons have been issued."),
    "budget_exhausted": _("This coupon campaign's budget is used up."),
    "template_inactive": _("This coupon template is not active."),
    "template_ended": _("This coupon campaign has ended."),
    "member_not_found": _("No such member."),
    "member_not_live": _("This member was erased or merged."),
}


class IssueRefused(ApplicationError):
    status = 409
    code = "issue_refused"


def issue_error(code: str, params: dict[str, Any] | None = None) -> IssueRefused:
    status = 404 if code == "member_not_found" else 409
    return IssueRefused(_ISSUE_MESSAGES.get(code), code=code, status=status, detail=params or {})


@dataclass
class IssueOutcome:
    coupons: list[Coupon] = field(default_factory=list)
    failures: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # member_id -> (code, params)


def _window(template: CouponTemplate, now: datetime) -> rules.ValidityWindow | str:
    if not template.is_active:
        return "template_inactive"
    try:
        window = rules.coupon_validity_window(template=template_to_domain(template), issued_at=timezone.localtime(now))
    except rules.CouponTemplateInvalid:
        return "template_ended"
    if window.valid_until <= now:
        return "template_ended"
    return window


def _claim_quantity(template: CouponTemplate, n: int) -> int:
    """Claim up to ``n`` from the template's total quantity; returns how many were claimed."""
    while n > 0:
        claimed = CouponTemplate.objects.filter(
            Q(total_quantity__isnull=True) | Q(total_quantity__gte=F("issued_count") + n), pk=template.pk
        ).update(issued_count=F("issued_count") + n)
        if claimed:
            return n
        left = CouponTemplate.objects.filter(pk=template.pk).values_list("total_quantity", "issued_count").get()
        n = min(n, max(0, (left[0] or 0) - left[1]))
    return 0


def _new_coupons(template: CouponTemplate, specs: list[dict[str, Any]], window: rules.ValidityWindow,
                 now: datetime, batch: IssueBatch | None) -> list[Coupon]:
    for _attempt in range(5):  # a code collision with an existing coupon is ~1e-13 per code; retry anyway
        codes = codes_generate(count=len(specs))
        rows = [Coupon(template=template, code=code, uses_total=template.uses_per_coupon,
                       uses_left=template.uses_per_coupon, valid_from=window.valid_from,
                       valid_until=window.valid_until, issued_at=now, batch=batch, **spec)
                for code, spec in zip(codes, specs, strict=True)]
        try:
            with transaction.atomic():
                return Coupon.objects.bulk_create(rows)
        except IntegrityError:
            if any(s.get("source_ref") for s in specs) and len(specs) == 1 and Coupon.objects.filter(
                    template=template, source_ref=specs[0]["source_ref"]).exists():
                return []  # already issued for this event: nothing to do
    raise Conflict(_("Could not allocate coupon codes; try again."), code="code_allocation_failed")


def _issue_chunk(*, template: CouponTemplate, member_ids: list[int], quantity: int, source: str, now: datetime,
                 batch: IssueBatch | None = None, source_ref: str | None = None) -> IssueOutcome:
    """Issue ``quantity`` coupons to each member; call inside a transaction."""
    out = IssueOutcome()
    window = _window(template, now)
    if isinstance(window, str):
        out.failures = {m: (window, {}) for m in member_ids}
        return out
    members = {m.pk: m for m in Member.objects.select_for_update().filter(pk__in=member_ids).order_by("pk")}
    held = dict(Coupon.objects.filter(template=template, member_id__in=list(members))
                .values("member").annotate(n=Count("pk")).values_list("member", "n"))
    domain = template_to_domain(template)
    eligible: list[int] = []
    for member_id in member_ids:
        member = members.get(member_id)
        if member is None:
            out.failures[member_id] = ("member_not_found", {})
        elif member.status not in LIVE:
            out.failures[member_id] = ("member_not_live", {})
        elif refusal := rules.coupon_issue_check(template=domain, issued_to_member=held.get(member_id, 0),
                                                 issued_total=0, budget_spent_fen=template.budget_spent_fen,
                                                 quantity=quantity):
            out.failures[member_id] = (str(refusal.code), dict(refusal.params))
        else:
            eligible.append(member_id)
    claimed = _claim_quantity(template, len(eligible) * quantity) // quantity
    _claim_quantity_unused = len(eligible) * quantity - claimed * quantity
    if _claim_quantity_unused:  # partly claimed (the last few): give the remainder back
        CouponTemplate.objects.filter(pk=template.pk).update(issued_count=F("issued_count") - _claim_quantity_unused)
    for member_id in eligible[claimed:]:
        out.failures[member_id] = ("sold_out", {"total_quantity": template.total_quantity or 0})
    specs = [{"member_id": m, "source": source, "source_ref": source_ref} for m in eligible[:claimed] for _ in range(quantity)]
    if specs:
        out.coupons = _new_coupons(template, specs, window, now, batch)
    return out


def coupon_issue(*, actor: Principal, template_id: int, member_id: int, quantity: int = 1,
                 source: str = Coupon.Source.MANUAL, source_ref: str | None = None, reason: str = "",
                 now: datetime | None = None) -> list[Coupon]:
    """Issue to one member; refusals raise (409) with the domain's numbers."""
    actor.require(Cap.COUPONS_ISSUE)
    return _issue_to_member(actor=actor, template_id=template_id, member_id=member_id, quantity=quantity,
                            source=source, source_ref=source_ref, reason=reason, now=now)


def _issue_to_member(*, actor: Principal, template_id: int, member_id: int, quantity: int = 1,
                     source: str = Coupon.Source.MANUAL, source_ref: str | None = None, reason: str = "",
                     now: datetime | None = None) -> list[Coupon]:
    if not 1 <= quantity <= 100:
        raise ValidationFailed(_("quantity must be between 1 and 100."), code="invalid_quantity")
    now = now or timezone.now()
    with transaction.atomic():
        template = template_get(template_id=template_id)
        member = Member.objects.filter(pk=member_id).only("home_store_id").first()
        if member is None or not actor.sees_store(member.home_store_id):
            raise issue_error("member_not_found")
        out = _issue_chunk(template=template, member_ids=[member_id], quantity=quantity, source=source, now=now,
                           source_ref=source_ref)
        if member_id in out.failures:
            code, params = out.failures[member_id]
            raise issue_error(code, params)
        audit_record(actor=actor, action="coupon.issue", target=template, reason=reason,
                     after={"member_id": member_id, "codes": [c.code for c in out.coupons], "source": source})
    return out.coupons


def coupon_exchange_for_points(*, actor: Principal, template_id: int, member_id: int,
                               now: datetime | None = None) -> Coupon:
    """积分兑券: the points and the coupon commit together or not at all."""
    actor.require(Cap.REWARDS_EXCHANGE)
    now = now or timezone.now()
    with transaction.atomic():
        template = template_get(template_id=template_id)
        if template.points_price is None:
            raise Conflict(_("This coupon cannot be exchanged for points."), code="not_exchangeable")
        [coupon] = _issue_to_member(actor=actor, template_id=template_id, member_id=member_id,
                                    source=Coupon.Source.POINTS, now=now)
        seams.points_spend_for(member_id=member_id, points=template.points_price,
                               reason=f"coupon:{template.pk}", ref=f"coupon:{coupon.code}")
    return coupon


def coupon_claim(*, actor: Principal, code: str, member_id: int, now: datetime | None = None) -> Coupon:
    """领券: a public claim code issues a new coupon; a bearer coupon code is bound to the member."""
    actor.require(Cap.COUPONS_ISSUE)
    now = now or timezone.now()
    normalized = code_normalize(code)
    with transaction.atomic():
        template = CouponTemplate.objects.filter(claim_code=normalized).first()
        if template is not None:
            [coupon] = _issue_to_member(actor=actor, template_id=template.pk, member_id=member_id,
                                        source=Coupon.Source.CLAIM, now=now)
            return coupon
        found = Coupon.objects.filter(code=normalized).first()
        if found is None:
            raise NotFound(_("No coupon has this code."), code="coupon_not_found")
        coupon = found
        member = Member.objects.filter(pk=member_id, status__in=LIVE).first()
        if member is None or not actor.sees_store(member.home_store_id):
            raise issue_error("member_not_found")
        if coupon.member_id == member_id:
            return coupon
        bound = Coupon.objects.filter(pk=coupon.pk, member__isnull=True, status=Coupon.Status.AVAILABLE).update(
            member_id=member_id)
        if not bound:
            raise Conflict(_("This code has already been claimed."), code="already_claimed")
        audit_record(actor=actor, action="coupon.claim", target=coupon, after={"member_id": member_id})
        coupon.refresh_from_db()
    return coupon


def coupon_revoke(*, actor: Principal, coupon_id: int, reason: str) -> Coupon:
    actor.require(Cap.COUPONS_ISSUE)
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update().filter(pk=coupon_id).first()
        # the member's coupon is the member's store's; a bearer coupon belongs to no store
        if coupon is None or (actor.store_ids is not None and (coupon.member_id is None or not store_scope.may_act_on_member(
                actor, Member.objects.filter(pk=coupon.member_id).values_list("home_store_id", flat=True).first()))):
            raise NotFound(_("No such coupon."), code="coupon_not_found")
        if coupon.status != Coupon.Status.AVAILABLE:
            raise Conflict(_("Only an available coupon can be revoked."), code="coupon_not_available",
                           detail={"status": coupon.status})
        coupon.status, coupon.revoked_at = Coupon.Status.REVOKED, timezone.now()
        coupon.save(update_fields=["status", "revoked_at"])
        audit_record(actor=actor, action="coupon.revoke", target=coupon, reason=reason,
                     before={"status": "available"}, after={"status": coupon.status})
    return coupon


# --- background batches -----------------------------------------------------------------------

CHUNK = 500
CODE_CHUNK = 20_000


def batch_create(*, actor: Principal, template_id: int, kind: str, member_ids: list[int] | None = None,
                 count: int = 0, prefix: str = "", length: int = 10) -> IssueBatch:
    actor.require(Cap.COUPONS_ISSUE)
    from memberhub.coupons.tasks import issue_batch_run_task

    store_scope_batch_check(actor, kind, member_ids or [])

    with transaction.atomic():
        template = template_get(template_id=template_id)
        if kind == IssueBatch.Kind.MEMBERS:
            ids = list(dict.fromkeys(member_ids or []))
            batch = IssueBatch.objects.create(template=template, kind=kind, total=len(ids), member_ids=ids,
                                              created_by=actor.label)
        else:
            prefix = code_normalize(prefix)
            codes_generate(count=0, length=length, prefix=prefix, existing=())  # validates the spec (422)
            batch = IssueBatch.objects.create(template=template, kind=kind, total=count, prefix=prefix,
                                              code_length=length, created_by=actor.label)
        audit_record(actor=actor, action="coupon.batch_create", target=batch,
                     after={"template_id": template.pk, "kind": kind, "total": batch.total})
        transaction.on_commit(lambda: issue_batch_run_task(batch.pk))
    return batch


def store_scope_batch_check(actor: Principal, kind: str, member_ids: list[int]) -> None:
    """Bearer codes are the chain's (anyone may redeem them anywhere): a store-scoped caller
    neither makes nor reads them. A batch to members is its store's when every member is."""
    if actor.store_ids is None:
        return
    if kind != IssueBatch.Kind.MEMBERS:
        raise PermissionDenied(code="store_scope_too_narrow")
    ids = set(member_ids)
    if Member.objects.filter(pk__in=ids, home_store_id__in=actor.store_ids).count() != len(ids):
        raise NotFound(_("No such member."), code="member_not_found")


def issue_batch_run(*, batch_id: int) -> IssueBatch:
    """Run (or resume) a batch chunk by chunk; each chunk commits with its progress."""
    batch = IssueBatch.objects.get(pk=batch_id)
    if batch.status in (IssueBatch.Status.DONE, IssueBatch.Status.FAILED):
        return batch
    IssueBatch.objects.filter(pk=batch.pk).update(status=IssueBatch.Status.RUNNING)
    try:
        if batch.kind == IssueBatch.Kind.MEMBERS:
            _run_members(batch)
        else:
            _run_codes(batch)
        IssueBatch.objects.filter(pk=batch.pk).update(status=IssueBatch.Status.DONE, finished_at=timezone.now())
    except Exception as exc:  # recorded on the batch for the operator, and logged
        log.exception("issue batch %s failed", batch.pk)
        IssueBatch.objects.filter(pk=batch.pk).update(status=IssueBatch.Status.FAILED, error=str(exc)[:2000],
                                                      finished_at=timezone.now())
    batch.refresh_from_db()
    return batch


def _run_members(batch: IssueBatch) -> None:
    ids = batch.member_ids
    start = batch.done + batch.failed  # resume where a crashed run stopped
    for i in range(start, len(ids), CHUNK):
        chunk = ids[i: i + CHUNK]
        with transaction.atomic():
            template = CouponTemplate.objects.get(pk=batch.template_id)
            out = _issue_chunk(template=template, member_ids=chunk, quantity=1, source=Coupon.Source.BULK,
                               now=timezone.now(), batch=batch)
            failures = Counter(code for code, _params in out.failures.values())
            locked = IssueBatch.objects.select_for_update().get(pk=batch.pk)
            locked.done += len(chunk) - len(out.failures)
            locked.failed += len(out.failures)
            for code, n in failures.items():
                locked.failures[code] = locked.failures.get(code, 0) + n
            locked.save(update_fields=["done", "failed", "failures"])


def _run_codes(batch: IssueBatch) -> None:
    """Bearer coupons with fresh codes, unique across every coupon.

    Rows go in with one multi-row INSERT per chunk (no model instances: 1,000,000 codes must
    take well under a minute). A clash with an existing code (~1e-13 per code) fails the
    chunk's savepoint and the chunk is drawn again; the UNIQUE index is the judge.
    """
    done = batch.done
    while done < batch.total:
        n = min(batch.total - done, CODE_CHUNK)
        with transaction.atomic():
            template = CouponTemplate.objects.get(pk=batch.template_id)
            window = _window(template, timezone.now())
            if isinstance(window, str):
                raise Conflict(_ISSUE_MESSAGES[window], code=window)
            if _claim_quantity(template, n) < n:
                raise issue_error("sold_out", {"total_quantity": template.total_quantity or 0})
            _insert_codes(template, batch, n, window)
            done += n
            IssueBatch.objects.filter(pk=batch.pk).update(done=done)


def _insert_codes(template: CouponTemplate, batch: IssueBatch, n: int, window: rules.ValidityWindow) -> None:
    ops = connection.ops
    now = timezone.now()
    fixed = (template.pk, None, Coupon.Status.AVAILABLE, template.uses_per_coupon, template.uses_per_coupon,
             ops.adapt_datetimefield_value(window.valid_from), ops.adapt_datetimefield_value(window.valid_until),
             ops.adapt_datetimefield_value(now), Coupon.Source.CODE, batch.pk)
    table = Coupon._meta.db_table
    columns = ("code, template_id, member_id, status, uses_total, uses_left, valid_from, valid_until, issued_at, "
               "source, batch_id")
    for _attempt in range(5):
        codes = codes_generate(count=n, length=batch.code_length, prefix=batch.prefix)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":  # COPY: several times faster than executemany
                    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for code in codes:
                            copy.write_row((code, *fixed))
                else:
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * 11)})",
                                       [(code, *fixed) for code in codes])
            return
        except (IntegrityError, connection.Database.IntegrityError):  # type: ignore[attr-defined]
            continue
    raise Conflict(_("Could not allocate coupon codes; try again."), code="code_allocation_failed")
