from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from memberhub.core.crypto import decrypt
from memberhub.domain.member_identity import member_no_format


class Member(models.Model):
    """One person in the programme, across every channel and store.

    Phone, email, address and ID number are stored encrypted (`*_enc`); phone and email
    also carry a blind index (`*_index`) for exact lookup and uniqueness among members
    who are still active or frozen. Erased and merged members release their index.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        MERGED = "merged", _("Merged")
        ERASED = "erased", _("Erased")

    class Gender(models.TextChoices):
        UNKNOWN = "unknown", _("Unknown")
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")

    class Source(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE = "online", _("Online shop")
        MINIPROGRAM = "miniprogram", _("Mini-program")
        IMPORT = "import", _("Import")

    card_code = models.CharField(max_length=20, unique=True)
    phone_enc = models.TextField(null=True, blank=True)
    phone_index = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    email_enc = models.TextField(null=True, blank=True)
    email_index = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    address_enc = models.TextField(null=True, blank=True)
    id_number_enc = models.TextField(null=True, blank=True)
    name = models.CharField(max_length=64, blank=True, db_index=True)
    gender = models.CharField(max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(null=True, blank=True)
    birth_month = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.STORE)
    home_store = models.ForeignKey("stores.Store", null=True, blank=True, on_delete=models.PROTECT, related_name="members")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="absorbed")
    registered_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)  # since when frozen (停卡); None when not frozen
    import_key = models.CharField(max_length=64, null=True, blank=True)  # row fingerprint of the import that made it

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["phone_index"], condition=Q(status__in=["active", "frozen"]), name="member_phone_unique_live"
            ),
            models.UniqueConstraint(
                fields=["email_index"], condition=Q(status__in=["active", "frozen"]), name="member_email_unique_live"
            ),
            models.CheckConstraint(
                condition=Q(birth_month__isnull=True) | Q(birth_month__gte=1, birth_month__lte=12),
                name="member_birth_month_range",
            ),
        ]

    def __str__(self) -> str:
        return self.member_no

    @property
    def member_no(self) -> str:
        return member_no_format(self.pk)

    @property
    def phone(self) -> str | None:
        return decrypt(self.phone_enc)

    @property
    def email(self) -> str | None:
        return decrypt(self.email_enc)

    @property
    def address(self) -> str | None:
        return decrypt(self.address_enc)

    @property
    def id_number(self) -> str | None:
        return decrypt(self.id_number_enc)


class MemberConsent(models.Model):
    """The member's current marketing consent on one channel, with when and where it was given.
    Every change is also in the audit log, which keeps the history."""

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("Email")
        WECHAT = "wechat", _("WeChat")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    granted = models.BooleanField()
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=40)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "channel"], name="consent_member_channel_unique")]
