"""Computed analytics: one row per run, and per-member snapshots of an RFM or CLV run.

Nothing here is a source of truth: every row can be recomputed from purchases. Analytics
reads the transactional tables and writes only these two.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class AnalyticsRun(models.Model):
    """One typed query (kind + params) run by the runner, with its outcome.

    `is_current` marks, per kind, the successful run whose snapshots segments and campaigns
    read; it moves to a newer run in one transaction (a partial unique index backs it)."""

    class Kind(models.TextChoices):
        RFM = "rfm", _("RFM scores and segments")
        CLV = "clv", _("RFM, lifetime value and lifecycle stage")
        HEALTH = "health", _("Programme health")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    fitted = models.JSONField(default=dict, blank=True)  # model parameters, std errors, log-likelihoods
    counts = models.JSONField(default=dict, blank=True)  # purchases read, members, segments, stages
    result = models.JSONField(default=dict, blank=True)  # health figures (the cached result)
    error = models.TextField(blank=True)
    is_current = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind"], condition=Q(is_current=True), name="analytics_run_one_current"),
            models.CheckConstraint(condition=Q(is_current=False) | Q(status="succeeded"),
                                   name="analytics_run_current_succeeded"),
        ]
        indexes = [models.Index(fields=["kind", "status", "created_at"])]


class MemberSnapshot(models.Model):
    """One member's figures in one run. Money in fen; CLV fields are empty in an RFM run."""

    run = models.ForeignKey(AnalyticsRun, on_delete=models.CASCADE, related_name="snapshots")
    member = models.ForeignKey("members.Member", on_delete=models.CASCADE, related_name="+")
    recency_days = models.IntegerField()
    frequency = models.IntegerField()
    monetary_fen = models.BigIntegerField()
    r_score = models.PositiveSmallIntegerField()
    f_score = models.PositiveSmallIntegerField()
    m_score = models.PositiveSmallIntegerField()
    segment = models.CharField(max_length=20)
    repeat_purchases = models.IntegerField(null=True, blank=True)  # x: repeat purchase days
    expected_purchases = models.FloatField(null=True, blank=True)
    p_alive = models.FloatField(null=True, blank=True)
    expected_spend_fen = models.BigIntegerField(null=True, blank=True)
    clv_fen = models.BigIntegerField(null=True, blank=True)
    stage = models.CharField(max_length=10, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "member"], name="member_snapshot_run_member_unique")]
        indexes = [
            models.Index(fields=["run", "segment"]),
            models.Index(fields=["run", "stage"]),
            models.Index(fields=["member", "run"]),
        ]
