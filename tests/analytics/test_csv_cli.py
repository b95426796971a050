from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memberhub.analytics.csv_cli import run

DATA = Path(__file__).resolve().parents[1] / "data"
CDNOW = [
    "--from-csv",
    str(DATA / "CDNOW_master.txt"),
    "--sep",
    "whitespace",
    "--date-format",
    "%Y%m%d",
    "--customer-col",
    "customer_id",
    "--amount-col",
    "dollar_value",
]


def call(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text(
        "member,paid_at,total\n"
        "m1,2024-01-01,100.5\nm1,2024-02-01,80\nm1,2024-03-01,120\nm1,2024-03-20,90\n"
        "m2,2024-01-15,20\nm2,2024-03-25,30\n"
        "m3,2024-02-10,500\n"
        "m4,2024-01-05,15\nm4,2024-01-20,10\nm4,2024-02-02,12\n"
        "m5,2024-03-01 10:30:00,60\n",
        encoding="utf-8",
    )
    return path


def cols(path: Path) -> list[str]:
    return [
        "--from-csv",
        str(path),
        "--customer-col",
        "member",
        "--date-col",
        "paid_at",
        "--amount-col",
        "total",
    ]


def test_rfm_json_on_a_small_export(small_csv):
    code, out, err = call("rfm", *cols(small_csv), "--format", "json", "--observation-end", "2024-03-31")
    assert code == 0, err
    report = json.loads(out)
    assert report["observation_end"] == "2024-03-31"
    members = {c["customer"]: c for c in report["customers"]}
    assert members["m1"]["frequency"] == 4 and members["m1"]["monetary"] == pytest.approx(390.5)
    assert members["m1"]["recency_days"] == 11
    assert members["m5"]["recency_days"] == 30  # the date-time was read as its day
    assert members["m1"]["segment"] == "重要价值客户"
    assert sum(report["segments"].values()) == 5


def test_rfm_table_output(small_csv):
    code, out, _ = call("rfm", *cols(small_csv))
    assert code == 0
    assert "Segments" in out and "重要价值客户" in out and "m1" in out


def test_clv_json_on_the_cdnow_master_file():
    code, out, err = call(
        "clv",
        *CDNOW,
        "--format",
        "json",
        "--observation-end",
        "1998-06-30",
        "--horizon-days",
        "365",
        "--discount-rate",
        "0.1",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["n_customers"] == 23_570 and len(report["customers"]) == 23_570
    params = report["purchase_model"]["params"]
    assert set(params) == {"r", "alpha", "a", "b"} and all(v > 0 for v in params.values())
    assert report["spend_model"]["params"]["q"] > 1
    first = report["customers"][0]
    assert set(first) >= {
        "customer",
        "p_alive",
        "expected_purchases",
        "expected_average_spend",
        "clv",
        "stage",
    }
    assert first["clv"] >= report["customers"][-1]["clv"]  # sorted by CLV
    assert sum(report["stages"].values()) == 23_570
    assert 0 <= min(c["p_alive"] for c in report["customers"]) <= 1


def test_clv_table_with_pareto_nbd(small_csv):
    code, out, err = call(
        "clv", *cols(small_csv), "--model", "paretonbd", "--time-unit", "weeks", "--limit", "3"
    )
    assert code == 0, err
    assert "Fitted parameters" in out and "beta" in out and "E[purchases]" in out


@pytest.mark.parametrize(
    "content,extra,message",
    [
        (
            "member,paid_at,total\nm1,2024-01-01,10\n",
            ["--amount-col", "amount"],
            "column(s) amount not found",
        ),
        (
            "member,paid_at,total\nm1,2024-01-01,10\nm2,01/02/2024,5\n",
            [],
            "line 3: cannot read paid_at '01/02/2024'",
        ),
        ("member,paid_at,total\nm1,2024-01-01,ten\n", [], "total 'ten' is not a number"),
        ("member,paid_at,total\nm1,2024-01-01,10\nm1,2024-01-02,-4\n", [], "negative total"),
        ("member,paid_at,total\n", [], "no data rows"),
    ],
)
def test_bad_input_gives_a_message_and_a_non_zero_exit(tmp_path, content, extra, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    argv = cols(path)
    if extra:
        argv[argv.index("--amount-col") + 1] = extra[1]
    code, out, err = call("rfm", *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert out == ""


def test_negative_amounts_can_be_dropped(tmp_path):
    path = tmp_path / "refunds.csv"
    path.write_text("member,paid_at,total\nm1,2024-01-01,10\nm1,2024-01-02,-4\n", encoding="utf-8")
    code, out, _ = call("rfm", *cols(path), "--drop-negative", "--format", "json")
    assert code == 0 and json.loads(out)["customers"][0]["monetary"] == 10


def test_missing_file_bad_date_option_and_unknown_arguments(tmp_path):
    code, _, err = call("rfm", "--from-csv", str(tmp_path / "nope.csv"))
    assert code == 2 and "no such file" in err
    code, _, err = call("rfm", *CDNOW, "--observation-end", "30/06/1998")
    assert code == 2 and "YYYY-MM-DD" in err
    code, _, err = call("rfm", *CDNOW, "--format", "xml")
    assert code == 2 and "invalid choice" in err
    code, _, err = call("clv", *CDNOW, "--horizon-days", "-3")
    assert code == 2 and "positive" in err


def test_clv_refuses_data_without_repeat_purchases(tmp_path):
    path = tmp_path / "once.csv"
    path.write_text("member,paid_at,total\nm1,2024-01-01,10\nm2,2024-01-02,4\n", encoding="utf-8")
    code, _, err = call("clv", *cols(path))
    assert code == 3 and "repeat purchase" in err


def test_help_goes_to_stdout_and_exits_zero():
    code, out, _ = call("clv", "--help")
    assert code == 0 and "--discount-rate" in out


def test_runs_as_a_module(small_csv):
    proc = subprocess.run(
        [sys.executable, "-m", "memberhub.analytics.csv_cli", "rfm", *cols(small_csv), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_customers"] == 5
