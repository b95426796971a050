"""Reads of the member register, always within the caller's store scope."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from memberhub.access import lookup_guard
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.core.errors import NotFound, ValidationFailed
from memberhub.domain.member_identity import member_no_parse
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
    """Find a live member by what the till has: a phone (any format), a card code or a member number.
    Those of a merged member find the member it was merged into.

    A member of another store is found too (by phone or card, what the member presents, not
    by the sequential member number), so any store of the chain can serve them; the API
    shows them masked (access/store_scope.py). A lookup by phone or email is audited and,
    for a caller who sees phones masked, limited (access/lookup_guard.py)."""
    actor.require(Cap.MEMBERS_READ)
    key = key.strip()
    kind = lookup_guard.key_kind(key)
    chain = Member.objects.select_related("home_store").prefetch_related("consents")
    qs = member_scope(actor).filter(status__in=LIVE)

    def find(key: str) -> Member | None:
        member = None
        if kind == "card":
            found = chain.filter(card_code=key).first()
            member = survivor_of(found) if found is not None else None
        if member is None and (pk := member_no_parse(key)) is not None:
            found = Member.objects.filter(pk=pk).first()
            survivor = survivor_of(found) if found is not None else None
            member = qs.filter(pk=survivor.pk).first() if survivor is not None else None
        if member is None:
            try:
                member = member_holding("phone_index", phone_index_of(key))
            except ValidationFailed:  # not a phone either: fall through to not found
                member = None
        return member

    return lookup_guard.member_find(actor=actor, key=key, finder=find, where="members.lookup")


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
        index = phone_index_of(phone)

        def holder(_key: str) -> Member | None:
            found = member_holding("phone_index", index)
            return qs.filter(pk=found.pk).first() if found is not None else None

        found = lookup_guard.guarded_find(actor=actor, key=phone, where="members.list", finder=holder)
        qs = qs.filter(pk=found.pk) if found is not None else qs.none()
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
