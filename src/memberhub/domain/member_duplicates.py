"""Finding records that are likely the same person.

Exact phone duplicates cannot exist (normalisation + a unique index), so what is left is
human error: a phone typed with one wrong or two swapped digits, a name typed differently
(王小明 / 王晓明, "Li Na" / "Li  Na"), a second record made with an email. Comparing every pair is
quadratic, so candidates are found by *blocking* first: phones are keyed by every
one-digit wildcard and every adjacent swap (two phones that differ by one such typo share a
key), and names are compared only inside a block of the same birthday or email.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from itertools import combinations

from rapidfuzz import fuzz

NAME_SIMILAR = 80.0  # rapidfuzz ratio, 0..100
# Beside a phone one typo apart a weaker name match is enough: one character off in a
# three-character Chinese name (王小明 / 王晓明) scores only 66.7.
NAME_SIMILAR_WITH_PHONE = 60.0
MAX_BLOCK = 200  # a larger block is a common value (e.g. 1 Jan birthdays), not evidence


@dataclass(frozen=True)
class PersonRecord:
    id: int
    name: str
    phone: str | None  # E.164
    email: str | None
    birthday: date | None


@dataclass(frozen=True)
class DuplicatePair:
    a: int
    b: int
    score: float  # 0..100, higher is more certain
    reasons: tuple[str, ...]


def _phone_keys(phone: str) -> set[str]:
    keys = set()
    for i in range(len(phone)):
        keys.add(f"w{i}:{phone[:i]}?{phone[i + 1:]}")
    for i in range(len(phone) - 1):
        swapped = phone[:i] + "".join(sorted(phone[i:i + 2])) + phone[i + 2:]
        keys.add(f"s{i}:{swapped}")
    return keys


def _name_score(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return float(fuzz.ratio(a.replace(" ", "").lower(), b.replace(" ", "").lower()))


def duplicates_find(records: Iterable[PersonRecord], *, name_threshold: float = NAME_SIMILAR) -> list[DuplicatePair]:
    recs = {r.id: r for r in records}
    blocks: dict[str, list[int]] = defaultdict(list)
    for r in recs.values():
        if r.phone:
            for key in _phone_keys(r.phone):
                blocks["p" + key].append(r.id)
        if r.birthday:
            blocks[f"b:{r.birthday.isoformat()}"].append(r.id)
        if r.email:
            blocks[f"e:{r.email}"].append(r.id)

    found: dict[tuple[int, int], DuplicatePair] = {}
    for key, ids in blocks.items():
        if len(ids) < 2 or len(ids) > MAX_BLOCK:
            continue
        for a, b in combinations(sorted(set(ids)), 2):
            pair = _judge(recs[a], recs[b], key[0], name_threshold)
            prev = found.get((a, b))
            if pair is not None and (prev is None or pair.score > prev.score):
                found[(a, b)] = pair
    return sorted(found.values(), key=lambda p: (-p.score, p.a, p.b))


def _judge(a: PersonRecord, b: PersonRecord, block: str, name_threshold: float) -> DuplicatePair | None:
    name = _name_score(a.name, b.name)
    reasons: list[str] = []
    score = 0.0
    if block == "p":  # phones one typo apart
        reasons.append("phone_one_typo_apart")
        if name >= min(name_threshold, NAME_SIMILAR_WITH_PHONE):
            reasons.append("similar_name")
            score = 60 + 0.4 * name
    elif block == "e":
        reasons.append("same_email")
        score = 70 + 0.3 * name
    elif block == "b" and name >= name_threshold:  # same birthday: only with a similar name
        reasons += ["same_birthday", "similar_name"]
        score = 40 + 0.5 * name
    if score <= 0:
        return None
    return DuplicatePair(a=a.id, b=b.id, score=round(min(score, 100.0), 1), reasons=tuple(reasons))
