"""Importing members from CSV or Excel: streamed in chunks, idempotent, with a report.

A row whose phone (in any format) belongs to a live member is `existing` and changes
nothing, so importing the same file twice creates no one twice. Rejected rows carry the row
number and a machine-readable reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.models import AuditEntry
from memberhub.core.crypto import blind_index, encrypt, keyed_digest
from memberhub.core.errors import ApplicationError
from memberhub.domain.member_identity import (
    IdentityError,
    card_code_new,
    email_normalise,
    name_clean,
    phone_normalise,
)
from memberhub.members.models import Member, MemberConsent
from memberhub.members.services import HOLDING, ConsentInput, MemberInput, member_register
from memberhub.stores.models import Store

CHUNK = 1000
MAX_REPORTED_REJECTIONS = 1000

# Header aliases: exports from Chinese tills use Chinese headers.
ALIASES = {
    "phone": ("phone", "mobile", "手机", "手机号", "手机号码", "电话"),
    "name": ("name", "姓名", "名字"),
    "email": ("email", "邮箱", "电子邮箱"),
    "gender": ("gender", "性别"),
    "birthday": ("birthday", "生日", "出生日期"),
    "address": ("address", "地址"),
    "id_number": ("id_number", "身份证", "身份证号"),
    "home_store": ("home_store", "store", "门店", "门店编码"),
    "consent_sms": ("consent_sms", "短信"),
    "consent_email": ("consent_email", "邮件"),
    "consent_wechat": ("consent_wechat", "微信"),
}
_GENDERS = {"男": "male", "m": "male", "male": "male", "女": "female", "f": "female", "female": "female",
            "": "unknown", "unknown": "unknown", "未知": "unknown", "other": "other", "其他": "other"}
_YES = {"1", "y", "yes", "true", "是", "同意"}


@dataclass
class ImportReport:
    total: int = 0
    created: int = 0
    existing: int = 0
    duplicate_in_file: int = 0
    rejected: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)

    _listed: int = 0  # rows that belong in `rejections`, whether or not the list had room

    def _list(self, row: int, code: str, message: str) -> None:
        self._listed += 1
        if len(self.rejections) < MAX_REPORTED_REJECTIONS:
            self.rejections.append({"row": row, "code": code, "message": message})

    def reject(self, row: int, code: str, message: str = "") -> None:
        self.rejected += 1
        self._list(row, code, message)

    def duplicate(self, row: int, first_row: int) -> None:
        """A second row with a phone seen earlier in the file: skipped, and listed with its
        row number so the operator can find it (counted apart from `rejected`)."""
        self.duplicate_in_file += 1
        self._list(row, "duplicate_in_file", f"same phone as row {first_row}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "created": self.created, "existing": self.existing,
            "duplicate_in_file": self.duplicate_in_file, "rejected": self.rejected,
            "rejections": self.rejections, "rejections_truncated": self._listed > len(self.rejections),
        }


def columns_missing(keys: list[str]) -> list[str]:
    """The columns a members file cannot do without (by any of their names): the phone."""
    return [] if set(keys) & set(ALIASES["phone"]) else ["phone"]


def _pick(row: dict[str, Any], name: str) -> Any:
    for alias in ALIASES[name]:
        if alias in row and row[alias] not in (None, ""):
            return row[alias]
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel stores phone numbers as floats
    return str(value).strip()


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value).replace("/", "-").replace(".", "-")
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return date.fromisoformat(text)


@dataclass(frozen=True)
class _Clean:
    row: int
    values: dict[str, Any]
    consents: tuple[ConsentInput, ...]
    store_code: str | None
    fingerprint: str


def _clean_row(number: int, row: dict[str, Any], report: ImportReport) -> _Clean | None:
    try:
        phone = phone_normalise(_text(_pick(row, "phone")), region=settings.DEFAULT_PHONE_REGION)
        email = email_normalise(_text(_pick(row, "email")) or None)
        name = name_clean(_text(_pick(row, "name")))
    except IdentityError as exc:
        report.reject(number, exc.code, exc.field)
        return None
    try:
        birthday = _date(_pick(row, "birthday"))
    except ValueError:
        report.reject(number, "birthday_invalid", _text(_pick(row, "birthday"))[:40])
        return None
    if birthday and birthday > date.today():
        report.reject(number, "birthday_in_future", birthday.isoformat())
        return None
    gender = _GENDERS.get(_text(_pick(row, "gender")).lower())
    if gender is None:
        report.reject(number, "gender_invalid", _text(_pick(row, "gender"))[:20])
        return None
    consents = tuple(
        ConsentInput(channel=ch, granted=_text(_pick(row, f"consent_{ch}")).lower() in _YES, source="import")
        for ch in ("sms", "email", "wechat")
        if _pick(row, f"consent_{ch}") is not None
    )
    values = {
        "phone_enc": encrypt(phone), "phone_index": blind_index(phone, purpose="phone"),
        "email_enc": encrypt(email), "email_index": blind_index(email, purpose="email"),
        "address_enc": encrypt(_text(_pick(row, "address")) or None),
        "id_number_enc": encrypt(_text(_pick(row, "id_number")).upper() or None),
        "name": name, "gender": gender, "birthday": birthday, "birth_month": birthday.month if birthday else None,
        "source": Member.Source.IMPORT,
    }
    # keyed: the row holds the phone, ID number and name, which a plain hash would give away
    fingerprint = keyed_digest(repr(sorted((k, _text(v)) for k, v in row.items())).encode(), purpose="import_row")
    return _Clean(number, values, consents, _text(_pick(row, "home_store")) or None, fingerprint)


def members_import(
    *, actor: Principal, rows: Iterable[tuple[int, dict[str, Any]]], progress: Callable[[int], None] | None = None
) -> ImportReport:
    actor.require(Cap.MEMBERS_IMPORT, Cap.MEMBERS_WRITE)
    report = ImportReport()
    stores = {s.code: s for s in Store.objects.all()}
    seen: dict[str, int] = {}  # phone index -> the row it was first seen on
    chunk: list[_Clean] = []
    for number, row in rows:
        report.total += 1
        cleaned = _clean_row(number, row, report)
        if cleaned is not None:
            if cleaned.values["phone_index"] in seen:
                report.duplicate(number, seen[cleaned.values["phone_index"]])
            else:
                seen[cleaned.values["phone_index"]] = number
                chunk.append(cleaned)
        if len(chunk) >= CHUNK:
            _flush(actor, chunk, stores, report)
            chunk = []
        if progress and report.total % 500 == 0:
            progress(report.total)
    if chunk:
        _flush(actor, chunk, stores, report)
    if progress:
        progress(report.total)
    return report


def _flush(actor: Principal, chunk: list[_Clean], stores: dict[str, Store], report: ImportReport) -> None:
    phones = [c.values["phone_index"] for c in chunk]
    emails = [c.values["email_index"] for c in chunk if c.values["email_index"]]
    # a merged member's phone and email belong to its survivor (services.HOLDING)
    live = Member.objects.filter(status__in=HOLDING)
    existing_phones = set(live.filter(phone_index__in=phones).values_list("phone_index", flat=True))
    taken_emails = set(live.filter(email_index__in=emails).values_list("email_index", flat=True))
    now = timezone.now()
    fresh: list[tuple[_Clean, Member]] = []
    for c in chunk:
        if c.values["phone_index"] in existing_phones:
            report.existing += 1
            continue
        if c.values["email_index"] and c.values["email_index"] in taken_emails:
            report.reject(c.row, "member_email_taken")
            continue
        store = stores.get(c.store_code) if c.store_code else None
        if c.store_code and store is None:
            report.reject(c.row, "store_not_found", c.store_code)
            continue
        if store is None and actor.store_ids is not None:
            report.reject(c.row, "home_store_required")
            continue
        if store is not None and not actor.sees_store(store.pk):
            report.reject(c.row, "store_out_of_scope", c.store_code or "")
            continue
        taken_emails.add(c.values["email_index"])
        fresh.append((c, Member(**c.values, card_code=card_code_new(), home_store=store, registered_at=now,
                                import_key=c.fingerprint)))
    if not fresh:
        return
    try:
        with transaction.atomic():
            created = Member.objects.bulk_create([m for _, m in fresh])
            if created and created[0].pk is None:  # backends without RETURNING: read the ids back
                by_card = dict(Member.objects.filter(card_code__in=[m.card_code for m in created]).values_list("card_code", "pk"))
                for m in created:
                    m.pk = by_card[m.card_code]
            MemberConsent.objects.bulk_create(
                MemberConsent(member=m, channel=k.channel, granted=k.granted, changed_at=now, source=k.source)
                for c, m in fresh for k in c.consents
            )
            AuditEntry.objects.bulk_create(
                AuditEntry(actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label, action="member.import",
                           target_type="members.member", target_id=str(m.pk), after={"row": c.row})
                for c, m in fresh
            )
        report.created += len(fresh)
    except IntegrityError:
        # A member registered at the till meanwhile: fall back to one row at a time.
        for c, _m in fresh:
            _one(actor, c, report)


def _one(actor: Principal, c: _Clean, report: ImportReport) -> None:
    from memberhub.core.crypto import decrypt

    data = MemberInput(
        phone=decrypt(c.values["phone_enc"]) or "", email=decrypt(c.values["email_enc"]), name=c.values["name"],
        gender=c.values["gender"], birthday=c.values["birthday"], address=decrypt(c.values["address_enc"]),
        id_number=decrypt(c.values["id_number_enc"]), source=Member.Source.IMPORT, home_store=c.store_code,
        consents=c.consents,
    )
    try:
        member_register(actor=actor, data=data, import_key=c.fingerprint)
        report.created += 1
    except ApplicationError as exc:
        if exc.code == "member_phone_taken":
            report.existing += 1
        else:
            report.reject(c.row, exc.code, str(exc.message))
