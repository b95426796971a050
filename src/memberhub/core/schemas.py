from __future__ import annotations

from ninja import Schema
from pydantic import ConfigDict, Field


class StrictSchema(Schema):
    """Input bodies refuse unknown fields: a typo must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Schema):
    code: str
    message: str
    detail: dict = Field(default_factory=dict)


class ReasonIn(StrictSchema):
    reason: str = Field(min_length=1, max_length=1000)
