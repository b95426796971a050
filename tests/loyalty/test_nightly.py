"""`memberhub loyalty nightly`: the night shift's jobs in one run."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from memberhub.loyalty import jobs
from tests.loyalty.helpers import account, buy, member

pytestmark = pytest.mark.django_db


def test_the_nightly_command_runs_every_job_and_reports_what_each_did(stores: object) -> None:
    m = member()
    buy(m.pk, 500_000)  # gold
    out = io.StringIO()
    call_command("loyalty", "nightly", stdout=out)
    report = json.loads(out.getvalue())
    assert set(report) == {"holds_released", "pending_released", "expired", "reminders", "tiers", "birthdays"}
    assert report["tiers"] == {"unchanged": 1}  # evaluated, and kept: gold for its term
    assert account(m.pk).tier == "gold"


def test_the_nightly_run_on_the_clock_evaluates_each_member_as_of_its_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no time, the tier evaluation takes each member's moment under its lock (a long
    run must count purchases made meanwhile); a time given is kept for every job."""
    seen: list[object] = []
    monkeypatch.setattr(jobs, "tiers_evaluate_all", lambda *, now=None: seen.append(now) or {})
    jobs.nightly()
    at = datetime(2026, 3, 10, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    jobs.nightly(now=at + timedelta(days=1))
    assert seen == [None, at + timedelta(days=1)]


def test_the_nightly_run_passes_over_a_merged_members_closed_account(stores: object) -> None:
    """A merge closes the absorbed account, which keeps its tier; the jobs still go over it."""
    from memberhub.loyalty.models import PointsAccount
    from memberhub.members.merge import member_merge
    from tests.loyalty.helpers import SYSTEM

    survivor, absorbed = member(), member()
    buy(absorbed.pk, 500_000)  # gold
    member_merge(actor=SYSTEM, survivor_id=survivor.pk, absorbed_id=absorbed.pk, reason="duplicate")
    assert PointsAccount.objects.get(member=absorbed).closed_at is not None
    report = jobs.nightly()
    assert sum(report["tiers"].values()) >= 1  # type: ignore[attr-defined]
    assert account(survivor.pk).tier == "gold"
