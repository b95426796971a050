from __future__ import annotations

from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from django.conf import settings
from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError


class StrictSchema(BaseModel):
    """Input bodies refuse unknown fields: a typo must not be silently dropped. Integer fields
    take JSON numbers only: pydantic's lax mode would read `true` as 1 and `"10"` as 10 (an
    integral `10.0` is the integer 10 in JSON Schema, and passes).

    A plain pydantic model, not ninja's `Schema`: inputs are JSON, never ORM objects, and
    `Schema`'s wrapper for reading attributes off Django models cost ~0.1 ms per body."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _json_integers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        shapes = _integer_fields(cls)
        if not shapes or not any(name in data for name in shapes):
            return data
        data = dict(data)
        for name, shape in shapes.items():
            if name in data:
                data[name] = _mark(data[name], shape)
        return data


class _NotAnInteger:
    """Stands in for a `true` or a string sent where an integer belongs: the field's own
    validation then refuses it (`int_type`) at the field's place."""


def _mark(value: Any, shape: str) -> Any:
    if shape == "int":
        return _NotAnInteger() if isinstance(value, (bool, str, bytes)) else value
    if shape == "list" and isinstance(value, list):
        return [_mark(v, "int") for v in value]
    if shape == "dict" and isinstance(value, dict):
        return {k: _mark(v, "int") for k, v in value.items()}
    return value


def _shape(annotation: Any) -> str | None:
    """"int", "list" (of int) or "dict" (of int) for an annotation holding integers."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape(get_args(annotation)[0])
    if origin in (Union, UnionType):
        shapes = {_shape(a) for a in get_args(annotation)} - {None}
        return shapes.pop() if len(shapes) == 1 else None
    if annotation is int:
        return "int"
    if origin is list and get_args(annotation) and _shape(get_args(annotation)[0]) == "int":
        return "list"
    if origin is dict and len(get_args(annotation)) == 2 and _shape(get_args(annotation)[1]) == "int":
        return "dict"
    return None


_SHAPES: dict[type, dict[str, str]] = {}


def _integer_fields(cls: type[BaseModel]) -> dict[str, str]:
    found = _SHAPES.get(cls)
    if found is None:
        found = {name: shape for name, field in cls.model_fields.items()
                 if (shape := _shape(field.annotation)) is not None}
        _SHAPES[cls] = found
    return found


class PlainOut(BaseModel):
    """An answer built from plain dicts (never from ORM objects): validated without ninja's
    `Schema` wrapper for reading Django model attributes, which cost more than the model."""


class ErrorOut(Schema):
    code: str
    message: str
    detail: dict = Field(default_factory=dict)
    request_id: str | None = None  # as in the X-Request-ID header: finds the request's log lines


# Every operation may answer these, so every operation documents them: 400 (a NUL character,
# malformed JSON), 401/403 (credentials, capability or store scope), 404 (a named record
# missing), 409 (the state forbids it), 413 (too large), 422 (validation or a business rule),
# 429 (a limit), 503 (the database unavailable: send again).
ERRORS: dict[int, Any] = {status: ErrorOut for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


class ReasonIn(StrictSchema):
    reason: str = Field(min_length=1, max_length=1000)


# --- the numbers of the contract: one place sets each rule -------------------------------------
# Every amount and points field of a request body is one of these, within a ceiling (and, in a
# StrictSchema, a JSON integer: `true` and `"10"` are refused, not read as 1 and 10). The ceilings
# (MEMBERHUB_MAX_AMOUNT_FEN, MEMBERHUB_MAX_POINTS) are typo guards far above a real order and far
# below where sums of them could overflow the database's 64-bit integers (a 9×10¹⁸ fen purchase
# once made chain-wide sales negative and the member's tier unreadable).
MAX_AMOUNT_FEN: int = settings.MAX_AMOUNT_FEN
MAX_POINTS: int = settings.MAX_POINTS
MAX_ID = 2**63 - 1

Int = int  # an integer field with bounds of its own
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Fen = Annotated[int, Field(ge=0, le=MAX_AMOUNT_FEN)]
PositiveFen = Annotated[int, Field(gt=0, le=MAX_AMOUNT_FEN)]
Points = Annotated[int, Field(ge=0, le=MAX_POINTS)]
PositivePoints = Annotated[int, Field(gt=0, le=MAX_POINTS)]
SignedPoints = Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
Qty = Annotated[int, Field(ge=0, le=1_000_000)]


# Times a request may carry: years 1901 to 2998, so converting one to UTC or to the programme's
# zone never leaves what Python and the databases can hold (year 1 at +08:00 is year 0 in UTC,
# and 9999-12-31 at -08:00 is year 10000: both answered 500).
FIRST_YEAR, LAST_YEAR = 1901, 2998


def _moment_within(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError("datetime_out_of_range", "Times must lie between the years {first} and {last}.",
                                  {"first": FIRST_YEAR, "last": LAST_YEAR})
    return value


# documented too, so a client generating times from the OpenAPI document sends valid ones
_YEARS = r"^(190[1-9]|19[1-9][0-9]|2[0-8][0-9][0-9]|29[0-8][0-9]|299[0-8])-"
Moment = Annotated[datetime, AfterValidator(_moment_within),
                   WithJsonSchema({"type": "string", "format": "date-time", "pattern": _YEARS,
                                   "description": "ISO 8601 with its offset, years 1901 to 2998"})]
