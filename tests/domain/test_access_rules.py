"""The pure rules behind grants and login delays."""

from __future__ import annotations

from memberhub.domain.access_rules import GrantExcess, grant_excess, login_delay


def test_a_grant_within_the_holders_caps_and_stores_has_no_excess() -> None:
    assert grant_excess({"a", "b"}, None, {"a"}, None).empty
    assert grant_excess({"a"}, frozenset({1, 2}), {"a"}, frozenset({2})).empty


def test_a_grant_beyond_names_what_exceeds() -> None:
    assert grant_excess({"a"}, frozenset({1}), {"a", "c", "b"}, None) == GrantExcess(caps=("b", "c"), all_stores=True)
    assert grant_excess({"a"}, frozenset({1}), {"a"}, frozenset({1, 3, 2})) == GrantExcess(stores=(2, 3))


def test_the_login_delay_is_free_then_doubles_up_to_the_cap() -> None:
    assert [login_delay(n, free=5, max_delay=900) for n in range(12)] == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64]
    assert login_delay(15, free=5, max_delay=900) == 900
    assert login_delay(10**9, free=5, max_delay=900) == 900
