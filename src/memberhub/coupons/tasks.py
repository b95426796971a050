"""Background work: bulk issue batches, the nightly expiry job and the expiring-soon reminder."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from memberhub.coupons.expiry import coupons_expire, coupons_expiring_notify
from memberhub.coupons.issuing import issue_batch_run


@db_task()
def issue_batch_run_task(batch_id: int) -> None:
    issue_batch_run(batch_id=batch_id)


@db_periodic_task(crontab(minute="5", hour="0"))
def coupons_expire_task() -> int:
    return coupons_expire()


@db_periodic_task(crontab(minute="0", hour="10"))
def coupons_expiring_task() -> int:
    return coupons_expiring_notify()
