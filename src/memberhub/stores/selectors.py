from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.core.errors import ValidationFailed
from memberhub.stores.models import Store


def store_for_actor(*, actor: Principal, code: str) -> Store:
    """The store named by `code`, refused when unknown or outside the caller's store scope."""
    store = Store.objects.filter(code=code).first()
    if store is None:
        raise ValidationFailed(_("Unknown store."), code="store_not_found", detail={"store": code})
    actor.require_store(store.pk)
    return store
