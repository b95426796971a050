from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Store(models.Model):
    """A shop, restaurant, club or online channel that members belong to and staff work in."""

    class Kind(models.TextChoices):
        OFFLINE = "offline", _("Offline store")
        ONLINE = "online", _("Online shop")

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    city = models.CharField(_("city"), max_length=50, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.OFFLINE)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
