from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema


class ImportErrorOut(Schema):
    code: str
    message: str
    detail: dict[str, Any]


class ImportJobOut(Schema):
    """An uploaded import: `queued`, `running` (rows_done grows), then `done` with its report
    (the counts and rejected rows of the import) or `failed` with the error that stopped it."""

    id: int
    kind: str
    status: str
    filename: str
    size: int
    rows_done: int
    report: dict[str, Any] | None
    error: ImportErrorOut | None
    started_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    url: str
