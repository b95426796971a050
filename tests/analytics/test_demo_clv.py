"""The demo's purchase histories come from the BG/NBD and Gamma-Gamma processes, so the default
CLV model fits them (no degenerate fit, no empty figures) and recovers the demo's parameters;
a degenerate fit is regularised and says so, or fails the run with the reason."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from memberhub.analytics.models import AnalyticsRun, MemberSnapshot
from memberhub.core.demo import demo_load
from memberhub.domain.clv import _fitting
from memberhub.loyalty.demo import DEMO_PURCHASES, DEMO_SPEND
from tests.analytics.conftest import Shop


def _within(fitted: dict[str, Any], truth: dict[str, float], sigmas: float) -> None:
    for k, want in truth.items():
        got, se = fitted["params"][k], fitted["std_errors"][k]
        assert se is not None and se > 0, (k, fitted)
        assert abs(math.log(got / want)) <= sigmas * se / got, (k, got, want, se)


def test_the_demo_gives_non_null_clv_and_recovers_its_parameters(stores: Any) -> None:
    demo_load(out=io.StringIO())
    out = io.StringIO()
    call_command("analytics", "clv", "--quiet", stdout=out)
    run = AnalyticsRun.objects.get(kind="clv")
    assert run.status == AnalyticsRun.Status.SUCCEEDED and run.is_current
    purchase, spend = run.fitted["purchase_model"], run.fitted["spend_model"]
    assert purchase["name"] == "bgnbd" and purchase["status"] == "ok" and spend["status"] == "ok"
    assert run.fitted["warnings"] == []
    _within(purchase, DEMO_PURCHASES.as_dict(), 3.0)
    _within(spend, DEMO_SPEND.as_dict(), 3.0)
    mean = DEMO_SPEND.gamma * DEMO_SPEND.p / (DEMO_SPEND.q - 1)
    assert spend["population_mean_fen"] == pytest.approx(mean, rel=0.2)
    snaps = MemberSnapshot.objects.filter(run=run)
    assert snaps.count() == run.counts["members_analysed"] > 200
    assert not snaps.filter(clv_fen__isnull=True).exists() and not snaps.filter(p_alive__isnull=True).exists()
    p_alive = np.array(snaps.values_list("p_alive", flat=True))
    assert p_alive.min() < 0.5 and run.counts["clv_fen"] > 0  # some have dropped out; value is not empty
    assert "fit: ok" in out.getvalue() and "total CLV: 0.00" not in out.getvalue()


def test_a_degenerate_fit_is_regularised_and_the_run_says_so(shop: Shop) -> None:
    """Eight members' scattered purchases cannot identify four BG/NBD parameters."""
    out = io.StringIO()
    call_command("analytics", "clv", "--observation-end", "2024-12-31", "--quiet", stdout=out)
    run = AnalyticsRun.objects.get(kind="clv")
    assert run.status == AnalyticsRun.Status.SUCCEEDED
    regularised = [b for b in (run.fitted["purchase_model"], run.fitted["spend_model"]) if b["status"] == "regularised"]
    assert regularised and all(b["penalty"] > 0 and b["degenerate_reason"] for b in regularised)
    assert len(run.fitted["warnings"]) == len(regularised)
    assert "regularised" in out.getvalue() and "warning:" in out.getvalue()
    assert not MemberSnapshot.objects.filter(run=run, clv_fen__isnull=True).exists()


def test_a_fit_that_stays_degenerate_fails_the_run_with_the_reason(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fitting, "PENALTIES", ())  # no regularisation to fall back on
    out = io.StringIO()
    with pytest.raises(CommandError, match="degenerate"):
        call_command("analytics", "clv", "--observation-end", "2024-12-31", "--format", "json", stdout=out)
    run = AnalyticsRun.objects.get(kind="clv")
    assert run.status == AnalyticsRun.Status.FAILED and "degenerate" in run.error and not run.is_current
    assert json.loads(out.getvalue())["status"] == "failed"
    assert not MemberSnapshot.objects.filter(run=run).exists()
