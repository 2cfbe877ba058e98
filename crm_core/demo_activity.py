"""A small, seeded contact log and service log for the demo register (crm-addin demo), drawn from
the demo review's customers: about 150 contacts over the last two months before the as-of date,
the larger customers called more often, and about 40 service cases over the last quarter, a few
still open, some answered late; and the customer file the Register shows (`demo_customer_file`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .contacts import CHANNELS, CONTACT_COLUMNS, Activity
from .service import SERVICE_COLUMNS

STAFF = ("李明", "王芳", "张伟", "陈静")
_SUMMARIES = ("回款跟进 payment follow-up", "新品介绍 new products", "订单确认 order confirmed",
              "对账 statement check", "投诉回访 complaint call-back", "年度合同 yearly contract")
_NEXT_STEPS = ("发送报价 send a quote", "安排拜访 arrange a visit", "催收货款 chase the payment",
               "寄送样品 send samples", "确认订单 confirm the order")
_ISSUES = ("到货延迟 late delivery", "包装破损 damaged packing", "发票错误 wrong invoice",
           "数量短缺 short delivery", "质量问题 quality problem", "对账差异 statement difference")
_SERVICE_CHANNELS = ("电话 phone", "微信 WeChat", "邮件 email")


def demo_activity(customers: pd.Series | list, net_sales_cents: pd.Series | list, as_of: pd.Timestamp,
                  seed: int = 2010, contacts: int = 150, cases: int = 40) -> Activity:
    """The demo logs, the same for the same customers, sales, date and seed."""
    rng = np.random.default_rng(seed)
    codes = np.asarray(list(customers), dtype=object)
    sales = np.clip(np.asarray(list(net_sales_cents), dtype="float64"), 0, None)
    if not len(codes):
        return Activity(pd.DataFrame(columns=[c.key for c in CONTACT_COLUMNS]),
                        pd.DataFrame(columns=[c.key for c in SERVICE_COLUMNS]))
    weights = np.sqrt(sales) + 1.0  # the large customers more often, the small ones now and then
    weights /= weights.sum()
    day = pd.Timestamp(as_of).normalize()
    return Activity(_contacts(rng, codes, weights, day, contacts), _cases(rng, codes, weights, day, cases))


def _contacts(rng, codes: np.ndarray, weights: np.ndarray, day: pd.Timestamp, n: int) -> pd.DataFrame:
    who = rng.choice(codes, n, p=weights)
    dates = [day - pd.Timedelta(days=int(d)) for d in rng.integers(0, 60, n)]
    stated = rng.random(n) < 0.4
    nexts = [d + pd.Timedelta(days=int(k)) if s else pd.NaT for d, k, s in zip(dates, rng.integers(2, 21, n), stated)]
    frame = pd.DataFrame({
        "date": dates, "customer": who, "who": rng.choice(STAFF, n), "channel": rng.choice(CHANNELS[:5], n),
        "summary": rng.choice(_SUMMARIES, n),
        "next_step": [rng.choice(_NEXT_STEPS) if s else None for s in stated], "next_date": nexts,
    })
    return frame.sort_values(["date", "customer"], kind="stable").reset_index(drop=True)[[c.key for c in CONTACT_COLUMNS]]


def _cases(rng, codes: np.ndarray, weights: np.ndarray, day: pd.Timestamp, n: int) -> pd.DataFrame:
    received = [day - pd.Timedelta(days=int(d), hours=int(h)) for d, h in zip(rng.integers(1, 90, n),
                                                                            rng.integers(0, 9, n))]
    respond_after = rng.gamma(1.5, 1.0, n)  # days: most within a day or two, a few late
    resolve_after = respond_after + rng.gamma(2.0, 2.0, n)
    open_case = rng.random(n) < 0.15
    rows = []
    for i in range(n):
        got = received[i]
        responded = got + pd.Timedelta(hours=round(respond_after[i] * 24))
        resolved = got + pd.Timedelta(hours=round(resolve_after[i] * 24))
        responded = responded if responded <= day else None
        resolved = resolved if resolved <= day and not open_case[i] else None
        score = int(rng.choice([3, 4, 4, 5, 5])) if resolved is not None and rng.random() < 0.8 else None
        rows.append({"received": got, "customer": rng.choice(codes, p=weights),
                     "channel": rng.choice(_SERVICE_CHANNELS), "issue": rng.choice(_ISSUES),
                     "owner": rng.choice(STAFF), "responded": responded, "resolved": resolved, "satisfaction": score})
    frame = pd.DataFrame(rows, columns=[c.key for c in SERVICE_COLUMNS])
    return frame.sort_values("received", kind="stable").reset_index(drop=True)


_ADDRESS_CITIES = ("北京", "上海", "广州", "深圳", "成都", "武汉")
_STREETS = ("人民路", "解放路", "中山路", "建设路", "和平路", "长江路", "新华路", "胜利路")
_CONTACTS = ("刘经理", "赵会计", "孙主任", "周采购", "吴总", "郑经理", "冯主管", "何会计")
_STANDING = ("按时付款 pays on time", "偶有拖欠 sometimes late", "需关注 watch", "")
DUPLICATE_PAIRS = 3  # demo customers entered twice: the same phone, or the same address


def demo_customer_file(customers: pd.Series | list, net_sales_cents: pd.Series | list, as_of: pd.Timestamp,
                       seed: int = 2010) -> pd.DataFrame:
    """The demo's customer file (the Register's customer file columns, plus each customer's
    owner): needs and expected closes spread over the stage tiers (the larger customers nearer a
    close), landline numbers and addresses, and a few codes that share a phone or an address with
    another (004: one company entered twice), so the Register flags them."""
    rng = np.random.default_rng(seed + 1)
    codes = np.asarray(list(customers), dtype=object)
    n = len(codes)
    sales = np.clip(np.asarray(list(net_sales_cents), dtype="float64"), 0, None)
    rank = pd.Series(-sales).rank(method="first").to_numpy() / max(n, 1)  # 0 = largest
    need = np.where(rng.random(n) < 0.12 + 0.2 * rank, "潜在", "有")
    need = np.where(rng.random(n) < 0.08 * rank, "无", need)
    months = np.ceil(rng.gamma(1.2 + 4 * rank, 2.0, n)).astype(int)  # months to the expected close
    day = pd.Timestamp(as_of).normalize()
    close = [day + pd.DateOffset(months=int(m)) - pd.Timedelta(days=int(d)) if k == "有" else pd.NaT
             for m, d, k in zip(months, rng.integers(0, 25, n), need)]
    area = rng.choice(["010", "021", "020", "0755", "028", "027"], n)
    # distinct numbers, so that only the pairs below share a phone or an address
    phone = [f"{a}-{number}" for a, number in zip(area, rng.permutation(np.arange(5_000_000, 9_000_000))[:n])]
    address = [f"{rng.choice(_ADDRESS_CITIES)}市{rng.choice(_STREETS)}{number}号"
               for number in rng.permutation(np.arange(1, 10 * n + 10))[:n]]
    for i in range(min(DUPLICATE_PAIRS, n // 2)):  # the same company under a second code
        first, second = 2 * i + n // 3, 2 * i + n // 3 + 1
        if i % 2 == 0:
            phone[second] = phone[first]
        else:
            address[second] = address[first]
    return pd.DataFrame({
        "customer": codes, "owner": rng.choice(STAFF, n), "need": need, "expected_close": close,
        "address": address, "phone": phone, "contact": rng.choice(_CONTACTS, n),
        "terms_days": [None] * n, "trading_since": [None] * n,
        "credit_notes": [s or None for s in rng.choice(_STANDING, n)],
    })
