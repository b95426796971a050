"""Extension points for apps that attach data to members (points, tiers, coupons, ...).

Each app registers its handlers in AppConfig.ready(); the member services call them inside
their own transaction, so a merge or an erasure is all-or-nothing across apps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from memberhub.access.principal import Principal
    from memberhub.members.models import Member

MergeHook = Callable[["Member", "Member", "Principal"], None]  # (survivor, absorbed, actor)
EraseHook = Callable[["Member", "Principal"], None]
ExportHook = Callable[["Member"], dict[str, Any]]  # returns {section_name: data}
# (member, frozen_at, unfrozen_at, actor) -> {what: how many extended}: on unfreeze, each app
# extends the member's unexpired time-limited entitlements by the time frozen
UnfreezeHook = Callable[["Member", "datetime", "datetime", "Principal"], dict[str, int]]

MERGE_HOOKS: list[MergeHook] = []
ERASE_HOOKS: list[EraseHook] = []
EXPORT_HOOKS: list[ExportHook] = []
UNFREEZE_HOOKS: list[UnfreezeHook] = []
