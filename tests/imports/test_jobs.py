"""Uploaded imports run as background jobs: the upload is checked in bounded time (4xx for a
file that cannot import, a zip bomb included), stored encrypted, and answered 202 with the
job; the job (inline here: huey's immediate mode, on commit) records its progress and report,
and deletes the file. A job is read by its starter, or by whoever imports across every store."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from django.test import TestCase
from openpyxl import Workbook

from memberhub.imports.models import ImportChunk, ImportJob
from memberhub.loyalty.models import Purchase
from memberhub.members.models import Member
from tests.conftest import Api
from tests.members.factories import imported, upload

pytestmark = pytest.mark.django_db

CSV = "手机号,姓名,门店\n13800138000,王小明,SH\n13900139000,李娜,BJ\n".encode()


def _xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _swap(xlsx: bytes, name: str, content: bytes) -> bytes:
    """The workbook with one of its parts replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, content if item.filename == name else src.read(item.filename))
    return out.getvalue()


def _queued(api: Api, path: str, content: bytes, filename: str = "members.csv") -> tuple[Any, list[Callable[[], Any]]]:
    """Upload without running the job: (the answer, the callbacks that would queue it)."""
    extra = dict(api.headers)
    from django.core.files.uploadedfile import SimpleUploadedFile

    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        r = api.client.post(f"/api/v1{path}", {"file": SimpleUploadedFile(filename, content)}, **extra)
    return r, callbacks


@pytest.fixture
def marketing(staff_api: Callable[..., Api]) -> Api:
    return staff_api("marketing")


def test_an_upload_answers_202_and_the_job_imports_in_the_background(marketing: Api, stores: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl

    def no_parsing(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the request parsed the workbook")

    monkeypatch.setattr(openpyxl, "load_workbook", no_parsing)
    content = _xlsx([["手机号", "姓名", "门店"], [13800138000, "王小明", "SH"], ["13900139000", "李娜", "BJ"]])
    r, callbacks = _queued(marketing, "/members/import", content, "会员.xlsx")
    assert r.status_code == 202, r.content
    job = r.json()
    assert (job["status"], job["rows_done"], job["report"], job["kind"]) == ("queued", 0, None, "members")
    assert job["started_by"] == "marketing-all" and job["url"] == f"/api/v1/members/imports/{job['id']}"
    assert Member.objects.count() == 0 and len(callbacks) == 1
    # the stored file holds phones: encrypted, in chunks of the database
    stored = b"".join(bytes(d) for d in ImportChunk.objects.filter(job_id=job["id"]).values_list("data", flat=True))
    assert stored and b"13800138000" not in stored and b"PK" not in stored[:10]

    monkeypatch.undo()
    callbacks[0]()  # huey, after the commit
    done = marketing.get(f"/members/imports/{job['id']}").json()
    assert done["status"] == "done" and done["error"] is None, done
    assert (done["report"]["total"], done["report"]["created"], done["rows_done"]) == (2, 2, 2)
    assert done["started_at"] and done["finished_at"]
    assert Member.objects.count() == 2
    assert not ImportChunk.objects.filter(job_id=job["id"]).exists()  # the file is gone with the job


def test_the_job_records_its_progress(marketing: Api, stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from memberhub.imports import services

    seen: list[tuple[str, int]] = []
    original = services.import_run

    def watched(**kw: Any) -> Any:
        progress = kw["progress"]

        def spy(n: int) -> None:
            progress(n)
            job = ImportJob.objects.get()
            seen.append((job.status, job.rows_done))

        return original(**{**kw, "progress": spy})

    monkeypatch.setattr(services, "import_run", watched)
    lines = ["手机号,姓名"] + [f"1380{i:07d},会员{i}" for i in range(1200)]
    job = imported(marketing, "/members/import", "\n".join(lines).encode())
    assert job["status"] == "done" and job["report"]["created"] == 1200
    assert seen[:2] == [("running", 500), ("running", 1000)]


def test_a_zip_bomb_is_refused_before_it_is_parsed(marketing: Api, stores: Any) -> None:
    # a valid sheet of 42 MB of empty rows: 0.04 MB zipped
    base = _xlsx([["手机号"], [13800138000]])
    rows = b"<row/>" * 7_000_000
    sheet = (b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>' + rows +
             b"</sheetData></worksheet>")
    bomb = _swap(base, "xl/worksheets/sheet1.xml", sheet)
    assert len(bomb) < len(sheet) / 100
    started = time.monotonic()
    r = upload(marketing, "/members/import", bomb, filename="bomb.xlsx")
    took = time.monotonic() - started
    assert r.status_code == 422 and r.json()["code"] == "import_file_too_large", r.content
    assert r.json()["detail"]["unpacked_bytes"] > 40_000_000
    assert took < 5, took  # the directory is read; nothing is inflated
    assert not ImportJob.objects.exists()


def test_a_workbook_beyond_the_unpacked_limit_is_refused(marketing: Api, stores: Any, settings: Any) -> None:
    settings.MAX_IMPORT_UNPACKED_BYTES = 4096
    r = upload(marketing, "/members/import", _xlsx([["手机号"], [13800138000]]), filename="m.xlsx")
    assert r.status_code == 422 and r.json()["code"] == "import_file_too_large"


def test_xml_entities_in_a_workbook_are_refused_by_defusedxml(marketing: Api, stores: Any) -> None:
    import openpyxl

    assert openpyxl.DEFUSEDXML is True  # defusedxml is installed and openpyxl uses it
    base = _xlsx([["手机号"], [13800138000]])
    sheet = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "13800138000">]>'
             b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             b'<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>'
             b'<row r="2"><c r="A2" t="inlineStr"><is><t>&a;</t></is></c></row></sheetData></worksheet>')
    job = imported(marketing, "/members/import", _swap(base, "xl/worksheets/sheet1.xml", sheet), "e.xlsx")
    assert job["status"] == "failed" and job["error"]["code"] == "bad_excel", job
    assert "EntitiesForbidden" in job["error"]["detail"]["error"]
    assert Member.objects.count() == 0


@pytest.mark.parametrize("name, content, code", [
    ("truncated.xlsx", "truncated", "bad_excel"),
    ("renamed.xlsx", b"phone\n13800138000\n", "bad_excel"),
    ("wrong-columns.csv", "姓名,生日\n王小明,1990-01-01\n".encode(), "import_columns_missing"),
    ("empty.csv", b"", "empty_file"),
    ("nul.csv", "手机号\n138\x0000138000\n".encode(), "invalid_characters"),
])
def test_a_malformed_file_answers_422_at_once(marketing: Api, stores: Any, name: str, content: Any,
                                              code: str) -> None:
    if content == "truncated":
        whole = _xlsx([["手机号"]] + [[13800138000 + i] for i in range(2000)])
        content = whole[: len(whole) // 2]
    r = upload(marketing, "/members/import", content, filename=name)
    assert r.status_code == 422 and r.json()["code"] == code, r.content
    assert not ImportJob.objects.exists()


def test_a_broken_sheet_fails_the_job_with_a_reason_not_a_crash(marketing: Api, stores: Any) -> None:
    base = _xlsx([["手机号"], [13800138000]])
    wrong = _xlsx([["姓名"], ["王小明"]])
    broken = _swap(base, "xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row><c>")
    for content, code in ((broken, "bad_excel"), (wrong, "import_columns_missing")):
        job = imported(marketing, "/members/import", content, "x.xlsx")
        assert job["status"] == "failed" and job["error"]["code"] == code, job
    assert not ImportChunk.objects.exists()


def test_a_job_is_seen_by_its_starter_and_by_all_store_importers(staff_api: Callable[..., Api],
                                                                 make_key: Callable[..., str], stores: Any) -> None:
    from django.test import Client

    sh = Api(Client(), make_key(["members:import", "members:write", "members:read"], ["SH"]))
    job = imported(sh, "/members/import", "手机号,门店\n13800138000,SH\n".encode())
    assert job["report"]["created"] == 1
    other_sh = Api(Client(), make_key(["members:import", "members:write"], ["SH"]))
    assert other_sh.get(f"/members/imports/{job['id']}").status_code == 404
    assert staff_api("marketing").get(f"/members/imports/{job['id']}").status_code == 200  # every store
    assert staff_api("cashier", ["SH"]).get(f"/members/imports/{job['id']}").status_code == 403
    assert sh.get(f"/loyalty/purchases/imports/{job['id']}").status_code in (403, 404)  # not an orders job
    assert sh.get("/members/imports/999999").status_code == 404


def test_a_job_whose_key_was_revoked_meanwhile_imports_nothing(make_key: Callable[..., str], stores: Any) -> None:
    from django.test import Client

    from memberhub.access.models import ApiKey

    api = Api(Client(), make_key())
    r, callbacks = _queued(api, "/members/import", CSV)
    assert r.status_code == 202
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    callbacks[0]()
    job = ImportJob.objects.get()
    assert job.status == "failed" and job.error["code"] == "import_actor_revoked"
    assert Member.objects.count() == 0 and not ImportChunk.objects.exists()


def test_purchases_are_imported_as_a_job_too(admin_api: Api, stores: Any) -> None:
    csv = b"order_no,channel,store,at,paid\nO-1,offline,SH,2026-03-01 10:00,50.00\nO-2,offline,SH,2026-03-01,5\n"
    job = imported(admin_api, "/loyalty/purchases/import", csv, "orders.csv")
    assert job["kind"] == "orders" and job["status"] == "done", job
    assert job["url"] == f"/api/v1/loyalty/purchases/imports/{job['id']}"
    assert (job["report"]["created"], job["report"]["rejected"]) == (2, 0)
    assert Purchase.objects.count() == 2
    r = upload(admin_api, "/loyalty/purchases/import", b"sku,qty\nA,1\n", filename="orders.csv")
    assert r.status_code == 422 and r.json()["detail"]["missing"] == ["order_no", "at", "paid"]


def test_a_job_abandoned_by_its_worker_fails_and_its_file_is_deleted(marketing: Api, stores: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from memberhub.imports.services import jobs_abandoned_fail

    r, _callbacks = _queued(marketing, "/members/import", CSV)  # the worker never runs it
    job_id = r.json()["id"]
    ImportJob.objects.filter(pk=job_id).update(status="running", started_at=timezone.now())
    assert jobs_abandoned_fail() == 0  # still running for all anyone knows
    assert jobs_abandoned_fail(now=timezone.now() + timedelta(hours=7)) == 1
    job = marketing.get(f"/members/imports/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["code"] == "import_abandoned"
    assert not ImportChunk.objects.exists()
