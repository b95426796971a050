from __future__ import annotations

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field


class StrictSchema(BaseModel):
    """Input bodies refuse unknown fields: a typo must not be silently dropped.

    A plain pydantic model, not ninja's `Schema`: inputs are JSON, never ORM objects, and
    `Schema`'s wrapper for reading attributes off Django models cost ~0.1 ms per body."""

    model_config = ConfigDict(extra="forbid")


class PlainOut(BaseModel):
    """An answer built from plain dicts (never from ORM objects): validated without ninja's
    `Schema` wrapper for reading Django model attributes, which cost more than the model."""


class ErrorOut(Schema):
    code: str
    message: str
    detail: dict = Field(default_factory=dict)
    request_id: str | None = None  # as in the X-Request-ID header: finds the request's log lines


class ReasonIn(StrictSchema):
    reason: str = Field(min_length=1, max_length=1000)
