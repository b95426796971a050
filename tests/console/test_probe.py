import time

import pytest

from tests.members.factories import member_make


@pytest.mark.django_db(transaction=True)
def test_b(stores, system):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        pass
    t = time.monotonic()
    member_make(phone="13800138001", store="SH")
    print("after-stop took", time.monotonic() - t)


@pytest.mark.django_db(transaction=True)
def test_c(stores, system):
    import os

    from playwright.sync_api import sync_playwright
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        t = time.monotonic()
        member_make(phone="13800138002", store="SH")
        print("inside took", time.monotonic() - t)
