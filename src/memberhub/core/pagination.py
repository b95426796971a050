"""Cursor (keyset) pagination: stable under concurrent inserts, O(1) per page at any depth."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _

from memberhub.core.errors import ValidationFailed

M = TypeVar("M", bound=Model)

MAX_LIMIT = 200


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        value = data["id"]
        if not isinstance(value, int):
            raise TypeError
        return value
    except (ValueError, TypeError, KeyError, binascii.Error, json.JSONDecodeError):
        raise ValidationFailed(_("The cursor is not valid."), code="invalid_cursor") from None


def paginate(qs: QuerySet[M], *, cursor: str | None, limit: int) -> tuple[list[M], str | None]:
    """Newest first by primary key. Returns the page and the cursor of the next page (or None)."""
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationFailed(
            _("limit must be between 1 and %(max)d.") % {"max": MAX_LIMIT}, code="invalid_limit"
        )
    qs = qs.order_by("-pk")
    if cursor:
        qs = qs.filter(pk__lt=decode_cursor(cursor))
    rows = list(qs[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor


def page_payload(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
