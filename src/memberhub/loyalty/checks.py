"""`memberhub check` (and `serve`): the stored programme validates."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register
from django.db import DatabaseError


@register()
def programme_valid(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from memberhub.loyalty.programme import stored_programme_problems

    try:
        problems = stored_programme_problems()
    except DatabaseError:
        return []  # no table yet: memberhub.W001 reports the pending migrations
    if not problems:
        return []
    return [Error("The stored loyalty programme is not valid: " + "; ".join(problems[:5]),
                  hint="correct it with PUT /api/v1/loyalty/programme; until then earning and redeeming "
                       "answer 503 programme_invalid", id="memberhub.E010")]
