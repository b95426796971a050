"""Streaming rows out of CSV and Excel files, for imports of any size.

CSV is decoded as UTF-8 (with or without BOM) and falls back to GB18030, the encoding
Chinese Excel exports use; UTF-16 with its BOM (Excel's "Unicode text", tab-separated) is read
too. Excel is read with openpyxl in read-only mode, row by row.

A NUL character (U+0000) in a CSV row stops the import there with the row's number: no text
file has one (it is a binary file, or an encoding read wrongly), and PostgreSQL's text cannot
hold it. Rows before it may be in already (imports write in chunks); importing the mended file
again adds only what is not.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext_lazy as _

from memberhub.core.errors import ValidationFailed


def _sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the BOM says which end first, and is dropped
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still UTF-8.
        if exc.start >= len(head) - 3:
            return "utf-8"
        return "gb18030"


def _is_xlsx(head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04")


def rows_from_file(fh: IO[bytes], *, filename: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number as a spreadsheet shows it, {header: value}) for each data row."""
    head = fh.read(65536)
    fh.seek(0)
    if _is_xlsx(head) or filename.lower().endswith((".xlsx", ".xlsm")):
        yield from _xlsx_rows(fh)
        return
    if filename.lower().endswith(".xls"):
        raise ValidationFailed(_("Old .xls files are not supported; save as .xlsx or CSV."), code="unsupported_file")
    text = io.TextIOWrapper(fh, encoding=_sniff_encoding(head), newline="", errors="strict")
    try:
        sample = text.read(8192)
        text.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(text, dialect)
        header = next(reader, None)
        if not header:
            raise ValidationFailed(_("The file is empty."), code="empty_file")
        keys = [h.strip() for h in header]
        for number, row in enumerate(reader, start=2):
            joined = "".join(row)
            if not joined.strip():  # blank, or only spaces
                continue
            if "\x00" in joined:
                raise ValidationFailed(
                    _("Row %(row)d holds a NUL character (U+0000): the file is not plain text, or its encoding "
                      "is not UTF-8, UTF-16 or GB18030.") % {"row": number},
                    code="invalid_characters", detail={"row": number})
            # rows may be shorter or longer than the header; the `strict=False` keyword itself
            # costs a third of the call
            yield number, dict(zip(keys, row))  # noqa: B905
    except UnicodeDecodeError:
        raise ValidationFailed(_("The file's text encoding could not be read."), code="bad_encoding") from None
    finally:
        text.detach()


def _xlsx_rows(fh: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # A truncated or renamed file is not a zip: BadZipFile, which is none of the others.
    try:
        wb = load_workbook(fh, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ValidationFailed(_("The Excel file could not be read."), code="bad_excel", detail={"error": str(exc)}) from None
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if not header:
        raise ValidationFailed(_("The file is empty."), code="empty_file")
    keys = [str(h).strip() if h is not None else "" for h in header]
    for number, row in enumerate(rows, start=2):
        if not any(v not in (None, "") for v in row):
            continue
        yield number, dict(zip(keys, row, strict=False))
    wb.close()


def open_path(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ValidationFailed(_("The file could not be opened."), code="file_unreadable", detail={"error": str(exc)}) from None
