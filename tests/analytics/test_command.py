"""`memberhub analytics rfm|clv|health` on the database, and the --from-csv routing."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from memberhub import cli
from memberhub.analytics.models import AnalyticsRun, MemberSnapshot
from tests.analytics.conftest import Shop


def test_rfm_on_the_database_stores_snapshots_and_prints_a_summary(shop: Shop) -> None:
    out = io.StringIO()
    call_command("analytics", "rfm", "--observation-end", "2024-12-31", "--quiet", stdout=out)
    run = AnalyticsRun.objects.get(kind="rfm")
    assert run.is_current and MemberSnapshot.objects.filter(run=run).count() == 6
    assert "6 snapshots stored" in out.getvalue() and "重要价值客户" in out.getvalue()


def test_clv_json_output(crowd: Shop) -> None:
    out = io.StringIO()
    call_command("analytics", "clv", "--observation-end", "2024-12-31", "--horizon-days", "90", "--format", "json",
                 stdout=out)
    report = json.loads(out.getvalue())
    assert report["status"] == "succeeded" and report["params"]["horizon_days"] == 90.0
    assert sum(report["counts"]["stages"].values()) == report["counts"]["members_analysed"]


def test_health_and_a_failing_run_exit_non_zero(shop: Shop) -> None:
    out = io.StringIO()
    call_command("analytics", "health", "--from", "2024-01-01", "--to", "2024-12-31", stdout=out)
    assert "members.total" in out.getvalue()
    with pytest.raises(CommandError, match="no member purchases"):
        call_command("analytics", "clv", "--observation-end", "2020-01-01", "--quiet", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("analytics", "health", "--store", "NOPE", stdout=io.StringIO())


@pytest.mark.parametrize(("args", "csv"), [
    (["rfm", "--from-csv", "x.csv"], True), (["clv", "--from-csv=x.csv"], True), (["--help"], True), ([], True),
    (["rfm"], False), (["clv", "--horizon-days", "30"], False), (["health"], False),
])
def test_cli_routes_from_csv_to_the_file_command_and_the_rest_to_django(args: list[str], csv: bool) -> None:
    assert cli._from_csv(args) is csv


def test_cli_from_csv_still_runs_without_django(tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "t.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,10\na,2024-02-01,20\nb,2024-01-05,5\n")
    assert cli.main(["analytics", "rfm", "--from-csv", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_customers"] == 2
