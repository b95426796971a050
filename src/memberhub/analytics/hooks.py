"""What analytics does when a member is erased: their snapshots go (the figures are about them).

A merged member needs nothing: the next run folds their purchases into the survivor and the
absorbed member simply has no row in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memberhub.analytics.models import MemberSnapshot

if TYPE_CHECKING:
    from memberhub.access.principal import Principal
    from memberhub.members.models import Member


def on_erase(member: Member, actor: Principal) -> None:
    MemberSnapshot.objects.filter(member=member).delete()
