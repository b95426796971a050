"""Writes to the member register. Each function owns one transaction and writes its audit entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access import store_scope
from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core import events, rows
from memberhub.core.crypto import blind_index, encrypt
from memberhub.core.errors import Conflict, NotFound, ValidationFailed
from memberhub.domain.member_identity import (
    IdentityError,
    card_code_new,
    email_normalise,
    name_clean,
    phone_normalise,
)
from memberhub.domain.member_status import Act, frozen_extension, member_may
from memberhub.members.hooks import UNFREEZE_HOOKS
from memberhub.members.models import Member, MemberConsent
from memberhub.members.presenters import member_audit_view
from memberhub.stores.models import Store
from memberhub.stores.selectors import store_for_actor

LIVE = (Member.Status.ACTIVE, Member.Status.FROZEN)
SENSITIVE_FIELDS = frozenset({"phone", "email", "id_number"})

_IDENTITY_MESSAGES = {
    "phone_required": _("A mobile phone number is required."),
    "phone_invalid": _("This is not a valid mobile phone number."),
    "phone_not_mobile": _("Only mobile phone numbers can be registered."),
    "email_invalid": _("This is not a valid email address."),
    "name_too_long": _("The name is too long."),
    "name_invalid_characters": _("The name contains characters that are not allowed."),
}


@dataclass(frozen=True)
class ConsentInput:
    channel: str
    granted: bool
    source: str = "api"


@dataclass(frozen=True)
class MemberInput:
    phone: str
    email: str | None = None
    name: str = ""
    gender: str = Member.Gender.UNKNOWN
    birthday: date | None = None
    address: str | None = None
    id_number: str | None = None
    source: str = Member.Source.STORE
    home_store: str | None = None  # store code
    consents: tuple[ConsentInput, ...] = field(default_factory=tuple)


def identity_error(exc: IdentityError) -> ValidationFailed:
    return ValidationFailed(
        _IDENTITY_MESSAGES.get(exc.code, _("The request is not valid.")), code=exc.code, detail={"field": exc.field}
    )


def phone_index_of(raw: str) -> str:
    try:
        e164 = phone_normalise(raw, region=settings.DEFAULT_PHONE_REGION)
    except IdentityError as exc:
        raise identity_error(exc) from None
    return blind_index(e164, purpose="phone") or ""


def _store_for(actor: Principal, code: str | None) -> Store | None:
    if code is None:
        if actor.store_ids is not None and len(actor.store_ids) == 1:
            return Store.objects.get(pk=next(iter(actor.store_ids)))
        if actor.store_ids is not None:
            raise ValidationFailed(_("Name the member's home store."), code="home_store_required")
        return None
    return store_for_actor(actor=actor, code=code)


# A merged member keeps its phone and email index (only live members are unique on them), so
# what it was known by still finds the member it was merged into. Erasing that survivor clears
# them (privacy.member_erase), so a merged member holds an index only while its survivor lives.
HOLDING = (*LIVE, Member.Status.MERGED)


def survivor_of(member: Member) -> Member | None:
    """The live member a merged one ended in (following merges of merges); None when erased."""
    seen = {member.pk}
    while member.status == Member.Status.MERGED and member.merged_into_id and member.merged_into_id not in seen:
        seen.add(member.merged_into_id)
        member = Member.objects.select_related("home_store").get(pk=member.merged_into_id)
    return member if member.status in LIVE else None


def member_holding(index_field: str, value: str | None, *, exclude_pk: int | None = None) -> Member | None:
    """Whose phone or email (by blind index) this is: the live member holding it, else the
    survivor of a merged member that held it. `exclude_pk`: not this member (a member's own)."""
    if not value:
        return None
    live_qs = Member.objects.filter(**{index_field: value}, status__in=LIVE)
    live = (live_qs.exclude(pk=exclude_pk) if exclude_pk is not None else live_qs).first()
    if live is not None:
        return live
    for merged in Member.objects.filter(**{index_field: value}, status=Member.Status.MERGED).order_by("-pk")[:5]:
        survivor = survivor_of(merged)
        if survivor is not None and survivor.pk != exclude_pk:
            return survivor
    return None


def _taken(index_field: str, value: str, *, exclude_pk: int | None = None) -> Member | None:
    return member_holding(index_field, value, exclude_pk=exclude_pk)


def _conflict(field_name: str, member: Member, actor: Principal) -> Conflict:
    code = "member_phone_taken" if field_name == "phone_index" else "member_email_taken"
    message = (
        _("A member with this phone number already exists.")
        if field_name == "phone_index"
        else _("A member with this email address already exists.")
    )
    # the existing member is named only to a caller who may act on them (access/store_scope.py)
    detail = {"member_id": member.pk, "member_no": member.member_no} \
        if store_scope.may_act_on_member(actor, member.home_store_id) else {}
    return Conflict(message, code=code, detail=detail)


def _consents_apply(member: Member, consents: tuple[ConsentInput, ...], now: datetime) -> None:
    for consent in consents:
        if consent.channel not in MemberConsent.Channel.values:
            raise ValidationFailed(
                _("Unknown consent channel."), code="invalid_consent_channel",
                detail={"channel": consent.channel, "allowed": list(MemberConsent.Channel.values)},
            )
        MemberConsent.objects.update_or_create(
            member=member, channel=consent.channel,
            defaults={"granted": consent.granted, "changed_at": now, "source": consent.source[:40]},
        )


def _clean(data: MemberInput) -> dict[str, Any]:
    try:
        phone = phone_normalise(data.phone, region=settings.DEFAULT_PHONE_REGION)
        email = email_normalise(data.email)
        name = name_clean(data.name)
    except IdentityError as exc:
        raise identity_error(exc) from None
    if data.birthday is not None and data.birthday > timezone.localdate():
        raise ValidationFailed(_("The birthday is in the future."), code="birthday_in_future")
    return {
        "phone_enc": encrypt(phone), "phone_index": blind_index(phone, purpose="phone"),
        "email_enc": encrypt(email), "email_index": blind_index(email, purpose="email"),
        "address_enc": encrypt((data.address or "").strip() or None),
        "id_number_enc": encrypt((data.id_number or "").strip().upper() or None),
        "name": name, "gender": data.gender, "birthday": data.birthday,
        "birth_month": data.birthday.month if data.birthday else None, "source": data.source,
    }


def member_register(
    *, actor: Principal, data: MemberInput, import_key: str | None = None, now: datetime | None = None
) -> Member:
    """Register a member. The same phone in any format answers 409 with the existing member
    (for the phone of a merged member: the member it was merged into, who holds it now)."""
    actor.require(Cap.MEMBERS_WRITE)
    values = _clean(data)
    store = _store_for(actor, data.home_store)
    now = now or timezone.now()
    with transaction.atomic():
        for index_field in ("phone_index", "email_index"):
            if values[index_field] and (existing := _taken(index_field, values[index_field])):
                raise _conflict(index_field, existing, actor)
        member = None
        for _attempt in range(5):  # a card-code collision is astronomically rare; retry anyway
            try:
                with transaction.atomic():
                    member = Member.objects.create(
                        **values, card_code=card_code_new(), home_store=store, registered_at=now, import_key=import_key
                    )
                break
            except IntegrityError:
                for index_field in ("phone_index", "email_index"):
                    if values[index_field] and (existing := _taken(index_field, values[index_field])):
                        raise _conflict(index_field, existing, actor) from None
        if member is None:
            raise Conflict(_("Could not allocate a card code; try again."), code="card_code_exhausted")
        _consents_apply(member, data.consents, now)
        audit_record(actor=actor, action="member.register", target=member, after=member_audit_view(member))
        events.emit(events.MEMBER_REGISTERED, member_id=member.pk)
    return member


def member_for_update(*, actor: Principal, member_id: int) -> Member:
    # of=("self",): PostgreSQL refuses FOR UPDATE on the nullable side of the home_store outer join.
    member = Member.objects.select_for_update(of=("self",)).select_related("home_store").filter(pk=member_id).first()
    if member is None or not actor.sees_store(member.home_store_id):
        raise NotFound(_("No such member."), code="member_not_found")
    return member


def require_live(member: Member) -> None:
    if member.status == Member.Status.ERASED:
        raise Conflict(_("This member has been erased."), code="member_erased")
    if member.status == Member.Status.MERGED:
        raise Conflict(
            _("This member was merged into another."), code="member_merged",
            detail={"merged_into": member.merged_into_id},
        )


def member_update(*, actor: Principal, member_id: int, changes: dict[str, Any], reason: str = "") -> Member:
    """Partial update. Changing phone, email or ID number needs a reason."""
    actor.require(Cap.MEMBERS_WRITE)
    if SENSITIVE_FIELDS & changes.keys() and not reason.strip():
        raise ValidationFailed(
            _("A reason is required to change phone, email or ID number."), code="reason_required",
            detail={"fields": sorted(SENSITIVE_FIELDS & changes.keys())},
        )
    with transaction.atomic():
        member = member_for_update(actor=actor, member_id=member_id)
        require_live(member)
        before = member_audit_view(member)
        merged = MemberInput(
            phone=changes.get("phone") or member.phone or "",
            email=changes.get("email", member.email),
            name=changes.get("name", member.name),
            gender=changes.get("gender", member.gender),
            birthday=changes.get("birthday", member.birthday),
            address=changes.get("address", member.address),
            id_number=changes.get("id_number", member.id_number),
            source=changes.get("source", member.source),
        )
        values = _clean(merged)
        for index_field in ("phone_index", "email_index"):
            if values[index_field] and (existing := _taken(index_field, values[index_field], exclude_pk=member.pk)):
                raise _conflict(index_field, existing, actor)
        if "home_store" in changes:
            store = _store_for(actor, changes["home_store"])
            member.home_store = store
        for key, value in values.items():
            setattr(member, key, value)
        member.save()
        if "consents" in changes:
            _consents_apply(member, tuple(changes["consents"]), timezone.now())
        audit_record(
            actor=actor, action="member.update", target=member, before=before, after=member_audit_view(member),
            reason=reason, diff=True,
        )
    return member


_REFUSALS = {
    "member_frozen": _("This member is frozen."),
    "member_merged": _("This member was merged into another."),
    "member_erased": _("This member has been erased."),
}
_STATUS_SQL = f'SELECT "status", "merged_into_id" FROM "{Member._meta.db_table}" WHERE "id" = %s'


def member_act_check(member_id: int, act: Act) -> None:
    """Refuse `act` for a member whose status does not allow it (409 `member_frozen`, ...).

    Inside the caller's transaction, after its own locks (the account, the wallet, ...): the
    status is read under a KEY SHARE lock on the member row, which a freeze (FOR UPDATE on it)
    waits for and which waits for a freeze, so an act either commits before the freeze or sees
    it; never an earn or a spend booked after a freeze committed."""
    sql = _STATUS_SQL + (" FOR KEY SHARE" if rows.vendor() == "postgresql" else "")
    found = rows.one(sql, [member_id])
    if found is None:
        raise NotFound(_("No such member."), code="member_not_found")
    refusal = member_may(found[0], act)
    if refusal is not None:
        detail = {"merged_into": found[1]} if refusal == "member_merged" else {}
        raise Conflict(_REFUSALS.get(refusal, _("This member was erased or merged.")), code=refusal, detail=detail)


def member_set_frozen(*, actor: Principal, member_id: int, frozen: bool, reason: str,
                      now: datetime | None = None) -> Member:
    """停卡 / 解冻. Frozen, the member can neither earn nor redeem (domain.member_status); on
    unfreeze every app extends the member's unexpired time-limited entitlements (points lots,
    coupons) by the time frozen, in this one transaction, audited with what moved."""
    actor.require(Cap.MEMBERS_FREEZE)
    if not reason.strip():
        raise ValidationFailed(_("A reason is required."), code="reason_required")
    now = now or timezone.now()
    with transaction.atomic():
        member = member_for_update(actor=actor, member_id=member_id)  # FOR UPDATE: waits for acts in flight
        require_live(member)
        target = Member.Status.FROZEN if frozen else Member.Status.ACTIVE
        if member.status != target:
            before = {"status": member.status, "frozen_at": member.frozen_at.isoformat() if member.frozen_at else None}
            after: dict[str, Any] = {"status": target}
            if not frozen and member.frozen_at is not None:
                after["extended_by_seconds"] = int(
                    frozen_extension(frozen_at=member.frozen_at, unfrozen_at=now).total_seconds())
                for hook in UNFREEZE_HOOKS:
                    after.update(hook(member, member.frozen_at, now, actor))
            member.status = target
            member.frozen_at = now if frozen else None
            member.save(update_fields=["status", "frozen_at", "updated_at"])
            audit_record(
                actor=actor, action="member.freeze" if frozen else "member.unfreeze", target=member,
                before=before, after=after, reason=reason,
            )
    return member
