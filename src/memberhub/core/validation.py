"""Validation errors as the caller reads them: in the request's language (zh-Hans by default),
located inside what the caller sent (`["lines", 0, "qty"]`, with `in: "body"`), never in ninja's
wrappers (`["body", "body", "lines", 0, "qty"]`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _

SOURCES = ("body", "query", "path", "header", "cookie", "form", "file")

# pydantic's error types, by what the caller must change. A placeholder names a value of the
# error's context (pydantic's `ctx`); a type not listed falls back to the generic message.
MESSAGES: dict[str, Any] = {
    "missing": _("This field is required."),
    "extra_forbidden": _("This field is not allowed here."),
    "int_type": _("Must be a whole number (a JSON number, not text or true/false)."),
    "int_parsing": _("Must be a whole number."),
    "int_from_float": _("Must be a whole number."),
    "float_type": _("Must be a number."),
    "float_parsing": _("Must be a number."),
    "decimal_type": _("Must be a number."),
    "decimal_parsing": _("Must be a number."),
    "bool_type": _("Must be true or false."),
    "bool_parsing": _("Must be true or false."),
    "string_type": _("Must be text."),
    "string_too_short": _("Must be at least %(min_length)s characters long."),
    "string_too_long": _("Must be at most %(max_length)s characters long."),
    "string_pattern_mismatch": _("Has not the expected format."),
    "too_short": _("Must hold at least %(min_length)s items."),
    "too_long": _("Must hold at most %(max_length)s items."),
    "greater_than": _("Must be greater than %(gt)s."),
    "greater_than_equal": _("Must be at least %(ge)s."),
    "less_than": _("Must be less than %(lt)s."),
    "less_than_equal": _("Must be at most %(le)s."),
    "literal_error": _("Must be one of: %(expected)s."),
    "enum": _("Must be one of: %(expected)s."),
    "datetime_type": _("Must be a date and time (ISO 8601, with its offset)."),
    "datetime_parsing": _("Must be a date and time (ISO 8601, with its offset)."),
    "datetime_from_date_parsing": _("Must be a date and time (ISO 8601, with its offset)."),
    "date_type": _("Must be a date (YYYY-MM-DD)."),
    "date_parsing": _("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": _("Must be a date (YYYY-MM-DD)."),
    "datetime_out_of_range": _("Times must lie between the years %(first)s and %(last)s."),
    "timezone_aware": _("Times must carry a timezone offset."),
    "dict_type": _("Must be an object."),
    "model_type": _("Must be an object."),
    "model_attributes_type": _("Must be an object."),
    "list_type": _("Must be a list."),
    "json_invalid": _("The request body is not valid JSON."),
    "value_error": _("This value is not valid."),
}
GENERIC = _("This value is not valid.")


def _location(loc: Iterable[Any]) -> tuple[str | None, list[Any]]:
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in SOURCES else None
    if source == "body" and parts:
        parts.pop(0)  # the view's parameter name: not part of the JSON the caller sent
    return source, parts


def _message(kind: str, ctx: Mapping[str, Any] | None) -> str:
    template = MESSAGES.get(kind, GENERIC)
    try:
        return str(template) % {k: str(v) for k, v in (ctx or {}).items()} if "%(" in str(template) else str(template)
    except (KeyError, ValueError, TypeError):  # a context without the placeholder's value
        return str(GENERIC)


def validation_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """ninja's errors as `{loc, in, msg, type}` in the active language."""
    out = []
    for e in errors:
        source, loc = _location(e.get("loc", ()))
        kind = str(e.get("type", ""))
        out.append({"loc": loc, "in": source, "msg": _message(kind, e.get("ctx")), "type": kind})
    return out
