"""Roles and the capabilities each one holds.

Capabilities are also the scopes of API keys, so a staff member and an integration are
authorised by the same check. Later issues add capabilities (points, coupons, ...) here.
"""

from __future__ import annotations

from enum import StrEnum


class Cap(StrEnum):
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    MEMBERS_FREEZE = "members:freeze"
    MEMBERS_IMPORT = "members:import"
    MEMBERS_MERGE = "members:merge"
    MEMBERS_ERASE = "members:erase"
    MEMBERS_EXPORT = "members:export"
    PII_READ = "pii:read"  # see phone, email, address and ID number unmasked
    AUDIT_READ = "audit:read"
    STORES_READ = "stores:read"
    STORES_MANAGE = "stores:manage"
    APIKEYS_MANAGE = "apikeys:manage"
    STAFF_MANAGE = "staff:manage"
    # Loyalty engine
    PURCHASES_WRITE = "purchases:write"  # record purchases and refunds (till, shop, import)
    POINTS_READ = "points:read"
    POINTS_REDEEM = "points:redeem"
    POINTS_ADJUST = "points:adjust"
    POINTS_APPROVE = "points:approve"  # the second staff member on a large manual adjustment
    PROGRAMME_MANAGE = "programme:manage"  # earning rules, tier ladder, benefits
    TIERS_OVERRIDE = "tiers:override"
    # Coupons, rewards, stored value
    COUPONS_READ = "coupons:read"
    COUPONS_MANAGE = "coupons:manage"
    COUPONS_ISSUE = "coupons:issue"
    COUPONS_REDEEM = "coupons:redeem"
    REWARDS_MANAGE = "rewards:manage"
    REWARDS_EXCHANGE = "rewards:exchange"
    WALLET_READ = "wallet:read"
    WALLET_TOPUP = "wallet:topup"
    WALLET_SPEND = "wallet:spend"
    # Analytics
    ANALYTICS_READ = "analytics:read"
    # Operations
    EVENTS_MANAGE = "events:manage"  # the event outbox's dead letters: read and retry


class Role(StrEnum):
    ADMIN = "admin"
    MARKETING = "marketing"
    CASHIER = "cashier"
    SERVICE = "service"
    ANALYST = "analyst"


ALL_CAPS: frozenset[str] = frozenset(c.value for c in Cap)

ROLE_CAPS: dict[Role, frozenset[str]] = {
    Role.ADMIN: ALL_CAPS,
    # Runs the programme: sees members (masked) to build audiences, imports lists.
    Role.MARKETING: frozenset(
        {
            Cap.MEMBERS_READ, Cap.MEMBERS_WRITE, Cap.MEMBERS_IMPORT, Cap.STORES_READ, Cap.POINTS_READ,
            Cap.PROGRAMME_MANAGE, Cap.COUPONS_READ, Cap.COUPONS_MANAGE, Cap.COUPONS_ISSUE, Cap.REWARDS_MANAGE,
            Cap.WALLET_READ, Cap.ANALYTICS_READ,
        }
    ),
    # The till: looks members up, registers them, records purchases and takes payment in
    # points, coupons and stored value, in their own stores only.
    Role.CASHIER: frozenset(
        {
            Cap.MEMBERS_READ, Cap.MEMBERS_WRITE, Cap.STORES_READ, Cap.PURCHASES_WRITE, Cap.POINTS_READ,
            Cap.POINTS_REDEEM, Cap.COUPONS_READ, Cap.COUPONS_REDEEM, Cap.REWARDS_EXCHANGE, Cap.WALLET_READ,
            Cap.WALLET_TOPUP, Cap.WALLET_SPEND,
        }
    ),
    # Customer service handles the member's own requests: corrections, freezes, merges,
    # erasure and data export, so it needs the unmasked contact data.
    Role.SERVICE: frozenset(
        {
            Cap.MEMBERS_READ, Cap.MEMBERS_WRITE, Cap.MEMBERS_FREEZE, Cap.MEMBERS_MERGE,
            Cap.MEMBERS_ERASE, Cap.MEMBERS_EXPORT, Cap.PII_READ, Cap.AUDIT_READ, Cap.STORES_READ,
            Cap.POINTS_READ, Cap.POINTS_ADJUST, Cap.POINTS_APPROVE, Cap.TIERS_OVERRIDE, Cap.COUPONS_READ,
            Cap.COUPONS_ISSUE, Cap.REWARDS_EXCHANGE, Cap.WALLET_READ,
        }
    ),
    # Reads everything, masked, changes nothing.
    Role.ANALYST: frozenset(
        {
            Cap.MEMBERS_READ, Cap.STORES_READ, Cap.AUDIT_READ, Cap.POINTS_READ, Cap.COUPONS_READ,
            Cap.WALLET_READ, Cap.ANALYTICS_READ,
        }
    ),
}

# Roles that work in particular stores; the others may be given a store scope too.
STORE_BOUND_ROLES = frozenset({Role.CASHIER})
