"""Importing members from CSV (UTF-8, GB18030) and Excel, over the API and the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from openpyxl import Workbook

from memberhub.members.models import Member, MemberConsent
from tests.conftest import Api
from tests.members.factories import imported, member_make, upload

pytestmark = pytest.mark.django_db

CHINESE_CSV = (
    "手机号,姓名,生日,性别,门店,邮箱,短信\n"
    "13800138000,王小明,1990-05-01,男,SH,wxm@example.cn,是\n"
    "139 0013 9000,李娜,1992/03/08,女,BJ,,否\n"
    "+86 137-0013-7000,张伟,19850701,,ONLINE,,\n"
)


def _xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _by_phone(phone: str) -> Member:
    from memberhub.core.crypto import blind_index

    return Member.objects.get(phone_index=blind_index(phone, purpose="phone"))


@pytest.fixture
def marketing(staff_api: Callable[..., Api]) -> Api:
    return staff_api("marketing")


def _check_three_imported(report: dict[str, Any]) -> None:
    assert report["total"] == 3 and report["created"] == 3 and report["rejected"] == 0, report
    wang = _by_phone("+8613800138000")
    assert (wang.name, wang.birthday, wang.gender, wang.home_store.code) == ("王小明", date(1990, 5, 1), "male", "SH")
    assert wang.email == "wxm@example.cn" and wang.source == "import"
    assert list(wang.consents.values_list("channel", "granted")) == [("sms", True)]
    li = _by_phone("+8613900139000")
    assert (li.name, li.birthday, li.gender, li.home_store.code) == ("李娜", date(1992, 3, 8), "female", "BJ")
    assert list(li.consents.values_list("channel", "granted")) == [("sms", False)]
    zhang = _by_phone("+8613700137000")
    assert (zhang.birthday, zhang.gender, zhang.birth_month) == (date(1985, 7, 1), "unknown", 7)


def test_it_imports_a_utf8_csv_with_bom(marketing: Api, stores: Any) -> None:
    _check_three_imported(imported(marketing, "/members/import", CHINESE_CSV.encode("utf-8-sig"))["report"])


def test_it_imports_a_gb18030_csv_with_chinese_headers(marketing: Api, stores: Any) -> None:
    _check_three_imported(imported(marketing, "/members/import", CHINESE_CSV.encode("gb18030"))["report"])


def test_it_imports_english_headers(marketing: Api, stores: Any) -> None:
    csv = "phone,name,birthday,gender,home_store\n13800138000,Li Lei,1990-05-01,M,SH\n"
    report = imported(marketing, "/members/import", csv.encode())["report"]
    assert report["created"] == 1 and _by_phone("+8613800138000").gender == "male"


def test_it_imports_an_excel_file(marketing: Api, stores: Any) -> None:
    content = _xlsx([
        ["手机号", "姓名", "生日", "性别", "门店", "邮箱", "短信"],
        [13800138000, "王小明", datetime(1990, 5, 1), "男", "SH", "wxm@example.cn", "是"],
        ["139 0013 9000", "李娜", "1992-03-08", "女", "BJ", None, "否"],
        [8613700137000, "张伟", "1985.07.01", None, "ONLINE", None, None],
        [None, None, None, None, None, None, None],  # blank rows are skipped
    ])
    _check_three_imported(imported(marketing, "/members/import", content, filename="会员.xlsx")["report"])


def test_it_reports_bad_rows_with_their_row_number_and_code(marketing: Api, stores: Any) -> None:
    member_make(phone="13600136000", email="taken@example.cn")
    csv = (
        "手机号,姓名,生日,门店,邮箱\n"
        "13800138000,好的,1990-01-01,SH,\n"          # row 2: fine
        "12345,坏电话,,SH,\n"                          # row 3
        "13800138001,坏生日,1990-13-45,SH,\n"          # row 4
        "13800138002,坏门店,,NOWHERE,\n"               # row 5
        "+86 138-0013-8000,重复,,SH,\n"                # row 6: row 2's phone in another format
        "13800138003,邮箱被占,,SH,Taken@example.cn\n"  # row 7
        "13800138004,未来,2999-01-01,SH,\n"            # row 8
        ",无电话,,SH,\n"                               # row 9
        "13800138005,坏邮箱,,SH,not-an-email\n"        # row 10
    )
    report = imported(marketing, "/members/import", csv.encode())["report"]
    problems = {(r["row"], r["code"]) for r in report["rejections"]}
    assert problems == {
        (3, "phone_invalid"), (4, "birthday_invalid"), (5, "store_not_found"), (6, "duplicate_in_file"),
        (7, "member_email_taken"), (8, "birthday_in_future"), (9, "phone_required"), (10, "email_invalid"),
    }
    assert (report["total"], report["created"], report["duplicate_in_file"], report["rejected"]) == (9, 1, 1, 7)
    assert report["rejections_truncated"] is False
    assert Member.objects.count() == 2


def test_it_creates_nobody_when_the_same_file_is_imported_again(marketing: Api, stores: Any) -> None:
    content = CHINESE_CSV.encode("utf-8-sig")
    first = imported(marketing, "/members/import", content)["report"]
    second = imported(marketing, "/members/import", content)["report"]
    assert first["created"] == 3
    assert (second["created"], second["existing"], second["rejected"]) == (0, 3, 0)
    assert Member.objects.count() == 3 and MemberConsent.objects.count() == 2


def test_it_counts_members_registered_before_as_existing(marketing: Api, stores: Any) -> None:
    member_make(phone="13800138000", name="先注册")
    report = imported(marketing, "/members/import", CHINESE_CSV.encode())["report"]
    assert (report["created"], report["existing"]) == (2, 1)
    assert _by_phone("+8613800138000").name == "先注册"  # an import never overwrites


def test_it_refuses_an_unreadable_excel_file(marketing: Api, stores: Any) -> None:
    r = upload(marketing, "/members/import", b"PK\x03\x04 not really a zip", filename="x.xlsx")
    assert r.status_code == 422 and r.json()["code"] == "bad_excel"


def test_it_refuses_an_old_xls_file(marketing: Api, stores: Any) -> None:
    r = upload(marketing, "/members/import", b"\xd0\xcf\x11\xe0 binary", filename="old.xls")
    assert r.status_code == 422 and r.json()["code"] == "unsupported_file"


def test_it_refuses_an_empty_file(marketing: Api, stores: Any) -> None:
    r = upload(marketing, "/members/import", b"", filename="empty.csv")
    assert r.status_code == 422 and r.json()["code"] == "empty_file"


def test_it_refuses_an_import_without_a_file(marketing: Api, stores: Any) -> None:
    r = marketing.client.post("/api/v1/members/import", {})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_it_imports_only_into_the_callers_stores(make_key: Callable[..., str], stores: Any) -> None:
    from django.test import Client

    api = Api(Client(), make_key(None, ["SH"]))
    csv = "手机号,门店\n13800138000,SH\n13800138001,BJ\n13800138002,\n"
    report = imported(api, "/members/import", csv.encode())["report"]
    assert report["created"] == 1
    assert {(r["row"], r["code"]) for r in report["rejections"]} == {(3, "store_out_of_scope"),
                                                                     (4, "home_store_required")}


# --- CLI -----------------------------------------------------------------------------------------


def test_it_imports_from_the_command_line(tmp_path: Path, stores: Any) -> None:
    path = tmp_path / "members.csv"
    path.write_bytes(CHINESE_CSV.encode("gb18030"))
    report_path = tmp_path / "report.json"
    out, err = io.StringIO(), io.StringIO()
    call_command("import_data", "members", str(path), "--quiet", "--report", str(report_path), stdout=out, stderr=err)
    summary = json.loads(out.getvalue())
    assert (summary["total"], summary["created"]) == (3, 3)
    _check_three_imported(json.loads(report_path.read_text(encoding="utf-8")))


def test_it_prints_rejected_rows_on_the_command_line(tmp_path: Path, stores: Any) -> None:
    path = tmp_path / "members.xlsx"
    path.write_bytes(_xlsx([["手机号", "生日"], ["12345", None], [13800138000, "yesterday"]]))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_data", "members", str(path), "--quiet", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["rejected"] == 2
    assert "row 2: phone_invalid" in err.getvalue() and "row 3: birthday_invalid" in err.getvalue()


def test_it_fails_the_command_for_a_missing_file(tmp_path: Path, stores: Any) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No such file"):
        call_command("import_data", "members", str(tmp_path / "nope.csv"), "--quiet")


def test_it_imports_five_thousand_rows(tmp_path: Path, stores: Any) -> None:
    lines = ["手机号,姓名,生日,门店"]
    for i in range(5000):
        lines.append(f"1380{i:07d},会员{i},19{80 + i % 20}-{1 + i % 12:02d}-{1 + i % 28:02d},{('SH', 'BJ')[i % 2]}")
    lines.append("13800000007,重复,,SH")  # a duplicate of row 9
    lines.append("123,坏,,SH")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = io.StringIO()
    call_command("import_data", "members", str(path), "--quiet", stdout=out, stderr=io.StringIO())
    summary = json.loads(out.getvalue())
    assert (summary["total"], summary["created"], summary["duplicate_in_file"], summary["rejected"]) == (
        5002, 5000, 1, 1)
    assert Member.objects.count() == 5000
    assert Member.objects.filter(home_store__code="BJ").count() == 2500
    assert Member.objects.filter(birth_month=12).count() == 5000 // 12
    # Again: nobody new.
    out = io.StringIO()
    call_command("import_data", "members", str(path), "--quiet", stdout=out, stderr=io.StringIO())
    assert json.loads(out.getvalue())["existing"] == 5000
    assert Member.objects.count() == 5000


def test_it_imports_excels_unicode_text_utf16_tab_separated(marketing: Api, stores: Any) -> None:
    _check_three_imported(imported(marketing, "/members/import",
                                   CHINESE_CSV.replace(",", "\t").encode("utf-16"))["report"])


def test_it_stops_at_a_row_holding_a_nul_character(marketing: Api, stores: Any) -> None:
    """No text file holds U+0000 (and PostgreSQL's text cannot): the import stops at that row
    and names it, and nothing of it is written."""
    bad = CHINESE_CSV.replace("李娜", "李\x00娜").encode("utf-8")
    r = upload(marketing, "/members/import", bad)
    assert r.status_code == 422 and r.json()["code"] == "invalid_characters" and r.json()["detail"] == {"row": 3}
    assert "第 3 行" in r.json()["message"]
    with pytest.raises(Member.DoesNotExist):
        _by_phone("+8613900139000")  # the row's member
