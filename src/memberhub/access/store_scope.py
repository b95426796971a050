"""Store scope: which members and records a store-scoped caller may read or act on.

The model (docs/access.md): a member *belongs* to their home store (`Member.home_store`, the
store they registered at or were moved to); a record belongs to the store it was made at
(a purchase, checkout, hold, reward order, coupon redemption or wallet movement), or, when
it has no store of its own (a points balance, a statement, a tier, an adjustment, a coupon
held), to its member's home store.

A caller limited to some stores (a cashier, a store-scoped key):
- reads and changes only members and records of its stores;
- may *serve* a member of another store at one of its own stores: find them by phone or
  card (masked), quote, earn, check out, hold points, top up or pay with stored value,
  exchange a reward; what it writes is a record of its own store;
- never learns anything else about another store's member or record: an out-of-scope
  record answers exactly what a missing one answers (404 with the record's not-found code),
  and no error carries another store's member id.

Every check is here, called from the services and selectors, so a new endpoint reuses it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.core.errors import NotFound


def scoped(actor: Principal) -> bool:
    """Whether the caller is limited to some stores."""
    return actor.store_ids is not None


def may_act_on_store(actor: Principal, store_id: int | None) -> bool:
    return actor.sees_store(store_id)


def may_act_on_member(actor: Principal, home_store_id: int | None) -> bool:
    """A member of the caller's stores (a member without a home store belongs to no store, so
    only an all-store caller acts on them)."""
    return actor.sees_store(home_store_id)


def may_act_on_record(actor: Principal, store_id: int | None, member_home_store_id: int | None = None) -> bool:
    """A record of the caller's stores: its own store if it has one, else its member's."""
    if actor.store_ids is None:
        return True
    if store_id is not None:
        return store_id in actor.store_ids
    return member_home_store_id is not None and member_home_store_id in actor.store_ids


def may_read_record(actor: Principal, store_id: int | None, member_home_store_id: int | None = None) -> bool:
    """Reading: a record made at one of the caller's stores, or any record of one of its members."""
    return may_act_on_record(actor, store_id, member_home_store_id) or (
        member_home_store_id is not None and actor.sees_store(member_home_store_id))


def may_serve(actor: Principal, home_store_id: int | None, at_store_id: int | None) -> bool:
    """Serving a member: theirs, or anyone's at one of the caller's own stores."""
    return may_act_on_member(actor, home_store_id) or (at_store_id is not None and actor.sees_store(at_store_id))


def member_not_found() -> NotFound:
    return NotFound(_("No such member."), code="member_not_found")


def require_member(actor: Principal, home_store_id: int | None) -> None:
    if not may_act_on_member(actor, home_store_id):
        raise member_not_found()


def require_member_id(actor: Principal, member_id: int | None) -> None:
    """The member by id must be of the caller's stores (one small read for a scoped caller)."""
    if actor.store_ids is None or member_id is None:
        return
    from memberhub.members.models import Member

    row = Member.objects.filter(pk=member_id).values_list("home_store_id", flat=True).first()
    if row is None and not Member.objects.filter(pk=member_id).exists():
        return  # missing: the service answers its own not-found
    if not may_act_on_member(actor, row):
        raise member_not_found()


def require_serve(actor: Principal, home_store_id: int | None, at_store_id: int | None) -> None:
    if not may_serve(actor, home_store_id, at_store_id):
        raise member_not_found()


def require_record(actor: Principal, store_id: int | None, member_home_store_id: int | None,
                   not_found: NotFound) -> None:
    if not may_act_on_record(actor, store_id, member_home_store_id):
        raise not_found


def member_viewer(actor: Principal, home_store_id: int | None) -> Principal:
    """Who the member is shown to: a member of another store is shown masked, whatever the
    caller's `pii:read` (it is served here, not looked after)."""
    if may_act_on_member(actor, home_store_id) or not actor.can(Cap.PII_READ):
        return actor
    return replace(actor, caps=actor.caps - {Cap.PII_READ.value})


def home_store_filter(actor: Principal, field: str = "home_store_id") -> dict[str, Any]:
    """Queryset filter keeping a scoped caller's members only ({} for an all-store caller)."""
    return {} if actor.store_ids is None else {f"{field}__in": actor.store_ids}
