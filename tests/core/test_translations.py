"""Every message shown to people has a Simplified Chinese translation (the default language)."""

from __future__ import annotations

import re
from pathlib import Path

from django.utils import translation

SRC = Path(__file__).resolve().parents[2] / "src" / "memberhub"
LITERAL = re.compile(r"""\b_\(\s*"((?:[^"\\]|\\.)+)"\s*\)""")


def _msgids() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "gettext" not in text:
            continue
        found.update(m.encode().decode("unicode_escape") if "\\" in m else m for m in LITERAL.findall(text))
    return found


def test_it_finds_the_messages_to_check() -> None:
    assert "No such member." in _msgids()


def test_it_translates_every_message_into_simplified_chinese() -> None:
    with translation.override("zh-hans"):
        missing = sorted(m for m in _msgids() if translation.gettext(m) == m)
    assert missing == [], f"untranslated (run makemessages, then fill the .po and compilemessages): {missing}"


def test_it_serves_english_unchanged() -> None:
    with translation.override("en"):
        assert translation.gettext("No such member.") == "No such member."
