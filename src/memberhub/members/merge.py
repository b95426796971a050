"""Merging two records of the same person into one, keeping both histories."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.audit.services import audit_record
from memberhub.core.errors import NotFound, ValidationFailed
from memberhub.members.hooks import MERGE_HOOKS
from memberhub.members.models import Member, MemberConsent
from memberhub.members.presenters import member_audit_view
from memberhub.members.services import require_live

# Fields the survivor takes from the absorbed record when it has none of its own.
_FILLABLE = ("email_enc", "email_index", "address_enc", "id_number_enc", "name", "birthday", "birth_month")


def member_merge(*, actor: Principal, survivor_id: int, absorbed_id: int, reason: str) -> Member:
    """Fold `absorbed` into `survivor`. The absorbed row stays (status merged, pointing at the
    survivor) so its history and number still resolve; every app moves its rows via MERGE_HOOKS."""
    actor.require(Cap.MEMBERS_MERGE)
    if not reason.strip():
        raise ValidationFailed(_("A reason is required."), code="reason_required")
    if survivor_id == absorbed_id:
        raise ValidationFailed(_("A member cannot be merged into itself."), code="merge_same_member")
    with transaction.atomic():
        # Lock in primary-key order so two opposite merges cannot deadlock. NO KEY: a till's
        # purchase for either member (its foreign key takes a KEY SHARE lock on the member)
        # may finish meanwhile; the hooks below wait for those at the members' own rows
        # (accounts, wallets), before any member row is changed.
        locked = {
            m.pk: m
            for m in Member.objects.select_for_update(no_key=True).filter(
                pk__in=sorted([survivor_id, absorbed_id])).order_by("pk")
        }
        survivor, absorbed = locked.get(survivor_id), locked.get(absorbed_id)
        for member in (survivor, absorbed):
            if member is None or not actor.sees_store(member.home_store_id):
                raise NotFound(_("No such member."), code="member_not_found")
        assert survivor is not None and absorbed is not None
        require_live(survivor)
        require_live(absorbed)
        before_survivor, before_absorbed = member_audit_view(survivor), member_audit_view(absorbed)
        taken_email = (absorbed.email_enc, absorbed.email_index)
        absorbed_was_frozen = absorbed.status == Member.Status.FROZEN
        absorbed.status = Member.Status.MERGED
        absorbed.merged_into = survivor
        # its phone and email index stay: looked up by them, it resolves to the survivor
        # (services.member_holding); leaving the live set releases them for the survivor's use
        # Every app moves its rows (each locking its own) before a member row is written: a
        # till's earn holds the account it locked, then takes KEY SHARE on the member for its
        # purchase, and writing a member row whose unique indexes change takes FOR UPDATE:
        # the other way round the two would wait on each other.
        for hook in MERGE_HOOKS:
            hook(survivor, absorbed, actor)

        absorbed.save()  # first, leaving the live members' unique indexes, so the survivor may take its email

        for name in _FILLABLE:
            if not getattr(survivor, name) and name not in ("email_enc", "email_index"):
                setattr(survivor, name, getattr(absorbed, name))
        if not survivor.email_enc and taken_email[0]:
            survivor.email_enc, survivor.email_index = taken_email
        if absorbed_was_frozen and survivor.status != Member.Status.FROZEN:
            # a freeze (e.g. for fraud) must not be escaped by merging
            survivor.status = Member.Status.FROZEN
            survivor.frozen_at = timezone.now()
        survivor.registered_at = min(survivor.registered_at, absorbed.registered_at)
        survivor.save()

        _consents_merge(survivor, absorbed)

        audit_record(
            actor=actor, action="member.merge", target=survivor, before=before_survivor,
            after={**member_audit_view(survivor), "absorbed": absorbed.pk}, reason=reason,
        )
        audit_record(
            actor=actor, action="member.merged_into", target=absorbed, before=before_absorbed,
            after={"status": absorbed.status, "merged_into": survivor.pk}, reason=reason,
        )
    return survivor


def _consents_merge(survivor: Member, absorbed: Member) -> None:
    """Per channel the most recent decision wins: it is the person's latest word."""
    mine = {c.channel: c for c in survivor.consents.all()}
    for theirs in absorbed.consents.all():
        current = mine.get(theirs.channel)
        if current is None:
            MemberConsent.objects.create(
                member=survivor, channel=theirs.channel, granted=theirs.granted,
                changed_at=theirs.changed_at, source=theirs.source,
            )
        elif theirs.changed_at > current.changed_at:
            current.granted, current.changed_at, current.source = theirs.granted, theirs.changed_at, theirs.source
            current.save()
    survivor.updated_at = timezone.now()
