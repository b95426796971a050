"""Finding the member a purchase or a points operation is for.

Unlike the member register's lookup, this is not limited to the caller's home-store scope:
a member may buy in any store, and the till must find them there."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from memberhub.access import lookup_guard, store_scope
from memberhub.core import rows
from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.domain.member_identity import luhn_valid, member_no_parse
from memberhub.members.models import Member
from memberhub.members.services import member_holding, phone_index_of

LIVE = (Member.Status.ACTIVE, Member.Status.FROZEN)


def _follow(member: Member) -> Member:
    seen = {member.pk}
    while member.status == Member.Status.MERGED and member.merged_into_id and member.merged_into_id not in seen:
        seen.add(member.merged_into_id)
        member = Member.objects.get(pk=member.merged_into_id)
    if member.status == Member.Status.ERASED:
        raise Conflict(_("This member has been erased."), code="member_erased")
    if member.status not in LIVE:
        raise NotFound(_("No such member."), code="member_not_found")
    return member


def member_resolve(*, member_id: int | None = None, key: str | None = None, actor: Any = None) -> Member:
    """By id, or by what the till has (phone in any format, card code, member number).
    A merged member resolves to the member it was merged into. With the caller (`actor`), a
    lookup by phone counts against its budget of misses and is audited (access/lookup_guard.py)."""
    if actor is not None and member_id is None and key and key.strip():
        return _follow(lookup_guard.member_find(actor=actor, key=key, finder=_by_key, where="loyalty"))
    member = None
    if member_id is not None:
        member = Member.objects.filter(pk=member_id).first()
    elif key and key.strip():
        key = key.strip()
        if key.isdigit() and len(key) == 16 and luhn_valid(key):
            member = Member.objects.filter(card_code=key).first()
        if member is None and (pk := member_no_parse(key)) is not None:
            member = Member.objects.filter(pk=pk).first()
        if member is None:
            try:
                # a merged member's phone finds the member it was merged into
                member = member_holding("phone_index", phone_index_of(key))
            except ValidationFailed:
                member = None
    else:
        raise ValidationFailed(_("Name the member by id, phone, card code or member number."), code="member_required")
    if member is None:
        raise NotFound(_("No such member."), code="member_not_found")
    return _follow(member)


def _by_key(key: str) -> Member | None:
    try:
        return member_resolve(key=key)
    except NotFound:
        return None


_STATUS_SQL = f'SELECT "status" FROM "{Member._meta.db_table}" WHERE "id" = %s'


def member_id_resolve(*, member_id: int | None = None, key: str | None = None) -> int:
    """`member_resolve` for the till's hot path: the id of a live member in one small read;
    anything else (a key, a merged or erased member) goes the full way."""
    if member_id is not None:
        found = rows.one(_STATUS_SQL, [member_id])
        if found is not None and found[0] in LIVE:
            return member_id
    return member_resolve(member_id=member_id, key=key).pk


def member_resolve_in_scope(*, actor: Any, member_id: int | None = None, key: str | None = None) -> Member:
    """`member_resolve` for reading or changing the member's own records (balance, statement,
    tier, adjustments): a member of another store answers as a missing one (access/store_scope.py)."""
    store_scope.require_member_id(actor, member_id)
    member = member_resolve(member_id=member_id, key=key, actor=actor)
    store_scope.require_member(actor, member.home_store_id)
    return member
