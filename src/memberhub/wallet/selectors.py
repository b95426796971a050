"""Reads: balance now and as of a past moment, the statement, the ledger check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from memberhub.access.principal import Principal
from memberhub.access.roles import Cap
from memberhub.core.errors import NotFound
from memberhub.domain import wallet as rules
from memberhub.members.models import Member
from memberhub.wallet.models import Wallet, WalletMovement


def _member_seen(actor: Principal, member_id: int) -> None:
    actor.require(Cap.WALLET_READ)
    member = Member.objects.filter(pk=member_id).only("home_store_id").first()
    if member is None or not actor.sees_store(member.home_store_id):
        raise NotFound(_("No such member."), code="member_not_found")


def wallet_balance(*, actor: Principal, member_id: int, as_of: datetime | None = None) -> dict[str, Any]:
    """The cached balance, or the sum of movements up to ``as_of`` (inclusive) for a past date."""
    _member_seen(actor, member_id)
    wallet = Wallet.objects.filter(member_id=member_id).first()
    if wallet is None:
        principal = bonus = 0
    elif as_of is None:
        principal, bonus = wallet.principal_fen, wallet.bonus_fen
    else:
        agg = WalletMovement.objects.filter(wallet=wallet, at__lte=as_of).aggregate(p=Sum("principal_fen"),
                                                                                     b=Sum("bonus_fen"))
        principal, bonus = agg["p"] or 0, agg["b"] or 0
    return {"member_id": member_id, "as_of": as_of, "principal_fen": principal, "bonus_fen": bonus,
            "total_fen": principal + bonus}


def wallet_statement(*, actor: Principal, member_id: int, date_from: datetime | None = None,
                     date_to: datetime | None = None) -> QuerySet[WalletMovement]:
    _member_seen(actor, member_id)
    qs = WalletMovement.objects.filter(wallet__member_id=member_id).select_related("store")
    if date_from is not None:
        qs = qs.filter(at__gte=date_from)
    if date_to is not None:
        qs = qs.filter(at__lt=date_to)
    return qs


def wallet_check(*, wallet: Wallet) -> list[rules.WalletLedgerViolation]:
    entries = []
    for m in WalletMovement.objects.filter(wallet=wallet).order_by("pk"):
        entries.append(rules.WalletLedgerEntry(entry_id=f"{m.pk}p", bucket=rules.PRINCIPAL, amount_fen=m.principal_fen))
        entries.append(rules.WalletLedgerEntry(entry_id=f"{m.pk}b", bucket=rules.BONUS, amount_fen=m.bonus_fen))
    return rules.wallet_ledger_check(entries=entries, balances={rules.PRINCIPAL: wallet.principal_fen,
                                                                rules.BONUS: wallet.bonus_fen})


def wallet_check_for(*, actor: Principal, member_id: int) -> list[dict[str, Any]]:
    _member_seen(actor, member_id)
    wallet = Wallet.objects.filter(member_id=member_id).first()
    if wallet is None:
        return []
    return [{"code": v.code, "bucket": v.bucket, "entry_id": v.entry_id, "params": v.params}
            for v in wallet_check(wallet=wallet)]
