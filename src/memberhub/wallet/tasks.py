"""Periodic wallet jobs on huey; the logic is in giftcards.py (called directly by tests)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from memberhub.wallet.giftcards import gift_cards_expire


@db_periodic_task(crontab(minute="12"))
def wallet_gift_cards_expire_task() -> int:
    """Hourly, so a card's remainder is written off within the hour whatever the timezone."""
    return gift_cards_expire()
