"""Likely duplicates among the live members a caller can see."""

from __future__ import annotations

from typing import Any

from memberhub.access.principal import Principal
from memberhub.domain.member_duplicates import DuplicatePair, PersonRecord, duplicates_find
from memberhub.members.models import Member
from memberhub.members.presenters import member_public
from memberhub.members.selectors import member_scope
from memberhub.members.services import LIVE


def member_duplicates(*, actor: Principal, limit: int = 100) -> list[dict[str, Any]]:
    members = {m.pk: m for m in member_scope(actor).filter(status__in=LIVE)}
    records = [
        PersonRecord(id=m.pk, name=m.name, phone=m.phone, email=m.email, birthday=m.birthday)
        for m in members.values()
    ]
    pairs: list[DuplicatePair] = duplicates_find(records)[:limit]
    return [
        {
            "score": p.score,
            "reasons": list(p.reasons),
            "members": [member_public(members[p.a], viewer=actor), member_public(members[p.b], viewer=actor)],
        }
        for p in pairs
    ]


__all__ = ["member_duplicates", "Member"]
