"""The published OpenAPI document is true: one component per schema class (no two classes
share a name, so no endpoint is documented with another's body), and every documented
operation is reachable at its path with its method."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
from django.test import Client
from pydantic import BaseModel


def _openapi() -> dict[str, Any]:
    from memberhub.api import api

    return api.get_openapi_schema()


def _schema_classes() -> dict[str, set[str]]:
    import memberhub.api  # noqa: F401  (every router, so every schema class, is imported)

    names: dict[str, set[str]] = defaultdict(set)

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("memberhub."):
                names[sub.__name__].add(f"{sub.__module__}.{sub.__qualname__}")
            walk(sub)

    walk(BaseModel)
    return names


def test_no_two_schema_classes_share_a_name() -> None:
    clashes = {name: sorted(where) for name, where in _schema_classes().items() if len(where) > 1}
    assert not clashes


def test_every_component_is_one_schema_class() -> None:
    classes = _schema_classes()
    components = set(_openapi()["components"]["schemas"])
    # every component names a class of ours (or an enum of one), and no class name is used twice
    models = {name for name in components if name in classes}
    assert models, components
    for name in models:
        assert len(classes[name]) == 1, (name, classes[name])


def test_each_endpoint_documents_its_own_body() -> None:
    doc = _openapi()

    def body(path: str) -> dict[str, Any]:
        ref = doc["paths"][f"/api/v1{path}"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]

    assert "at" in body("/loyalty/refunds")["properties"]  # the loyalty refund, not checkout's or the wallet's
    assert "paid_fen" in body("/loyalty/purchases")["properties"]
    assert "channel" in body("/checkout/refund")["properties"]
    assert "code" in body("/coupons/claim")["properties"]
    assert set(body("/wallet/{member_id}/refund")["properties"]) == {"order_no", "amount_fen", "refund_no"}


@pytest.mark.django_db
def test_every_operation_is_reachable_at_its_path() -> None:
    """Without credentials every operation answers 401 (or runs, for the few that need none),
    never 404 or 405: a path shadowed by another route's parameter (`/purchases/claim` read as
    `/purchases/{purchase_id}`) would answer 405 to every request."""
    client = Client()
    wrong = []
    for path, item in _openapi()["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in item:
            response = client.generic(method.upper(), url, data="{}", content_type="application/json")
            if response.status_code in (404, 405):
                wrong.append(f"{method.upper()} {path} -> {response.status_code}")
    assert not wrong


@pytest.mark.django_db
def test_an_anonymous_purchase_is_claimed_through_the_api(admin_api: Any) -> None:
    member = admin_api.post("/members", {"phone": "13800138001", "name": "补登"}).json()
    sold = admin_api.post("/loyalty/purchases", {"channel": "offline", "order_no": "ANON-API", "paid_fen": 8_800})
    assert sold.status_code == 201, sold.content
    claimed = admin_api.post("/loyalty/purchases/claim", {"member_id": member["id"], "channel": "offline",
                                                           "order_no": "ANON-API", "paid_fen": 8_800})
    assert claimed.status_code == 200, claimed.content
    assert claimed.json()["member_id"] == member["id"] and claimed.json()["points"] > 0


def test_every_bound_is_written_as_json_schema() -> None:
    """A bound pydantic could not translate shows as its own name (`"gt": 0`), which no client
    reads: every bound of the document is JSON Schema's (minimum, exclusiveMinimum, ...)."""
    raw: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("gt", "ge", "lt", "le") and not isinstance(value, dict):
                    raw.append(f"{path}/{key}")
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(_openapi(), "")
    assert not raw
