"""Existing data under the new rules (docs/members.md):

- members merged before their phone and email index were kept get them back from their
  encrypted phone and email, so their old phone resolves to the survivor (only while the
  survivor's chain ends in a live member: an erased survivor's absorbed records stay unfound);
- members frozen before `frozen_at` existed get it from their last `member.freeze` audit entry
  (else their last change), so the unfreeze extends their entitlements by the time frozen.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _ends_live(Member: Any, member: Any) -> bool:
    seen = {member.pk}
    while member.status == "merged" and member.merged_into_id and member.merged_into_id not in seen:
        seen.add(member.merged_into_id)
        member = Member.objects.get(pk=member.merged_into_id)
    return member.status in ("active", "frozen")


def forwards(apps: Any, schema_editor: Any) -> None:
    from memberhub.core.crypto import blind_index, decrypt

    Member = apps.get_model("members", "Member")
    AuditEntry = apps.get_model("audit", "AuditEntry")
    for m in Member.objects.filter(status="merged", phone_index__isnull=True).iterator():
        if not _ends_live(Member, m):
            continue
        phone, email = decrypt(m.phone_enc), decrypt(m.email_enc)
        Member.objects.filter(pk=m.pk).update(
            phone_index=blind_index(phone, purpose="phone") if phone else None,
            email_index=(blind_index(email, purpose="email") if email else None) if m.email_index is None
            else m.email_index)
    for m in Member.objects.filter(status="frozen", frozen_at__isnull=True).iterator():
        last = AuditEntry.objects.filter(action="member.freeze", target_type="members.member",
                                         target_id=str(m.pk)).order_by("-at").values_list("at", flat=True).first()
        Member.objects.filter(pk=m.pk).update(frozen_at=last or m.updated_at)


class Migration(migrations.Migration):

    dependencies = [
        ("members", "0002_member_frozen_at"),
        ("audit", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
