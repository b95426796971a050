"""Coupon and gift-card codes (券码): bulk generation, check character, verification.

Alphabet: ``23456789ABCDEFGHJKMNPQRSTUVWXYZ`` — the digits and capitals without 0/O, 1/I/L,
so a code read aloud over the phone or copied off a receipt has no look-alike pairs. That
leaves 31 symbols, and 31 is prime, which is what makes the check character strong.

Check character (the ISBN-10 construction, modulo 31 instead of 11): number the characters
from the right starting at weight 1 (the check character itself), and choose the check so
that ``sum(weight_i * value_i) ≡ 0 (mod 31)``. With at most 30 characters all weights are
distinct and non-zero modulo 31, so:

* a single substitution at weight ``w`` changes the sum by ``w * d`` with ``0 < |d| < 31``;
  31 being prime, ``w * d`` is not a multiple of 31 — every substitution is caught;
* swapping neighbours with values ``a != b`` (weights ``w`` and ``w + 1``) changes the sum by
  exactly ``a - b``, again not a multiple of 31 — every adjacent transposition is caught.

``tests/domain/test_coupon_codes.py`` checks both exhaustively on sample codes. The prefix
(e.g. a campaign tag) uses the same alphabet and is covered by the check, so
``code_verify`` needs nothing but the code.

Generation draws bytes from ``os.urandom`` in bulk, keeps those below 248 (= 8 × 31) so that
``byte % 31`` is exactly uniform, and computes check characters and uniqueness with NumPy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # NumPy loads when codes are generated, not when Django starts
    import numpy as np

from memberhub.domain.errors import DomainError

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
BASE = len(ALPHABET)  # 31, prime
MAX_CODE_LENGTH = BASE - 1  # prefix + body: keeps every weight distinct and non-zero mod 31
DEFAULT_LENGTH = 10  # 9 random characters (31**9 ≈ 2.6e13) + 1 check character
MIN_SPARSITY = 10_000  # at most 1 in 10,000 well-formed codes may be a real one (anti-guessing)

_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_ACCEPT_BELOW = 256 - 256 % BASE  # 248: rejection sampling keeps byte % 31 uniform
_SEPARATORS = re.compile(r"[\s\-_]+")


class CodeSpecInvalid(DomainError):
    code = "code_spec_invalid"


@dataclass(frozen=True, slots=True)
class CodeCheck:
    valid: bool
    normalized: str
    reason: str | None = None  # empty | bad_character | bad_length | wrong_prefix | bad_check_character


def code_normalize(code: str) -> str:
    """Upper-case and drop spaces, dashes and underscores, as a member or cashier types them."""
    return _SEPARATORS.sub("", code).upper()


def code_check_character(payload: str) -> str:
    """The check character that makes ``payload + check`` verify (payload already normalised)."""
    if len(payload) + 1 > MAX_CODE_LENGTH:
        raise CodeSpecInvalid("code too long for a mod-31 check", max_length=MAX_CODE_LENGTH)
    total = sum((len(payload) + 1 - i) * _VALUE[ch] for i, ch in enumerate(payload))
    return ALPHABET[-total % BASE]


def code_verify(*, code: str, prefix: str = "", length: int | None = None) -> CodeCheck:
    """Is ``code`` well-formed (alphabet, check character, and optionally prefix and length)?

    ``length`` is the body length after the prefix, check character included. A valid
    answer only says the code *could* exist; whether it was issued is the database's call.
    """
    normalized = code_normalize(code)
    if not normalized:
        return CodeCheck(valid=False, normalized=normalized, reason="empty")
    if any(ch not in _VALUE for ch in normalized) or len(normalized) < 2:
        return CodeCheck(valid=False, normalized=normalized, reason="bad_character")
    wanted_prefix = code_normalize(prefix)
    if not normalized.startswith(wanted_prefix):
        return CodeCheck(valid=False, normalized=normalized, reason="wrong_prefix")
    if len(normalized) > MAX_CODE_LENGTH or (
        length is not None and len(normalized) != len(wanted_prefix) + length
    ):
        return CodeCheck(valid=False, normalized=normalized, reason="bad_length")
    total = sum((len(normalized) - i) * _VALUE[ch] for i, ch in enumerate(normalized))
    if total % BASE:
        return CodeCheck(valid=False, normalized=normalized, reason="bad_check_character")
    return CodeCheck(valid=True, normalized=normalized)


def code_format(*, code: str, group: int = 4) -> str:
    """``ABCD-EFGH-JK`` for print and display; ``code_verify`` reads it back unchanged."""
    normalized = code_normalize(code)
    return "-".join(normalized[i : i + group] for i in range(0, len(normalized), group))


def _check_spec(*, count: int, length: int, prefix: str, already: int) -> None:
    if count < 0:
        raise CodeSpecInvalid("count must not be negative")
    if length < 2 or len(prefix) + length > MAX_CODE_LENGTH:
        raise CodeSpecInvalid("bad code length", length=length, prefix=prefix, max_length=MAX_CODE_LENGTH)
    if any(ch not in _VALUE for ch in prefix):
        raise CodeSpecInvalid("prefix must use the code alphabet", prefix=prefix, alphabet=ALPHABET)
    if BASE ** (length - 1) < MIN_SPARSITY * (count + already):
        raise CodeSpecInvalid(
            "code space too small: codes would be guessable; use a longer length",
            length=length,
            count=count + already,
        )


def _random_values(n: int, random_bytes: Callable[[int], bytes]) -> np.ndarray:
    """``n`` independent uniform values in ``0..30`` (uint8), by rejection of bytes >= 248."""
    import numpy as np

    chunks: list[np.ndarray] = []
    have = 0
    while have < n:
        want = n - have
        raw = np.frombuffer(random_bytes(want + want // 16 + 64), dtype=np.uint8)
        kept = raw[raw < _ACCEPT_BELOW]
        chunks.append(kept)
        have += kept.size
    return (np.concatenate(chunks)[:n] % BASE).astype(np.uint8)


def _batch(*, n: int, length: int, prefix: str, random_bytes: Callable[[int], bytes]) -> list[str]:
    """``n`` or a few fewer codes, unique among themselves, in random order."""
    import numpy as np

    width = len(prefix) + length
    body = _random_values(n * (length - 1), random_bytes).reshape(n, length - 1)
    weights = np.arange(length, 1, -1, dtype=np.int64)  # the body's weights; check has 1
    prefix_sum = sum((width - i) * _VALUE[ch] for i, ch in enumerate(prefix))
    check = (-(body.astype(np.int64) @ weights + prefix_sum)) % BASE
    values = np.empty((n, width), dtype=np.uint8)
    values[:, : len(prefix)] = [_VALUE[ch] for ch in prefix]
    values[:, len(prefix) : width - 1] = body
    values[:, width - 1] = check
    keys: np.ndarray
    if length - 1 <= 12:  # 31**12 < 2**63: the body as one integer sorts fastest
        keys = body.astype(np.int64) @ (BASE ** np.arange(length - 2, -1, -1, dtype=np.int64))
    else:
        keys = np.ascontiguousarray(body).view(np.dtype((np.void, length - 1))).ravel()
    _, first = np.unique(keys, return_index=True)
    if first.size < n:
        values = values[np.sort(first)]
    text = np.empty((values.shape[0], width + 1), dtype=np.uint8)
    text[:, :width] = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)[values]
    text[:, width] = ord("\n")
    return text.tobytes().decode("ascii").split("\n")[:-1]


def codes_generate(
    *,
    count: int,
    length: int = DEFAULT_LENGTH,
    prefix: str = "",
    existing: Collection[str] = frozenset(),
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> list[str]:
    """``count`` new unique codes (normalised, no dashes), none of them in ``existing``.

    ``length`` is the body after the prefix, check character included. Refuses a length so
    short that guessing a well-formed code would too often hit a real one (``MIN_SPARSITY``).
    ``existing`` should be the codes already issued under the same prefix.
    """
    prefix = code_normalize(prefix)
    _check_spec(count=count, length=length, prefix=prefix, already=len(existing))
    codes: list[str] = []
    seen: set[str] | None = None
    while len(codes) < count:
        need = count - len(codes)
        fresh = _batch(n=need + need // 1000 + 8, length=length, prefix=prefix, random_bytes=random_bytes)
        if not codes and not existing:
            codes = fresh[:count]  # unique within the batch already: the common, fast path
            continue
        if seen is None:
            seen = set(existing) | set(codes)
        for code in fresh:
            if code not in seen:
                seen.add(code)
                codes.append(code)
                if len(codes) == count:
                    break
    return codes
