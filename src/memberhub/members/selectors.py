"""Reads of the member register, always within the caller's store scope."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.core.errors import NotFound, ValidationFailed
from memberhub.domain.member_identity import luhn_valid, member_no_parse
from memberhub.members.models import Member
from memberhub.members.services import LIVE, member_holding, phone_index_of, survivor_of


def member_scope(actor: Principal) -> QuerySet[Member]:
    actor.require(Cap.MEMBERS_READ)
    qs = Member.objects.select_related("home_store").prefetch_related("consents")
    if actor.store_ids is not None:
        qs = qs.filter(home_store_id__in=actor.store_ids)
    return qs


def member_get(*, actor: Principal, member_id: int) -> Member:
    member = member_scope(actor).filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("No such member."), code="member_not_found")
    return member


def member_lookup(*, actor: Principal, key: str) -> Member:
    """Find a live member by what the till has: a phone (any format), a card code or a member
    number. Those of a merged member find the member it was merged into."""
    key = key.strip()
    found = None
    if key.isdigit() and len(key) == 16 and luhn_valid(key):
        found = Member.objects.filter(card_code=key).first()
    if found is None and (pk := member_no_parse(key)) is not None:
        found = Member.objects.filter(pk=pk).first()
    if found is not None:
        found = survivor_of(found)
    if found is None:
        try:
            found = member_holding("phone_index", phone_index_of(key))
        except ValidationFailed:  # not a phone either: fall through to not found
            found = None
    member = member_scope(actor).filter(status__in=LIVE, pk=found.pk).first() if found is not None else None
    if member is None:
        raise NotFound(_("No such member."), code="member_not_found")
    return member


def member_list(
    *,
    actor: Principal,
    phone: str | None = None,
    name: str | None = None,
    store: str | None = None,
    status: str | None = None,
    registered_from: datetime | None = None,
    registered_to: datetime | None = None,
    birth_month: int | None = None,
) -> QuerySet[Member]:
    qs = member_scope(actor)
    qs = qs.filter(status=status) if status else qs.filter(status__in=LIVE)
    if phone:  # a merged member's phone lists the member it was merged into
        holder = member_holding("phone_index", phone_index_of(phone))
        qs = qs.filter(pk=holder.pk) if holder is not None else qs.none()
    if name:
        qs = qs.filter(name__icontains=name.strip())
    if store:
        qs = qs.filter(home_store__code=store)
    if registered_from:
        qs = qs.filter(registered_at__gte=registered_from)
    if registered_to:
        qs = qs.filter(registered_at__lt=registered_to)
    if birth_month:
        qs = qs.filter(birth_month=birth_month)
    return qs


def members_by_ids(*, actor: Principal, ids: list[int]) -> QuerySet[Member]:
    return member_scope(actor).filter(Q(pk__in=ids))
