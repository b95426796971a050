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
    """POST a multipart `file` with the Api client's credentials."""
    extra = {**api.headers, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}}
    return api.client.post(f"/api/v1{path}", {"file": SimpleUploadedFile(filename, content)}, **extra)
