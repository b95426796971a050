"""会员: find a member the way the counter does (phone in any format, a scanned card code, a
member number, a name) and open their 360 view. Reads go through the members, loyalty,
coupons and wallet selectors, which check the role and store scope."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from memberhub.access.principal import Principal
from memberhub.console.pages import staff_page
from memberhub.core.errors import NotFound, ValidationFailed
from memberhub.core.pagination import paginate
from memberhub.coupons import selectors as coupon_selectors
from memberhub.loyalty import selectors as loyalty_selectors
from memberhub.loyalty import tiering
from memberhub.members import selectors as member_selectors
from memberhub.members.presenters import member_public
from memberhub.wallet import selectors as wallet_selectors

PAGE = 20


def _looks_like_key(q: str) -> bool:
    """With a digit it is a phone, a card code or a member number (M00000042): an exact
    lookup, never a list (names hold no digits)."""
    return any(c.isdigit() for c in q)


@staff_page
def member_search(request: HttpRequest, principal: Principal) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    q = params.get("q", "").strip()[:100]
    cursor = request.GET.get("cursor") or None
    members: list[Any] = []
    next_cursor = None
    message = None
    if q and _looks_like_key(q):
        try:
            members = [member_selectors.member_lookup(actor=principal, key=q)]
        except (NotFound, ValidationFailed):
            message = "not_found"
    else:
        qs = member_selectors.member_list(actor=principal, name=q or None)
        page, next_cursor = paginate(qs, cursor=cursor, limit=PAGE)
        members = list(page)
        if q and not members:
            message = "not_found"
    rows = [member_public(m, viewer=principal) for m in members]
    context = {"q": q, "rows": rows, "next_cursor": next_cursor, "message": message}
    template = "console/members/_results.html" if getattr(request, "htmx", False) else "console/members/search.html"
    return render(request, template, context)


@staff_page
def member_detail(request: HttpRequest, principal: Principal, member_id: int) -> HttpResponse:
    member = member_selectors.member_get(actor=principal, member_id=member_id)
    statement, _next = paginate(loyalty_selectors.statement(actor=principal, member_id=member.pk), cursor=None, limit=20)
    context = {
        "member": member_public(member, viewer=principal),
        "points": loyalty_selectors.points_summary(actor=principal, member_id=member.pk),
        "tier": tiering.tier_progress_get(actor=principal, member_id=member.pk),
        "statement": list(statement),
        "coupons": list(coupon_selectors.coupon_list(actor=principal, member_id=member.pk).order_by("-pk")[:20]),
        "wallet": wallet_selectors.wallet_balance(actor=principal, member_id=member.pk),
    }
    return render(request, "console/members/detail.html", context)
