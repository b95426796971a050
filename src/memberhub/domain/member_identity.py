"""Normalising and validating who a member is: phone, email, name, card code.

Pure functions: the same phone typed as `138 0013 8000`, `+86-138-0013-8000` or
`008613800138000` normalises to one E.164 string, so uniqueness holds across formats.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class IdentityError(Exception):
    code: str
    field: str

    def __str__(self) -> str:
        return f"{self.field}: {self.code}"


def phone_normalise(raw: str, *, region: str = "CN") -> str:
    """Return the E.164 form of a mobile number or raise IdentityError.

    Chinese numbers may be written without the country code; others need E.164 (+...).
    Only mobile numbers are accepted: members are reached by SMS.
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        raise IdentityError("phone_required", "phone")
    if text.startswith("00"):
        text = "+" + text[2:]
    if not re.fullmatch(r"[+\d\s\-().]{5,32}", text):
        raise IdentityError("phone_invalid", "phone")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise IdentityError("phone_invalid", "phone") from None
    if not phonenumbers.is_valid_number(number):
        raise IdentityError("phone_invalid", "phone")
    kind = phonenumbers.number_type(number)
    if kind not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise IdentityError("phone_not_mobile", "phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)+$")


def email_normalise(raw: str | None) -> str | None:
    """Lower-case, trimmed email, or None when empty. The domain is IDNA-encoded."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        return None
    local, sep, domain = text.rpartition("@")
    if not sep or not local:
        raise IdentityError("email_invalid", "email")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise IdentityError("email_invalid", "email") from None
    email = f"{local}@{domain}".lower()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise IdentityError("email_invalid", "email")
    return email


def name_clean(raw: str | None) -> str:
    """Trim and NFC-normalise a name; emoji are kept, control characters refused."""
    if raw is None:
        return ""
    text = unicodedata.normalize("NFC", raw).strip()
    text = re.sub(r"\s+", " ", text)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch not in "\u200d\ufe0f" for ch in text):
        raise IdentityError("name_invalid_characters", "name")
    if len(text) > MAX_NAME_LENGTH:
        raise IdentityError("name_too_long", "name")
    return text


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(code: str) -> bool:
    return code.isdigit() and len(code) >= 2 and luhn_check_digit(code[:-1]) == code[-1]


def card_code_new(*, length: int = 16) -> str:
    """A random numeric card code for the till's scanner, with a Luhn check digit so a
    mistyped code is refused instead of finding another member."""
    body = "8" + "".join(str(secrets.randbelow(10)) for _ in range(length - 2))
    return body + luhn_check_digit(body)


def member_no_format(pk: int) -> str:
    return f"M{pk:08d}"


def member_no_parse(text: str) -> int | None:
    m = re.fullmatch(r"[Mm]0*(\d{1,18})", text.strip())
    return int(m.group(1)) if m else None
