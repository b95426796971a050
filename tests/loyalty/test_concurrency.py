"""Randomised concurrency: many threads earn, redeem, hold, refund and expire on a few
members at once. Afterwards every ledger invariant holds, each order earned exactly once
and nothing was overspent."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from memberhub.core.errors import ApplicationError
from memberhub.domain.errors import DomainError
from memberhub.loyalty import jobs
from memberhub.loyalty.models import Hold, PointsAccount, PointsEntry, PointsLot, Purchase, TierChange
from memberhub.loyalty.points import action_award, hold_confirm, hold_create, hold_release, points_redeem
from memberhub.loyalty.programme import ProgrammeConfig, programme_config_set
from memberhub.loyalty.purchases import LineInput, RefundInput, purchase_refund
from tests.loyalty.helpers import SYSTEM, assert_sound, buy, member

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8
OPS = 40
MEMBERS = 3
ALLOWED = (DomainError, ApplicationError)


def _worker(seed: int, members: list[int], errors: list[BaseException], barrier: threading.Barrier) -> None:
    rng = random.Random(seed)
    try:
        barrier.wait(10)
        for i in range(OPS):
            member_id = rng.choice(members)
            op = rng.random()
            now = timezone.now()
            try:
                if op < 0.35:
                    # a shared order-number space so that some orders are sent twice by different threads
                    order = f"C{member_id}-{rng.randrange(60)}"
                    paid = rng.choice([0, 990, 5_000, 12_345, 30_000])
                    buy(member_id, paid, order_no=order, at=now - timedelta(days=rng.choice([0, 1, 10, 400, 800])),
                        lines=(LineInput(line_id="a", paid_fen=paid // 3), LineInput(line_id="b", paid_fen=paid - paid // 3)))
                elif op < 0.55:
                    points_redeem(actor=SYSTEM, member_id=member_id, points=rng.choice([10, 50, 100, 300]))
                elif op < 0.65:
                    hold = hold_create(actor=SYSTEM, member_id=member_id, points=rng.choice([20, 80]))
                    (hold_confirm if rng.random() < 0.5 else hold_release)(actor=SYSTEM, hold_id=hold.pk)
                elif op < 0.85:
                    order = f"C{member_id}-{rng.randrange(60)}"
                    lines = None if rng.random() < 0.5 else {"b": rng.choice([100, 1_000])}
                    purchase_refund(actor=SYSTEM, data=RefundInput(channel="offline", order_no=order,
                                                                   refund_no=f"R{seed}-{i}", lines=lines))
                elif op < 0.93:
                    jobs.points_expire()
                else:
                    jobs.pending_release(now=now + timedelta(days=8))
            except ALLOWED:
                pass
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        connection.close()


def test_invariants_hold_under_concurrent_earn_redeem_refund_and_expiry(stores: object) -> None:
    programme_config_set(ProgrammeConfig(max_negative=200, return_window_days=7))
    members = [member().pk for _ in range(MEMBERS)]
    for member_id in members:  # something to spend from the start
        buy(member_id, 50_000, at=timezone.now() - timedelta(days=30))
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=_worker, args=(seed, members, errors, barrier)) for seed in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    jobs.points_expire()
    now = timezone.now()
    for member_id in members:
        assert_sound(member_id, now)
        account = PointsAccount.objects.get(member_id=member_id)
        assert account.balance >= -200  # never beyond the overdraft policy
        assert account.debt >= 0
    assert not PointsLot.objects.filter(remaining__lt=0).exists()
    # each order earned exactly once: its earn entries add up to its points, less any repaid debt
    for purchase in Purchase.objects.filter(member__isnull=False):
        earned = PointsEntry.objects.filter(purchase=purchase, kind="earn").aggregate(s=Sum("points"))["s"] or 0
        repaid = sum(int(step["value"]) for e in PointsEntry.objects.filter(purchase=purchase, kind="earn")
                     for step in e.trace if step.get("step") == "debt_repaid")
        assert earned + repaid == purchase.points, purchase.order_no
        assert PointsEntry.objects.filter(purchase=purchase, kind="earn", lot__isnull=False).count() <= 1
    # no overspend: every redeem is covered by points that were there
    assert not Hold.objects.filter(state="held").exists()


def _at_once(work: Callable[[int], object], n: int = THREADS) -> list[object]:
    """Run work(0) … work(n-1) on n threads released together; their answers (in the order
    they came). Each thread closes its own connection; any error fails the test."""
    errors: list[BaseException] = []
    answers: list[object] = []
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        try:
            barrier.wait(10)
            answers.append(work(i))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return answers


def test_concurrent_purchases_that_together_qualify_upgrade_once_at_the_fifth(stores: object) -> None:
    """Silver takes 5 purchases in the window. Eight tills record one purchase each for the
    same member at once: the purchase that is the fifth to take the account's lock upgrades,
    as its tier check sees the four before it; none before, and no second upgrade after.
    (Checked as of the request's start, before the lock, the check left out purchases begun a
    moment later but committed first, and in about one run of three nobody upgraded.)"""
    m = member()
    _at_once(lambda n: buy(m.pk, 1_000, order_no=f"UP-{n}"))
    assert Purchase.objects.filter(member=m).count() == THREADS
    assert PointsAccount.objects.get(member=m).tier == "silver"
    upgrades = list(TierChange.objects.filter(account__member=m))
    assert [(c.reason, c.to_tier, c.explanation["purchases"]) for c in upgrades] == [("upgrade", "silver", 5)]
    assert_sound(m.pk)


def test_concurrent_check_ins_never_pass_the_daily_cap(stores: object) -> None:
    """Check-in gives 5 points, at most 5 a day (one check-in's worth). Eight check-ins for
    the same member at once, each with its own reference: 5 points in all, one entry that
    gave them, and the ledger sound; the same reference again gives nothing more."""
    m = member()
    start = PointsAccount.objects.get(member=m).balance  # the registration's points
    answers = _at_once(lambda n: action_award(actor=SYSTEM, member_id=m.pk, action="check_in", reference=f"CI-{n}"))
    assert sorted(a["points"] for a in answers) == [0] * (THREADS - 1) + [5]  # type: ignore[index]
    account = PointsAccount.objects.get(member=m)
    assert account.balance == start + 5
    assert PointsEntry.objects.filter(account=account, rule="action:check_in").exclude(points=0).count() == 1
    again = action_award(actor=SYSTEM, member_id=m.pk, action="check_in", reference="CI-0")
    assert again["replayed"] and PointsAccount.objects.get(member=m).balance == start + 5
    assert_sound(m.pk)


def test_two_reminder_runs_at_once_announce_each_lot_once(stores: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs of the expiry reminder (a second worker, or the command by hand) both read the
    same expiring lots before either marks them: each lot is announced by one run only, so a
    member gets one reminder, not two."""
    from contextlib import contextmanager

    from django.db import transaction

    from memberhub.core import events

    m = member()
    buy(m.pk, 10_000, at=timezone.now() - timedelta(days=365 * 2))
    at = timezone.now()
    assert PointsLot.objects.filter(account__member=m, expires_at__gt=at,
                                    expires_at__lte=at + timedelta(days=400)).exists()
    both_read = threading.Barrier(2)

    @contextmanager
    def atomic_after_both_read():  # type: ignore[no-untyped-def]
        both_read.wait(10)
        with transaction.atomic():
            yield

    class Transaction:
        atomic = staticmethod(atomic_after_both_read)

    monkeypatch.setattr(jobs, "transaction", Transaction)
    seen: list[dict[str, object]] = []

    @events.subscribe(events.POINTS_EXPIRING)
    def on_expiring(**payload: object) -> None:
        seen.append(payload)

    try:
        announced = _at_once(lambda _n: jobs.expiry_remind(now=at, days=400), n=2)
    finally:
        events.unsubscribe(events.POINTS_EXPIRING, on_expiring)
    assert sorted(announced) == [0, 1]  # type: ignore[type-var]
    assert [p["member_id"] for p in seen] == [m.pk]


def test_a_merge_while_tills_earn_for_both_members_loses_nothing(stores: object) -> None:
    """One thread merges B into A while the others record purchases for A and for B. Every
    purchase ends with A, every point on A's account, B's account empty, both ledgers sound,
    and nobody waits on anybody for ever (no deadlock between the merge's locks and an earn's)."""
    from memberhub.members.merge import member_merge

    a, b = member(), member()
    buy(b.pk, 10_000)

    def work(n: int) -> object:
        if n == 0:
            return member_merge(actor=SYSTEM, survivor_id=a.pk, absorbed_id=b.pk, reason="duplicate")
        return buy((a, b)[n % 2].pk, 1_000 * n, order_no=f"MERGE-{n}")

    _at_once(work)
    to, src = PointsAccount.objects.get(member=a), PointsAccount.objects.get(member=b)
    assert Purchase.objects.filter(member=a).count() == THREADS and not Purchase.objects.filter(member=b).exists()
    assert src.balance == 0 and src.pending == 0
    assert to.balance == sum(PointsEntry.objects.filter(account=to).values_list("points", flat=True))
    assert to.balance == sum(PointsEntry.objects.filter(account__in=[to, src]).exclude(kind="transfer")
                             .values_list("points", flat=True))
    assert_sound(a.pk)
    assert_sound(b.pk)


def test_a_merge_while_tills_earn_by_phone_puts_nothing_on_the_absorbed_member(stores: object) -> None:
    """Tills that name the absorbed member by phone found them before the merge committed:
    their earn either goes to the survivor or is refused with 409 `member_merged` (asked
    again, the phone finds the survivor); nothing is booked on the closed account."""
    from memberhub.core.errors import Conflict
    from memberhub.loyalty.purchases import PurchaseInput, purchase_record
    from memberhub.members.merge import member_merge

    a, b = member(), member(phone="13912340000")
    buy(b.pk, 10_000)

    def work(n: int) -> object:
        if n == 0:
            return member_merge(actor=SYSTEM, survivor_id=a.pk, absorbed_id=b.pk, reason="duplicate")
        data = PurchaseInput(channel="offline", order_no=f"PHONE-{n}", paid_fen=1_000, store="SH",
                             member_key="13912340000")
        try:
            return purchase_record(actor=SYSTEM, data=data)
        except Conflict as exc:
            assert exc.code == "member_merged"
            return exc.code

    answers = _at_once(work)
    refused = answers.count("member_merged")
    src = PointsAccount.objects.get(member=b)
    assert src.balance == 0 and src.closed_at is not None
    assert not Purchase.objects.filter(member=b).exists()
    assert Purchase.objects.filter(member=a).count() == 1 + (THREADS - 1) - refused
    assert_sound(a.pk)
    assert_sound(b.pk)
