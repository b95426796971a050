"""Finding a member by phone or email: audited, and limited for callers who see them masked.

An exact-match lookup answers "found" or "not found", so a caller who only ever sees a
phone masked (138****8000) could recover it whole by guessing the hidden digits. Every
lookup by phone or email is therefore written to the audit log (who, what was looked for,
masked, found or not, where), and a caller without `pii:read` has a budget of misses:
`LOOKUP_MISS_LIMIT` misses within `LOOKUP_MISS_WINDOW_SECONDS` (env MEMBERHUB_LOOKUP_MISS_LIMIT,
MEMBERHUB_LOOKUP_MISS_WINDOW; 20 per 600 s by default). Hits cost nothing, so the till's
normal use is untouched; once the budget is spent every lookup by phone or email from that
caller answers 429 `lookup_rate_limited` with `Retry-After` until the oldest miss leaves the
window. The misses are counted from the audit log itself, so the limit holds across the
server's worker processes and restarts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.core.errors import NotFound, RateLimited

T = TypeVar("T")
ACTION = "member.lookup"


def key_kind(key: str) -> str:
    """What a lookup key is: `card`, `member_no`, `email` or `phone` (anything else)."""
    from memberhub.domain.member_identity import luhn_valid, member_no_parse

    key = key.strip()
    if key.isdigit() and len(key) == 16 and luhn_valid(key):
        return "card"
    if member_no_parse(key) is not None:
        return "member_no"
    return "email" if "@" in key else "phone"


def _masked(kind: str, key: str) -> str | None:
    from memberhub.core.crypto import mask_email, mask_phone

    key = key.strip()
    if kind == "email":
        return mask_email(key)
    digits = "".join(ch for ch in key if ch.isdigit())
    if len(digits) == 11:
        return mask_phone("+86" + digits)
    return mask_phone(key) if key.startswith("+") else "*" * min(len(key), 20)


def _guarded(actor: Principal) -> bool:
    return not actor.can(Cap.PII_READ)


def _misses(actor: Principal) -> Any:
    from memberhub.audit.models import AuditEntry

    since = timezone.now() - timedelta(seconds=settings.LOOKUP_MISS_WINDOW_SECONDS)
    return AuditEntry.objects.filter(action=ACTION, actor_kind=actor.kind, actor_id=actor.id,
                                     actor_label=actor.label, at__gte=since, after__found=False)


def budget_check(actor: Principal) -> None:
    """429 when the caller has spent its misses; `Retry-After` says when one is back."""
    if not _guarded(actor):
        return
    limit = settings.LOOKUP_MISS_LIMIT
    times = list(_misses(actor).order_by("-at").values_list("at", flat=True)[:limit])
    if len(times) < limit:
        return
    frees_at = times[limit - 1] + timedelta(seconds=settings.LOOKUP_MISS_WINDOW_SECONDS)
    wait = max(1, math.ceil((frees_at - timezone.now()).total_seconds()))
    raise RateLimited(_("Too many lookups that found nobody; try again later."), code="lookup_rate_limited",
                      detail={"retry_after_seconds": wait})


def lookup_record(*, actor: Principal, kind: str, key: str, found: Any, where: str) -> None:
    from memberhub.audit.services import audit_record

    audit_record(actor=actor, action=ACTION, target=found if found is not None and hasattr(found, "_meta") else None,
                 target_type=None if found is not None else "members.member",
                 after={"by": kind, "key": _masked(kind, key), "found": found is not None, "where": where})


def guarded_find(*, actor: Principal, key: str, finder: Callable[[str], T | None], where: str) -> T | None:
    """Run `finder(key)`; a phone or email key is checked against the budget first and audited."""
    kind = key_kind(key)
    # the CLI and jobs (the operator at the machine, importing files) are neither limited nor audited per row
    if kind not in ("phone", "email") or actor.kind == "system":
        return finder(key)
    budget_check(actor)
    found = finder(key)
    lookup_record(actor=actor, kind=kind, key=key, found=found, where=where)
    return found


def member_find(*, actor: Principal, key: str, finder: Callable[[str], T | None], where: str) -> T:
    found = guarded_find(actor=actor, key=key, finder=finder, where=where)
    if found is None:
        raise NotFound(_("No such member."), code="member_not_found")
    return found
