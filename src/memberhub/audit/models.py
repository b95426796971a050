from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    """Who changed what, when and why. Append-only: nothing here is updated or deleted.

    Personal data never enters before/after in the clear: services pass masked values.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_kind = models.CharField(max_length=10)  # staff / apikey / system
    actor_id = models.BigIntegerField(null=True)
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=64)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    reason = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["target_type", "target_id"])]
        ordering = ["-pk"]
