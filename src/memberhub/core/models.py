from __future__ import annotations

from django.db import models


class IdempotencyRecord(models.Model):
    """The first successful response to a POST with an Idempotency-Key, kept for replays.

    A row in state `in_flight` is the claim of the request running now: a second request
    with the same key meets the unique constraint and answers 409 instead of running twice.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    scope = models.CharField(max_length=80)  # who sent it: keys are per principal
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # sha256 of method, path and body
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # the process holding an in-flight claim (core/owner.py): a claim whose owner is gone is
    # taken over at once
    owner = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")]
