"""Periodic loyalty jobs on huey; the logic is in jobs.py (called directly by tests)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from memberhub.loyalty import jobs
from memberhub.loyalty.points import holds_expire


@db_periodic_task(crontab(minute="*/5"))
def loyalty_holds_expire_task() -> int:
    return holds_expire()


@db_periodic_task(crontab(minute="7"))
def loyalty_pending_release_task() -> int:
    return jobs.pending_release()


@db_periodic_task(crontab(minute="5", hour="0"))
def loyalty_points_expire_task() -> int:
    return jobs.points_expire()


@db_periodic_task(crontab(minute="30", hour="9"))
def loyalty_expiry_remind_task() -> int:
    return jobs.expiry_remind()


@db_periodic_task(crontab(minute="20", hour="2"))
def loyalty_tiers_evaluate_task() -> dict[str, int]:
    return jobs.tiers_evaluate_all()


@db_periodic_task(crontab(minute="15"))
def loyalty_birthdays_task() -> dict[str, int]:
    """Hourly: the job works out "today" in the programme's timezone and awards once per year,
    so birthdays start just after local midnight whatever the worker's clock, and a worker
    that was down catches up on its next run."""
    return jobs.birthdays_award()
