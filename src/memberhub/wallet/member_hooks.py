"""Members hooks: a merge moves the absorbed wallet's money by two movements and re-binds the
absorbed member's gift cards (their balances and movements stay on the card); export lists it all.

Erasure keeps the wallet: stored value is money owed to the person (预付卡 rules), and the
ledger must stay whole; the member's erased status already stops any further payment.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from memberhub.wallet.models import GiftCard, Wallet, WalletMovement


def wallet_member_merge(survivor: Any, absorbed: Any, actor: Any) -> None:
    from memberhub.audit.services import audit_record
    from memberhub.wallet.services import _move, wallet_locked

    cards = list(GiftCard.objects.select_for_update().filter(member=absorbed).order_by("pk").values_list("code", flat=True))
    if cards:
        GiftCard.objects.filter(member=absorbed).update(member=survivor)
        audit_record(actor=actor, action="gift_card.rebind", target=survivor,
                     after={"from_member_id": absorbed.pk, "cards": cards})
    source = Wallet.objects.select_for_update().filter(member=absorbed).first()
    if source is None or (source.principal_fen == 0 and source.bonus_fen == 0):
        return
    target = wallet_locked(survivor.pk)
    now = timezone.now()
    p, b = source.principal_fen, source.bonus_fen
    ref = f"merge:{absorbed.pk}->{survivor.pk}"
    _move(source, kind=WalletMovement.Kind.MERGE_OUT, principal=-p, bonus=-b, ref=ref, actor=actor, now=now)
    _move(target, kind=WalletMovement.Kind.MERGE_IN, principal=p, bonus=b, ref=ref, actor=actor, now=now)


def wallet_member_erase(member: Any, actor: Any) -> None:
    return None


def wallet_member_export(member: Any) -> dict[str, Any]:
    wallet = Wallet.objects.filter(member=member).first()
    cards = [{"code": c.code, "balance_fen": c.balance_fen, "expires_at": c.expires_at.isoformat() if c.expires_at
              else None} for c in GiftCard.objects.filter(member=member).order_by("pk")]
    if wallet is None:
        return {"wallet": None, "gift_cards": cards}
    return {"wallet": {
        "principal_fen": wallet.principal_fen, "bonus_fen": wallet.bonus_fen,
        "movements": [{"kind": m.kind, "principal_fen": m.principal_fen, "bonus_fen": m.bonus_fen, "ref": m.ref,
                       "at": m.at.isoformat()} for m in wallet.movements.order_by("pk")],
    }, "gift_cards": cards}
