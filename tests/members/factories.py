"""Test helpers: members made through the real service, and multipart uploads."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from memberhub.access.principal import system_principal
from memberhub.members.models import Member
from memberhub.members.services import ConsentInput, MemberInput, member_register


def member_make(phone: str = "13800138000", store: str | None = "SH", **kw: Any) -> Member:
    consents = tuple(ConsentInput(**c) for c in kw.pop("consents", ()))
    now = kw.pop("now", None)
    return member_register(
        actor=system_principal("test"),
        data=MemberInput(phone=phone, home_store=store, consents=consents, **kw),
        now=now,
    )


def upload(api: Any, path: str, content: bytes, filename: str = "members.csv", **headers: str) -> Any:
    """POST a multipart `file` with the Api client's credentials. An import is a background
    job queued when the upload commits: it runs here, inline (huey's immediate mode)."""
    from django.test import TestCase

    extra = {**api.headers, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}}
    with TestCase.captureOnCommitCallbacks(execute=True):
        return api.client.post(f"/api/v1{path}", {"file": SimpleUploadedFile(filename, content)}, **extra)


def imported(api: Any, path: str, content: bytes, filename: str = "members.csv") -> dict[str, Any]:
    """Upload an import (202), then read its job as the uploader: finished, with its report."""
    r = upload(api, path, content, filename)
    assert r.status_code == 202, r.content
    job = api.client.get(r.json()["url"], **api.headers)
    assert job.status_code == 200, job.content
    out: dict[str, Any] = job.json()
    assert out["status"] in ("done", "failed"), out
    return out
