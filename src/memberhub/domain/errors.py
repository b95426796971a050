"""The one error type the domain raises.

Every business refusal that must abort an operation is a ``DomainError`` subclass with a
stable, machine-readable ``code`` (the API edge maps it once to a response) and a human
message. Optional ``params`` carry the numbers a client needs to explain the refusal
("you are 1200 fen short"), so nobody has to parse the message.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every business-rule error; subclasses override ``code``."""

    code: str = "domain_error"

    def __init__(self, message: str = "", **params: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.params: dict[str, Any] = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, params={self.params!r})"
