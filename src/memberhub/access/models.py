from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from memberhub.access.roles import Role


class StaffProfile(models.Model):
    """A staff member's role and, when store-scoped, the stores they work in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff")
    role = models.CharField(_("role"), max_length=20, choices=[(r.value, r.value) for r in Role])
    all_stores = models.BooleanField(_("all stores"), default=True)
    stores = models.ManyToManyField("stores.Store", blank=True, related_name="staff")

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


class ApiKey(models.Model):
    """An integration's credential. Only a SHA-256 of the secret is kept (the key is random, so
    a slow hash adds nothing); `prefix` finds the row without scanning."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    all_stores = models.BooleanField(default=True)
    stores = models.ManyToManyField("stores.Store", blank=True, related_name="api_keys")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class LoginFailure(models.Model):
    """One failed login; counted per username and per address over a sliding window."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.CharField(max_length=64, db_index=True, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
