from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import File, Query, Router, Schema, Status
from ninja.files import UploadedFile

from memberhub.access import store_scope
from memberhub.core.pagination import paginate
from memberhub.core.schemas import ERRORS as API_ERRORS
from memberhub.core.schemas import Moment, ReasonIn
from memberhub.imports import services as import_jobs
from memberhub.imports.schemas import ImportJobOut
from memberhub.members import duplicates, merge, privacy, selectors, services
from memberhub.members.presenters import member_public
from memberhub.members.schemas import (
    DuplicateOut,
    MemberIn,
    MemberOut,
    MemberPage,
    MemberPatch,
    MergeIn,
)

router = Router(tags=["members"])
IMPORTS_URL = "/api/v1/members/imports"
ERRORS: dict[int, Any] = API_ERRORS


class MemberFilters(Schema):
    phone: str | None = None
    name: str | None = None
    store: str | None = None
    status: str | None = None
    registered_from: Moment | None = None
    registered_to: Moment | None = None
    birth_month: int | None = None
    cursor: str | None = None
    limit: int = 50


def _out(request: HttpRequest, member: Any) -> dict[str, Any]:
    return member_public(member, viewer=request.auth)  # type: ignore[attr-defined]


@router.post("", response={201: MemberOut, **ERRORS}, summary="Register a member")
def member_register(request: HttpRequest, body: MemberIn) -> Status[dict[str, Any]]:
    data = services.MemberInput(
        **body.model_dump(exclude={"consents"}),
        consents=tuple(services.ConsentInput(**c.model_dump()) for c in body.consents),
    )
    member = services.member_register(actor=request.auth, data=data)  # type: ignore[attr-defined]
    return Status(201, _out(request, member))


@router.get("", response={200: MemberPage, **ERRORS}, summary="List members")
def member_list(request: HttpRequest, filters: Query[MemberFilters]) -> dict[str, Any]:
    qs = selectors.member_list(
        actor=request.auth,  # type: ignore[attr-defined]
        **filters.model_dump(exclude={"cursor", "limit"}),
    )
    page, next_cursor = paginate(qs, cursor=filters.cursor, limit=filters.limit)
    return {"items": [_out(request, m) for m in page], "next_cursor": next_cursor}


@router.get("/lookup", response={200: MemberOut, **ERRORS}, summary="Find a member by phone, card code or member number")
def member_lookup(request: HttpRequest, key: str) -> dict[str, Any]:
    member = selectors.member_lookup(actor=request.auth, key=key)  # type: ignore[attr-defined]
    # a member of another store, served here, is shown masked (access/store_scope.py)
    return member_public(member, viewer=store_scope.member_viewer(request.auth, member.home_store_id))  # type: ignore[attr-defined]


@router.get("/duplicates", response={200: list[DuplicateOut], **ERRORS}, summary="Likely duplicate members")
def member_duplicates(request: HttpRequest, limit: int = 100) -> list[dict[str, Any]]:
    request.auth.require("members:merge")  # type: ignore[attr-defined]
    return duplicates.member_duplicates(actor=request.auth, limit=min(max(limit, 1), 1000))  # type: ignore[attr-defined]


@router.post("/merge", response={200: MemberOut, **ERRORS}, summary="Merge two members into one")
def member_merge(request: HttpRequest, body: MergeIn) -> dict[str, Any]:
    member = merge.member_merge(actor=request.auth, **body.model_dump())  # type: ignore[attr-defined]
    return _out(request, member)


@router.post("/import", response={202: ImportJobOut, **ERRORS},
             summary="Import members from CSV or Excel (a background job: follow its url)")
def member_import(request: HttpRequest, file: File[UploadedFile]) -> Status[dict[str, Any]]:
    job = import_jobs.job_create(actor=request.auth, kind="members", fh=file.open("rb"),  # type: ignore[attr-defined]
                                 filename=file.name or "", size=file.size)
    return Status(202, import_jobs.job_out(job, IMPORTS_URL))


@router.get("/imports/{job_id}", response={200: ImportJobOut, **ERRORS},
            summary="A members import's progress and report")
def member_import_get(request: HttpRequest, job_id: int) -> dict[str, Any]:
    job = import_jobs.job_get(actor=request.auth, kind="members", job_id=job_id)  # type: ignore[attr-defined]
    return import_jobs.job_out(job, IMPORTS_URL)


@router.get("/{member_id}", response={200: MemberOut, **ERRORS}, summary="Read a member")
def member_get(request: HttpRequest, member_id: int) -> dict[str, Any]:
    return _out(request, selectors.member_get(actor=request.auth, member_id=member_id))  # type: ignore[attr-defined]


@router.patch("/{member_id}", response={200: MemberOut, **ERRORS}, summary="Change a member's data")
def member_update(request: HttpRequest, member_id: int, body: MemberPatch) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude={"reason", "consents"})
    if body.consents is not None:
        changes["consents"] = [services.ConsentInput(**c.model_dump()) for c in body.consents]
    member = services.member_update(
        actor=request.auth, member_id=member_id, changes=changes, reason=body.reason  # type: ignore[attr-defined]
    )
    return _out(request, selectors.member_get(actor=request.auth, member_id=member.pk))  # type: ignore[attr-defined]


@router.post("/{member_id}/freeze", response={200: MemberOut, **ERRORS}, summary="Freeze a member")
def member_freeze(request: HttpRequest, member_id: int, body: ReasonIn) -> dict[str, Any]:
    member = services.member_set_frozen(actor=request.auth, member_id=member_id, frozen=True, reason=body.reason)  # type: ignore[attr-defined]
    return _out(request, member)


@router.post("/{member_id}/unfreeze", response={200: MemberOut, **ERRORS}, summary="Unfreeze a member")
def member_unfreeze(request: HttpRequest, member_id: int, body: ReasonIn) -> dict[str, Any]:
    member = services.member_set_frozen(actor=request.auth, member_id=member_id, frozen=False, reason=body.reason)  # type: ignore[attr-defined]
    return _out(request, member)


@router.post("/{member_id}/erase", response={200: MemberOut, **ERRORS}, summary="Erase a member's personal data (注销)")
def member_erase(request: HttpRequest, member_id: int, body: ReasonIn) -> dict[str, Any]:
    member = privacy.member_erase(actor=request.auth, member_id=member_id, reason=body.reason)  # type: ignore[attr-defined]
    return _out(request, member)


@router.get("/{member_id}/export", response={200: dict, **ERRORS}, summary="Everything held about a member")
def member_export(request: HttpRequest, member_id: int) -> dict[str, Any]:
    return privacy.member_export(actor=request.auth, member_id=member_id)  # type: ignore[attr-defined]
