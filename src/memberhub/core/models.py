from __future__ import annotations

from django.db import models


class IdempotencyRecord(models.Model):
    """The first successful response to a POST with an Idempotency-Key, kept for replays.

    A row in state `in_flight` is the claim of the request running now: a second request
    with the same key meets the unique constraint and answers 409 instead of running twice.

    Nothing here is readable without the keys (core/idempotency.py): the answer is sealed with
    the encryption keys, with one-time secrets (a PIN, a new API key) withheld; the fingerprint
    is keyed; the scope names the principal, not its credentials; `member_id` names the member
    whose personal data the answer shows, so erasing them deletes it.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    scope = models.CharField(max_length=80)  # who sent it (k:<api key id>, u:<user id>): keys are per principal
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # keyed HMAC of method, path and body
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)  # Fernet token of the answer (core.crypto)
    withheld = models.CharField(max_length=100, blank=True)  # one-time secret fields left out, comma-separated
    member_id = models.BigIntegerField(null=True, blank=True, db_index=True)  # whose personal data it shows
    pii_unmasked = models.BooleanField(default=False)  # shows it unmasked: replayed only to holders of pii:read
    response_content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")]


class Heartbeat(models.Model):
    """The last time a background component showed it works (the job consumer runs a
    heartbeat job every minute): `/readyz` and `memberhub check` read it."""

    name = models.CharField(max_length=40, primary_key=True)
    seen_at = models.DateTimeField()
