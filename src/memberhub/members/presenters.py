"""A member as a caller may see them: personal data masked unless they hold pii:read."""

from __future__ import annotations

from typing import Any

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.core.crypto import mask_email, mask_phone, mask_text
from memberhub.core.idempotency import shows_member
from memberhub.members.models import Member


def member_masked_pii(member: Member) -> dict[str, Any]:
    """The masked form, also what the audit log keeps."""
    return {
        "phone": mask_phone(member.phone),
        "email": mask_email(member.email),
        "address": mask_text(member.address, keep_start=3),
        "id_number": mask_text(member.id_number, keep_start=3, keep_end=2),
    }


def member_public(member: Member, *, viewer: Principal) -> dict[str, Any]:
    whole = viewer.can(Cap.PII_READ)
    shows_member(member.pk, unmasked=whole)  # an answer kept for replays: deleted when this member is erased
    pii = (
        {"phone": member.phone, "email": member.email, "address": member.address, "id_number": member.id_number}
        if whole
        else member_masked_pii(member)
    )
    return {
        "id": member.pk,
        "member_no": member.member_no,
        "card_code": member.card_code,
        **pii,
        "pii_masked": not whole,
        "name": member.name,
        "gender": member.gender,
        "birthday": member.birthday,
        "source": member.source,
        "home_store": member.home_store.code if member.home_store is not None else None,
        "status": member.status,
        "merged_into": member.merged_into_id,
        "registered_at": member.registered_at,
        "updated_at": member.updated_at,
        "consents": [
            {"channel": c.channel, "granted": c.granted, "changed_at": c.changed_at, "source": c.source}
            for c in member.consents.all()
        ],
    }


def member_audit_view(member: Member) -> dict[str, Any]:
    """Fields recorded before/after in the audit log: no personal data in the clear."""
    return {
        **member_masked_pii(member),
        "name": member.name,
        "gender": member.gender,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "source": member.source,
        "home_store": member.home_store_id,
        "status": member.status,
    }
