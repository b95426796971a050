"""Who is calling, and what they may do: the one object every service is given."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any, Literal

from django.utils.translation import gettext_lazy as _

from memberhub.access.roles import ALL_CAPS, ROLE_CAPS, Role
from memberhub.core.errors import PermissionDenied


@dataclass(frozen=True)
class Principal:
    kind: Literal["staff", "apikey", "system"]
    id: int | None
    label: str
    caps: frozenset[str]
    store_ids: frozenset[int] | None  # None: every store
    user_id: int | None = None

    def can(self, cap: str) -> bool:
        return cap in self.caps

    def require(self, *caps: str) -> None:
        missing = [c for c in caps if c not in self.caps]
        if missing:
            raise PermissionDenied(detail={"required": missing})

    def sees_store(self, store_id: int | None) -> bool:
        if self.store_ids is None:
            return True
        return store_id is not None and store_id in self.store_ids

    def require_store(self, store_id: int | None) -> None:
        if not self.sees_store(store_id):
            raise PermissionDenied(_("This store is outside your scope."), code="store_out_of_scope")

    @property
    def actor(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "label": self.label}


def system_principal(label: str | None = None) -> Principal:
    """The CLI and background jobs: the operator who runs them holds the machine."""
    try:
        who = label or f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        who = label or "cli"
    return Principal(kind="system", id=None, label=who, caps=ALL_CAPS, store_ids=None)


def staff_principal(user: Any) -> Principal:
    profile = getattr(user, "staff", None) if hasattr(user, "staff") else None
    stores: frozenset[int] | None
    if user.is_superuser:
        caps, stores = ALL_CAPS, None
    elif profile is None:
        caps, stores = frozenset(), frozenset()
    else:
        caps = ROLE_CAPS.get(Role(profile.role), frozenset())
        stores = None if profile.all_stores else frozenset(profile.stores.values_list("pk", flat=True))
    return Principal(kind="staff", id=user.pk, label=user.get_username(), caps=caps, store_ids=stores, user_id=user.pk)
