"""Benchmark: coupon redemption throughput under contention, beside the raw database's rate.

Scenarios (each with --threads workers, every redeem its own transaction, like the till):

* ``one coupon``: one multi-use coupon with exactly --ops uses, every thread redeeming it on
  its own order; then --ops more attempts that must all be refused (exactly-k check);
* ``many coupons``: --ops single-use coupons, the threads spread over them.

The peer figure is the database alone doing what our redeem must do at minimum: the
conditional ``UPDATE coupons_coupon SET uses_left = uses_left - 1 WHERE id = %s AND
uses_left >= 1``, one per transaction, same threads, same rows. Ours adds the pricing, the
redemption row and the audit entry, so the ratio is the cost of doing it properly.

    .venv/bin/python bench/coupon_redeem.py                        # SQLite, in a temporary data dir
    DATABASE_URL=postgres://postgres@127.0.0.1:54329/memberhub .venv/bin/python bench/coupon_redeem.py
    .venv/bin/python bench/coupon_redeem.py --ops 2000 --threads 16 --codes 1000000

With DATABASE_URL the script works in its own database (<name>_bench), created and migrated
on the way, so it never touches the one named in the URL.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _setup() -> str:
    os.environ.setdefault("MEMBERHUB_DATA_DIR", tempfile.mkdtemp(prefix="memberhub-bench-"))
    url = os.environ.get("DATABASE_URL")
    if url:
        import psycopg

        base, name = url.rsplit("/", 1)
        bench = f"{name}_bench"
        with psycopg.connect(url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (bench,)).fetchone():
                conn.execute(f'CREATE DATABASE "{bench}"')
        os.environ["DATABASE_URL"] = f"{base}/{bench}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "memberhub.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]


def _threads(n: int, work: Callable[[int], tuple[int, int]]) -> tuple[float, int, int]:
    """Run ``work(i)`` on n threads released together; returns (seconds, ok, refused)."""
    from django.db import connection

    barrier = threading.Barrier(n + 1)
    totals = [(0, 0)] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            totals[i] = work(i)
        except BaseException as exc:  # reported below, never lost with the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed, sum(t[0] for t in totals), sum(t[1] for t in totals)


def _split(ops: int, n: int, i: int) -> range:
    return range(i * ops // n, (i + 1) * ops // n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="redeems per scenario")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--codes", type=int, default=200_000, help="bearer codes generated into the DB (0: skip)")
    args = parser.parse_args()
    vendor = _setup()

    from django.db import connection
    from django.utils import timezone

    from memberhub.access.principal import system_principal
    from memberhub.core.errors import ApplicationError
    from memberhub.coupons.checkout import coupons_redeem_for_order
    from memberhub.coupons.issuing import batch_create, coupon_issue, issue_batch_run
    from memberhub.coupons.models import Coupon, CouponRedemption, IssueBatch
    from memberhub.coupons.templates import template_create
    from memberhub.members.models import Member
    from memberhub.members.services import MemberInput, member_register

    actor = system_principal("bench")
    run_id = f"{int(time.time() * 1000) % 10**9}"
    member = member_register(actor=actor, data=MemberInput(phone=f"138{int(run_id) % 10**8:08d}"))
    basket = {"lines": [{"line_id": "L1", "sku": "SKU-1", "category": "food", "unit_price_fen": 20000,
                         "qty": 1}]}

    def template(uses: int) -> int:
        return template_create(actor=actor, values={
            "name": f"bench {run_id}", "kind": "amount_off", "amount_off_fen": 2000, "min_spend_fen": 10000,
            "validity_kind": "relative", "valid_days": 30, "uses_per_coupon": uses}).pk

    def ours(codes_for: Callable[[int], str], tag: str) -> Callable[[int], tuple[int, int]]:
        def work(i: int) -> tuple[int, int]:
            ok = refused = 0
            for j in _split(args.ops, args.threads, i):
                try:
                    coupons_redeem_for_order(actor=actor, member_id=member.pk, codes=[codes_for(j)], basket=basket,
                                             channel="online", store_id=None, order_no=f"{run_id}-{tag}-{j}",
                                             now=timezone.now())
                    ok += 1
                except ApplicationError:
                    refused += 1
            return ok, refused
        return work

    def peer(ids_for: Callable[[int], int]) -> Callable[[int], tuple[int, int]]:
        from django.db import transaction

        def work(i: int) -> tuple[int, int]:
            ok = refused = 0
            for j in _split(args.ops, args.threads, i):
                with transaction.atomic(), connection.cursor() as cur:
                    cur.execute("UPDATE coupons_coupon SET uses_left = uses_left - 1 WHERE id = %s AND uses_left >= 1",
                                [ids_for(j)])
                    ok, refused = (ok + 1, refused) if cur.rowcount == 1 else (ok, refused + 1)
            return ok, refused
        return work

    rows: list[tuple[str, str, float, int, int]] = []
    # one multi-use coupon, contended by every thread
    [one] = coupon_issue(actor=actor, template_id=template(args.ops), member_id=member.pk)
    s, ok, no = _threads(args.threads, ours(lambda j: one.code, "one"))
    rows.append(("one coupon, memberhub redeem", "ours", s, ok, no))
    assert ok == args.ops and no == 0, (ok, no)
    s, ok, no = _threads(args.threads, ours(lambda j: one.code, "over"))
    assert ok == 0 and no == args.ops, (ok, no)
    one.refresh_from_db()
    assert one.uses_left == 0 and CouponRedemption.objects.filter(coupon=one).count() == args.ops
    [raw] = coupon_issue(actor=actor, template_id=template(args.ops), member_id=member.pk)
    s2, ok, no = _threads(args.threads, peer(lambda j: raw.pk))
    rows.append(("one coupon, raw conditional UPDATE", "peer", s2, ok, no))

    # many single-use coupons
    t_many = template(1)
    many = [c.code for c in (coupon_issue(actor=actor, template_id=t_many, member_id=member.pk, quantity=100)
                             for _ in range(-(-args.ops // 100))) for c in c][: args.ops]
    s, ok, no = _threads(args.threads, ours(lambda j: many[j], "many"))
    rows.append(("many coupons, memberhub redeem", "ours", s, ok, no))
    raw_many = list(Coupon.objects.filter(template_id=t_many, code__in=many).values_list("pk", flat=True))
    Coupon.objects.filter(pk__in=raw_many).update(uses_left=1, status="available")
    s2, ok, no = _threads(args.threads, peer(lambda j: raw_many[j]))
    rows.append(("many coupons, raw conditional UPDATE", "peer", s2, ok, no))

    print(f"database: {vendor}; threads: {args.threads}; redeems per scenario: {args.ops}")
    print(f"{'scenario':<40} {'side':<5} {'seconds':>8} {'ok':>6} {'refused':>8} {'per second':>11}")
    for name, side, secs, ok, no in rows:
        print(f"{name:<40} {side:<5} {secs:>8.3f} {ok:>6} {no:>8} {args.ops / secs:>11,.0f}")
    print(f"exactly-k check: {args.ops} uses, {2 * args.ops} attempts -> {args.ops} redeemed, {args.ops} refused: OK")

    if args.codes:
        batch = batch_create(actor=actor, template_id=template(1), kind=IssueBatch.Kind.CODES, count=args.codes,
                             prefix="B")
        IssueBatch.objects.filter(pk=batch.pk).update(status="pending")
        started = time.perf_counter()
        batch = issue_batch_run(batch_id=batch.pk)
        secs = time.perf_counter() - started
        assert batch.status == "done" and batch.done == args.codes, (batch.status, batch.done, batch.error)
        print(f"bearer codes generated and stored: {args.codes:,} in {secs:.1f} s ({args.codes / secs:,.0f} codes/s)")
    print(f"members in the bench database: {Member.objects.count()}")


if __name__ == "__main__":
    main()
