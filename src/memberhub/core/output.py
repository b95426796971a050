from __future__ import annotations

from typing import Protocol


class Writer(Protocol):
    """Anything with write(str): a file, sys.stdout, or a management command's OutputWrapper."""

    def write(self, msg: str = ..., /) -> object: ...
