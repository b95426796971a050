from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from memberhub.core.schemas import Id, StrictSchema

Gender = Literal["unknown", "female", "male", "other"]
Source = Literal["store", "online", "miniprogram", "import"]
Channel = Literal["sms", "email", "wechat"]


class ConsentIn(StrictSchema):
    channel: Channel
    granted: bool
    source: str = Field("api", max_length=40)


class ConsentOut(Schema):
    channel: str
    granted: bool
    changed_at: datetime
    source: str


class MemberIn(StrictSchema):
    phone: str = Field(max_length=40, description="Mobile phone; Chinese numbers may omit +86, others in E.164")
    email: str | None = Field(None, max_length=254)
    name: str = Field("", max_length=1000)
    gender: Gender = "unknown"
    birthday: date | None = None
    address: str | None = Field(None, max_length=500)
    id_number: str | None = Field(None, max_length=40)
    source: Source = "store"
    home_store: str | None = Field(None, max_length=32, description="Store code")
    consents: list[ConsentIn] = Field(default_factory=list, max_length=3)


class MemberPatch(StrictSchema):
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    name: str | None = Field(None, max_length=1000)
    gender: Gender | None = None
    birthday: date | None = None
    address: str | None = Field(None, max_length=500)
    id_number: str | None = Field(None, max_length=40)
    source: Source | None = None
    home_store: str | None = Field(None, max_length=32)
    consents: list[ConsentIn] | None = Field(None, max_length=3)
    reason: str = Field("", max_length=1000, description="Required when phone, email or ID number change")


class MemberOut(Schema):
    id: int
    member_no: str
    card_code: str
    phone: str | None
    email: str | None
    address: str | None
    id_number: str | None
    pii_masked: bool
    name: str
    gender: str
    birthday: date | None
    source: str
    home_store: str | None
    status: str
    merged_into: int | None
    registered_at: datetime
    updated_at: datetime
    consents: list[ConsentOut]


class MemberPage(Schema):
    items: list[MemberOut]
    next_cursor: str | None


class MergeIn(StrictSchema):
    survivor_id: Id
    absorbed_id: Id
    reason: str = Field(min_length=1, max_length=1000)


class DuplicateOut(Schema):
    score: float
    reasons: list[str]
    members: list[MemberOut]


class MemberImportReportOut(Schema):
    total: int
    created: int
    existing: int
    duplicate_in_file: int
    rejected: int
    rejections: list[dict]
    rejections_truncated: bool
