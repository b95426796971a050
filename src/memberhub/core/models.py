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
    # the process holding an in-flight claim (core/owner.py): a claim whose owner is gone is
    # taken over at once
    owner = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")]


class Heartbeat(models.Model):
    """The last time a background component showed it works (the job consumer runs a
    heartbeat job every minute): `/readyz` and `memberhub check` read it."""

    name = models.CharField(max_length=40, primary_key=True)
    seen_at = models.DateTimeField()
class EventDelivery(models.Model):
    """One event owed to one durable handler: the outbox row (see docs/events.md).

    Written in the transaction of the change that caused it, so the event exists exactly when
    its cause does. A worker claims it with a conditional UPDATE (pending → running, with its
    own token in `claimed_by`), then runs the handler and marks it done in ONE transaction:
    the handler's effects and the done mark commit or roll back together.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        DEAD = "dead"  # gave up after MEMBERHUB_OUTBOX_MAX_ATTEMPTS; waits for a person to retry

    event = models.CharField(max_length=80)
    handler = models.CharField(max_length=200)  # module.qualname of the subscriber
    payload = models.JSONField(default=dict)  # ids and figures only, never personal data
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField()  # not claimed before (retries back off)
    claimed_by = models.CharField(max_length=80, blank=True)
    claimed_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="event_delivery_state_due")]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=["pending", "running", "done", "dead"]),
                                   name="event_delivery_state_valid"),
        ]
