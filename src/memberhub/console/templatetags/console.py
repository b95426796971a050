"""Money as people read it: integer fen shown in yuan (¥1,234.50)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


@register.filter
def percent(part: int | None, whole: int | None) -> int:
    """A progress bar's width, 0-100."""
    if not part or not whole:
        return 0
    return max(0, min(100, round(100 * part / whole)))


@register.filter
def member_status(value: str) -> str:
    from memberhub.members.models import Member

    try:
        return str(Member.Status(value).label)
    except ValueError:
        return value


@register.filter
def phone(value: str | None) -> str:
    """A whole Chinese mobile number as people write it (186 6507 3952); masked ones unchanged."""
    if not value:
        return "—"
    if "*" in value or not value.startswith("+"):
        return value
    import phonenumbers

    try:
        number = phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return value
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 86 else \
        phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, fmt)
