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
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
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


def is_xlsx(head: bytes, filename: str) -> bool:
    return _is_xlsx(head) or filename.lower().endswith((".xlsx", ".xlsm"))


def rows_from_file(fh: IO[bytes], *, filename: str = "",
                   on_header: Callable[[list[str]], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number as a spreadsheet shows it, {header: value}) for each data row;
    `on_header` is shown the column names first (it may refuse them by raising)."""
    head = fh.read(65536)
    fh.seek(0)
    if is_xlsx(head, filename):
        yield from _xlsx_rows(fh, on_header)
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
        if on_header is not None:
            on_header(keys)
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


# An .xlsx is a zip of XML. What it may unpack to is bounded before anything is parsed: a
# 0.7 MB "zip bomb" declares gigabytes. Real workbooks compress their XML 5-30 times; a part
# squeezed more than MAX_XLSX_RATIO times (and over a megabyte) is refused too.
MAX_XLSX_RATIO = 100
MAX_XLSX_MEMBERS = 10_000
_XLSX_ERRORS: tuple[type[BaseException], ...] = (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError,
                                                 IndexError, TypeError, AttributeError, SyntaxError, zlib.error)


def _bad_excel(exc: BaseException | None = None) -> ValidationFailed:
    detail = {}
    if exc is not None:
        root: BaseException = exc
        while (inner := root.__cause__ or root.__context__) is not None:  # openpyxl rewords what the parser said
            root = inner
        detail = {"error": f"{type(root).__name__}: {root}"[:200]}
    return ValidationFailed(_("The Excel file could not be read."), code="bad_excel", detail=detail)


def xlsx_check(fh: IO[bytes]) -> None:
    """Refuse (422) what is not a workbook, or would unpack to more than the limit, reading only
    the zip's directory (the sizes it declares bound what the zip module will ever inflate)."""
    try:
        with zipfile.ZipFile(fh) as zf:
            members = zf.infolist()
    except _XLSX_ERRORS as exc:  # a truncated or renamed file is not a zip
        raise _bad_excel(exc) from None
    finally:
        fh.seek(0)
    limit = settings.MAX_IMPORT_UNPACKED_BYTES
    unpacked = sum(m.file_size for m in members)
    squeezed = [m.filename for m in members
                if m.file_size > (1 << 20) and m.file_size > MAX_XLSX_RATIO * max(m.compress_size, 1)]
    if unpacked > limit or squeezed or len(members) > MAX_XLSX_MEMBERS:
        raise ValidationFailed(
            _("The Excel file would unpack to more than the import limit (a compressed \"zip bomb\", or a "
              "workbook too large to import): split it, or save it as CSV."),
            code="import_file_too_large",
            detail={"unpacked_bytes": unpacked, "limit_bytes": limit, "max_ratio": MAX_XLSX_RATIO})
    if "xl/workbook.xml" not in {m.filename for m in members}:
        raise _bad_excel()


def _xlsx_rows(fh: IO[bytes], on_header: Callable[[list[str]], None] | None = None
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    import openpyxl
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # XML entity tricks (billion laughs, external entities) are refused by defusedxml, which
    # openpyxl uses when it is installed (a dependency) unless OPENPYXL_DEFUSEDXML=False
    if not openpyxl.DEFUSEDXML:
        raise RuntimeError("openpyxl is not using defusedxml: install it and unset OPENPYXL_DEFUSEDXML")
    xlsx_check(fh)
    try:
        wb = load_workbook(fh, read_only=True, data_only=True)
    except (InvalidFileException, *_XLSX_ERRORS) as exc:
        raise _bad_excel(exc) from None
    try:
        # read-only mode parses as it goes: a broken part shows up while rows are read
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise ValidationFailed(_("The file is empty."), code="empty_file")
        keys = [str(h).strip() if h is not None else "" for h in header]
        if on_header is not None:
            on_header(keys)
        for number, row in enumerate(rows, start=2):
            if not any(v not in (None, "") for v in row):
                continue
            yield number, dict(zip(keys, row, strict=False))
    except (InvalidFileException, *_XLSX_ERRORS) as exc:
        raise _bad_excel(exc) from None
    finally:
        wb.close()


def open_path(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ValidationFailed(_("The file could not be opened."), code="file_unreadable", detail={"error": str(exc)}) from None
