"""Typed queries: what a run computes, validated once, stored as the run's params.

    query = query_parse("clv", {"horizon_days": 180})   # -> ClvQuery
    run = run_request(actor=..., query=query)            # the runner executes it in the background

The same objects are built by the API, the management command and the nightly job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from memberhub.core.errors import ValidationFailed


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def params(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"kind"})


class RfmQuery(_Query):
    kind: Literal["rfm"] = "rfm"
    observation_end: dt.date | None = None  # default: today in the programme's time zone
    window_days: int | None = Field(default=None, gt=0, le=36500)
    monetary: Literal["sum", "mean"] = "sum"
    basis: Literal["value", "score"] = "value"


class ClvQuery(RfmQuery):
    kind: Literal["clv"] = "clv"  # type: ignore[assignment]
    model: Literal["bgnbd", "paretonbd"] = "bgnbd"
    horizon_days: float = Field(default=365.0, gt=0, le=3650)
    discount_rate: float = Field(default=0.10, gt=-1, le=10)
    margin: float = Field(default=1.0, gt=0, le=1)
    time_unit: Literal["days", "weeks"] = "days"


class HealthQuery(_Query):
    kind: Literal["health"] = "health"
    date_from: dt.date | None = None  # default: 29 days before date_to
    date_to: dt.date | None = None  # inclusive; default: today
    stores: tuple[str, ...] = ()  # store codes; empty: every store the caller sees
    channel: Literal["online", "offline"] | None = None
    migration_from: dt.date | None = None  # tier migration matrix; default: date_from
    cohort_months: int = Field(default=12, ge=1, le=36)

    @model_validator(mode="after")
    def _range(self) -> HealthQuery:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from must not be after date_to")
        return self


Query = RfmQuery | ClvQuery | HealthQuery
QUERIES: dict[str, type[_Query]] = {"rfm": RfmQuery, "clv": ClvQuery, "health": HealthQuery}


def query_parse(kind: str, params: dict[str, Any] | None) -> Query:
    cls = QUERIES.get(kind)
    if cls is None:
        raise ValidationFailed(_("Unknown analytics kind."), code="invalid_kind", detail={"allowed": sorted(QUERIES)})
    try:
        return cls.model_validate({**(params or {}), "kind": kind})  # type: ignore[return-value]
    except ValidationError as exc:
        errors = [{"loc": list(e.get("loc", [])), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        raise ValidationFailed(_("The analytics parameters are not valid."), code="invalid_params",
                               detail={"errors": errors}) from None
