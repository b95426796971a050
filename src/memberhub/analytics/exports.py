"""Exports: the current snapshots or a health report as CSV (streamed) or Excel (write-only).

Snapshot rows carry the member number and home store, never contact data. CSV starts with
a UTF-8 BOM so Excel opens the Chinese segment names correctly; a text cell that would
start a formula is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

from memberhub.analytics.models import MemberSnapshot

SNAPSHOT_HEADER = (
    "member_id", "member_no", "home_store", "segment", "stage", "recency_days", "frequency", "monetary_fen",
    "r_score", "f_score", "m_score", "repeat_purchases", "expected_purchases", "p_alive", "expected_spend_fen",
    "clv_fen", "run_id",
)
HEALTH_HEADER = ("section", "figure", "value")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def snapshot_rows(qs: Iterable[MemberSnapshot]) -> Iterator[tuple[Any, ...]]:
    for s in qs:
        m = s.member
        yield (m.pk, m.member_no, m.home_store.code if m.home_store else None, s.segment, s.stage,
               s.recency_days, s.frequency, s.monetary_fen, s.r_score, s.f_score, s.m_score, s.repeat_purchases,
               s.expected_purchases, s.p_alive, s.expected_spend_fen, s.clv_fen, s.run_id)


def health_rows(health: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """The nested health figures flattened to (section, figure, value)."""

    def walk(section: str, prefix: str, value: Any) -> Iterator[tuple[Any, ...]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(section, f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                label = _label(v, i)
                yield from walk(section, f"{prefix}[{label}]" if prefix else f"[{label}]", v)
        else:
            yield (section, prefix, value)

    for section, value in health.items():
        yield from walk(section, "", value)


def _label(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in ("cohort", "month", "channel", "store"):
            if key in item:
                return str(item[key])
    return str(index)


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def stream() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(header)
        for row in rows:
            yield writer.writerow([_safe(v) for v in row])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def xlsx_response(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]], filename: str, title: str) -> HttpResponse:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title)
    ws.append(list(header))
    for row in rows:
        ws.append([_safe(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    response = HttpResponse(buf.getvalue(), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
