"""An uploaded import: the job row, and its file kept encrypted until the job ends."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    """One uploaded file being imported in the background: who started it, how far it got,
    and its report (counts and rejected rows) or the error that stopped it."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("Members")
        ORDERS = "orders", _("Purchases")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    filename = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField()  # bytes uploaded
    options = models.JSONField(default=dict, blank=True)  # orders: create_members, source
    actor_kind = models.CharField(max_length=10)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200)
    rows_done = models.BigIntegerField(default=0)
    report = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)  # {code, message, detail} when it failed
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "created_at"])]


class ImportChunk(models.Model):
    """A piece of the uploaded file (phones, names: personal data) as a Fernet token; the
    file never sits in plain text at rest, and its chunks are deleted when the job ends.
    In the database rather than the data dir, so a worker on another machine reads it."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    seq = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="import_chunk_unique")]
