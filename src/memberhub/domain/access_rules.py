"""Who may grant what, and how long a failing login waits: pure rules, no Django.

Granting: nobody hands out more than they hold. A key's scopes or a staff member's role
capabilities must all be held by the creator, and the stores must lie within the creator's
own (an all-store grant needs an all-store creator). Without this a key holding only
`apikeys:manage` in one store minted an all-store key with `pii:read` and `staff:manage`.

Logins: failures are counted per (username, address). The first `free` failures cost
nothing (people mistype); each one after that doubles the wait before the next attempt from
that address for that name (1 s, 2 s, 4 s, …) up to `max_delay`. The real user at another
address is never slowed by an attacker's guesses, and nobody is ever locked out for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class GrantExcess:
    """What a grant asks for beyond the grantor's own: capabilities, stores, or all stores."""

    caps: tuple[str, ...] = ()
    stores: tuple[int, ...] = ()
    all_stores: bool = False

    @property
    def empty(self) -> bool:
        return not (self.caps or self.stores or self.all_stores)


def grant_excess(
    held_caps: Iterable[str], held_stores: frozenset[int] | None,
    caps: Iterable[str], stores: frozenset[int] | None,
) -> GrantExcess:
    """`stores` / `held_stores` None means every store."""
    extra_caps = tuple(sorted(set(caps) - set(held_caps)))
    if held_stores is None:
        return GrantExcess(caps=extra_caps)
    if stores is None:
        return GrantExcess(caps=extra_caps, all_stores=True)
    return GrantExcess(caps=extra_caps, stores=tuple(sorted(stores - held_stores)))


def login_delay(failures: int, *, free: int, max_delay: int) -> int:
    """Seconds the next attempt must wait after `failures` recent failures of one
    (username, address): 0 for the first `free`, then 1, 2, 4, … capped at `max_delay`."""
    if failures < free:
        return 0
    extra = failures - free
    if extra >= max_delay.bit_length():  # 2**extra already beyond the cap; avoid huge numbers
        return max_delay
    return min(max_delay, 2 ** extra)
