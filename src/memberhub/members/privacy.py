"""The member's rights under PIPL/GDPR: erasure (注销) and access (export of all data held)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.models import AuditEntry
from memberhub.audit.services import audit_record
from memberhub.core.errors import NotFound, ValidationFailed
from memberhub.core.idempotency import forget_member
from memberhub.members.hooks import ERASE_HOOKS, EXPORT_HOOKS
from memberhub.members.models import Member
from memberhub.members.presenters import member_audit_view
from memberhub.members.services import member_for_update, require_live


def member_erase(*, actor: Principal, member_id: int, reason: str) -> Member:
    """Anonymise personal data; the row, its number and every ledger entry stay for accounting,
    but nothing left can identify the person or find them by phone."""
    actor.require(Cap.MEMBERS_ERASE)
    if not reason.strip():
        raise ValidationFailed(_("A reason is required."), code="reason_required")
    with transaction.atomic():
        member = member_for_update(actor=actor, member_id=member_id)
        require_live(member)
        before = member_audit_view(member)
        for name in ("phone_enc", "phone_index", "email_enc", "email_index", "address_enc", "id_number_enc",
                     "birthday", "birth_month", "import_key"):
            setattr(member, name, None)
        member.name = ""
        member.gender = Member.Gender.UNKNOWN
        member.status = Member.Status.ERASED
        member.erased_at = timezone.now()
        member.save()
        member.consents.all().delete()
        _absorbed_forget(member)
        for hook in ERASE_HOOKS:
            hook(member, actor)
        forget_member(member.pk)  # answers kept for Idempotency-Key replays that show them
        audit_record(actor=actor, action="member.erase", target=member, before=before,
                     after={"status": member.status}, reason=reason)
    return member


def _absorbed_forget(member: Member) -> None:
    """The records merged into an erased member (and into those) held the same person's phone,
    email and other data, and their indexes found this member: clear them too."""
    ids = [member.pk]
    while ids:
        absorbed = list(Member.objects.filter(merged_into_id__in=ids).values_list("pk", flat=True))
        Member.objects.filter(pk__in=absorbed).update(
            phone_enc=None, phone_index=None, email_enc=None, email_index=None, address_enc=None,
            id_number_enc=None, birthday=None, birth_month=None, import_key=None, name="",
            gender=Member.Gender.UNKNOWN, erased_at=timezone.now())
        ids = absorbed


def member_export(*, actor: Principal, member_id: int) -> dict[str, Any]:
    """Everything held about a member, unmasked, as one JSON document."""
    actor.require(Cap.MEMBERS_EXPORT, Cap.PII_READ)
    member = Member.objects.select_related("home_store").filter(pk=member_id).first()
    if member is None or not actor.sees_store(member.home_store_id):
        raise NotFound(_("No such member."), code="member_not_found")
    data: dict[str, Any] = {
        "exported_at": timezone.now().isoformat(),
        "member": {
            "id": member.pk, "member_no": member.member_no, "card_code": member.card_code,
            "phone": member.phone, "email": member.email, "address": member.address,
            "id_number": member.id_number, "name": member.name, "gender": member.gender,
            "birthday": member.birthday.isoformat() if member.birthday else None,
            "source": member.source, "home_store": member.home_store.code if member.home_store else None,
            "status": member.status, "registered_at": member.registered_at.isoformat(),
            "merged_into": member.merged_into_id,
            "absorbed_members": list(member.absorbed.values_list("pk", flat=True)),
        },
        "consents": [
            {"channel": c.channel, "granted": c.granted, "changed_at": c.changed_at.isoformat(), "source": c.source}
            for c in member.consents.all()
        ],
        "history": [
            {"at": e.at.isoformat(), "action": e.action, "by": e.actor_label, "reason": e.reason,
             "before": e.before, "after": e.after}
            for e in AuditEntry.objects.filter(target_type="members.member", target_id=str(member.pk)).order_by("pk")
        ],
    }
    for hook in EXPORT_HOOKS:
        data.update(hook(member))
    with transaction.atomic():
        audit_record(actor=actor, action="member.export", target=member)
    return data


__all__ = ["member_erase", "member_export", "require_live"]
