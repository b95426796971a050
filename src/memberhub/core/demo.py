"""Demo data: stores, one staff account per role, and a few hundred members.

Loaded by `memberhub serve --demo`; idempotent (a second run adds nothing). Later
features add their own demo data through DEMO_LOADERS.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from memberhub.access.principal import system_principal
from memberhub.core.errors import Conflict
from memberhub.core.output import Writer
from memberhub.stores.models import Store

DEMO_PASSWORD = "demo-pass-2026"
DEMO_LOADERS: list[Callable[[Writer], None]] = []

STORES = [
    ("SH-NJL", "上海南京路店", "上海", "offline"),
    ("BJ-SLT", "北京三里屯店", "北京", "offline"),
    ("GZ-TH", "广州天河店", "广州", "offline"),
    ("SZ-WXC", "深圳万象城店", "深圳", "offline"),
    ("HZ-XH", "杭州西湖店", "杭州", "offline"),
    ("ONLINE", "官方商城", "", "online"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬燕鹏辉斌宇浩凯健俊帆帅旭宁晨阳博文欣怡梓涵子轩雨桐一诺思远嘉怡佳琪浩然"
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159",
                   "166", "176", "177", "180", "181", "182", "186", "187", "188", "189", "198", "199"]


def _name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def demo_load(*, out: Writer, members: int = 300, seed: int = 20261125) -> None:
    from memberhub.access.services import staff_create
    from memberhub.members.services import ConsentInput, MemberInput, member_register

    rng = random.Random(seed)
    for code, name, city, kind in STORES:
        Store.objects.get_or_create(code=code, defaults={"name": name, "city": city, "kind": kind})
    User = get_user_model()
    staff = [("marketing", "marketing", []), ("cashier_sh", "cashier", ["SH-NJL"]), ("cashier_bj", "cashier", ["BJ-SLT"]),
             ("service", "service", []), ("analyst", "analyst", [])]
    for username, role, stores in staff:
        if not User.objects.filter(username=username).exists():
            staff_create(actor=None, username=username, password=DEMO_PASSWORD, role=role, store_codes=stores)
    actor = system_principal("demo")
    created = 0
    today = timezone.localdate()
    for i in range(members):
        phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        store = rng.choice(STORES)
        birthday = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        consents = tuple(
            ConsentInput(channel=ch, granted=rng.random() < p, source="demo")
            for ch, p in (("sms", 0.7), ("email", 0.3), ("wechat", 0.6))
        )
        data = MemberInput(
            phone=phone, name=_name(rng), gender=rng.choice(["female", "male", "female", "unknown"]),
            birthday=birthday if birthday < today else None,
            email=f"demo{i}@example.cn" if rng.random() < 0.4 else None,
            source="online" if store[0] == "ONLINE" else "store", home_store=store[0], consents=consents,
        )
        try:
            member_register(actor=actor, data=data,
                            now=timezone.now() - timedelta(days=rng.randrange(730), minutes=rng.randrange(1440)))
            created += 1
        except Conflict:
            pass  # a second demo run: the phone exists already
    for loader in DEMO_LOADERS:
        loader(out)
    out.write(f"Demo data: {len(STORES)} stores, staff accounts {', '.join(s[0] for s in staff)} "
              f"(password {DEMO_PASSWORD}), {created} new members.\n")
