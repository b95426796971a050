"""Encryption at rest for personal data, and the blind index that keeps exact lookup fast.

Fernet (AES-128-CBC + HMAC) with MultiFernet, so a new key can be put first while old
ciphertexts still decrypt. The blind index is an HMAC of the normalised value under a
separate key: equal inputs give equal indexes (exact, indexed lookup and uniqueness)
without the database ever holding the plain value.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in settings.ENCRYPTION_KEYS])


def encrypt(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        # A key was removed from MEMBERHUB_ENCRYPTION_KEYS too early; never crash a page over it.
        return None


def blind_index(value: str | None, *, purpose: str) -> str | None:
    """HMAC-SHA256 of a normalised value; `purpose` keeps phone and email indexes apart."""
    if value is None or value == "":
        return None
    key = settings.BLIND_INDEX_KEY.encode("utf-8")
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def mask_phone(e164: str | None) -> str | None:
    """138****1234 for Chinese mobiles; keep the country code and last four elsewhere."""
    if not e164:
        return None
    if e164.startswith("+86") and len(e164) == 14:
        national = e164[3:]
        return f"{national[:3]}****{national[-4:]}"
    if len(e164) <= 6:
        return "*" * len(e164)
    return f"{e164[:3]}{'*' * (len(e164) - 7)}{e164[-4:]}"


def mask_email(email: str | None) -> str | None:
    if not email:
        return None
    local, _, domain = email.partition("@")
    shown = local[:1] if len(local) <= 2 else local[:2]
    return f"{shown}***@{domain}"


def mask_text(value: str | None, *, keep_start: int = 0, keep_end: int = 0) -> str | None:
    if not value:
        return None
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + (value[-keep_end:] if keep_end else "")


def encrypt_bytes(value: bytes) -> bytes:
    """Fernet token of arbitrary bytes (a stored answer), under the same keys as `encrypt`."""
    return _fernet().encrypt(value)


def decrypt_bytes(token: bytes) -> bytes | None:
    """The bytes sealed by `encrypt_bytes`, or None if no configured key opens them."""
    try:
        return _fernet().decrypt(token)
    except InvalidToken:
        return None


def keyed_digest(*parts: bytes, purpose: str) -> str:
    """HMAC-SHA256 under the blind-index key of parts that may hold personal data (a request
    body with a phone): a plain hash of a low-entropy value is reversed by trying them all."""
    mac = hmac.new(settings.BLIND_INDEX_KEY.encode("utf-8"), purpose.encode() + b"\0", hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(8, "big"))  # length-prefixed: no two splits hash alike
        mac.update(part)
    return mac.hexdigest()
