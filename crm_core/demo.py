"""A seeded synthetic ledger at the reference company's scale (MM, ../domain): about 450
customers, about 40 million net sales a year over two years, top 100 customers ~83% of sales."""
from __future__ import annotations

import numpy as np
import pandas as pd

_CITIES = ["北京", "上海", "广州", "深圳", "成都", "武汉", "杭州", "南京", "重庆", "西安", "长沙", "郑州"]
_WORDS = ["康泰", "华信", "仁和", "同济", "安泰", "德升", "恒瑞", "金鹰", "益民", "万家", "百草", "天元"]


def pareto_exponent(n: int, top: int, share: float) -> float:
    """Exponent a of sales ~ rank^-a giving the top `top` of `n` customers `share` of sales."""
    lo, hi = 0.0, 5.0
    ranks = np.arange(1, n + 1, dtype="float64")
    for _ in range(60):
        mid = (lo + hi) / 2
        w = ranks**-mid
        lo, hi = (mid, hi) if w[:top].sum() / w.sum() < share else (lo, mid)
    return (lo + hi) / 2


def demo_ledger(seed: int = 2010, customers: int = 450, yearly_sales: float = 40_000_000.0,
                first_year: int = 2024, years: int = 2) -> pd.DataFrame:
    """Raw ledger rows as an ERP would export them (columns date, customer, customer_name, type,
    amount, invoice_no, due_date), amounts in currency units with cents."""
    rng = np.random.default_rng(seed)
    a = pareto_exponent(customers, 100, 0.83)
    weights = np.arange(1, customers + 1, dtype="float64") ** -a
    rng.shuffle(weights)
    codes = np.array([f"C{i:04d}" for i in range(1, customers + 1)], dtype=object)
    names = np.array([f"{_CITIES[i % 12]}{_WORDS[(i * 7) % 12]}医药{i:03d}号" for i in range(customers)], dtype=object)
    pay_ratio = np.clip(rng.normal(0.95, 0.10, customers), 0.45, 1.10)
    frames = []
    for y in range(years):
        growth = np.clip(rng.normal(1.0, 0.15, customers), 0.4, 1.8)
        sales = weights / weights.sum() * yearly_sales * growth
        sales *= yearly_sales / sales.sum()
        frames.append(_year_rows(rng, codes, names, sales, pay_ratio, first_year + y))
    ledger = pd.concat(frames, ignore_index=True).sort_values(["date", "customer"], kind="stable")
    return ledger.reset_index(drop=True)


def _year_rows(rng, codes, names, sales, pay_ratio, year) -> pd.DataFrame:
    count = np.clip((sales / 40_000).astype(int), 2, 48)
    cust = np.repeat(np.arange(len(codes)), count)
    share = rng.gamma(2.0, 1.0, len(cust))
    share /= np.bincount(cust, weights=share)[cust]
    amount = np.round(sales[cust] * share, 2)
    start = np.datetime64(f"{year}-01-01")
    dates = start + rng.integers(0, 365, len(cust)).astype("timedelta64[D]")
    due = dates + np.timedelta64(30, "D")
    numbers = np.array([f"INV{year}-{i:06d}" for i in range(len(cust))], dtype=object)
    invoices = pd.DataFrame({"date": dates, "customer": codes[cust], "customer_name": names[cust],
                             "type": "invoice", "amount": amount, "invoice_no": numbers, "due_date": due})
    vat = 0.13
    paid = np.round(amount * (1 + vat) * np.clip(rng.normal(pay_ratio[cust], 0.05), 0, 1.3), 2)
    pay_dates = dates + rng.integers(10, 60, len(cust)).astype("timedelta64[D]")
    receipts = pd.DataFrame({"date": pay_dates, "customer": codes[cust], "customer_name": names[cust],
                             "type": "receipt", "amount": paid, "invoice_no": numbers, "due_date": pd.NaT})
    receipts = receipts[receipts["date"] <= np.datetime64(f"{year + 1}-12-31")]
    returns = rng.random(len(cust)) < 0.02
    credits = invoices.loc[returns].assign(type="credit_note", due_date=pd.NaT,
                                           amount=lambda f: np.round(f["amount"] * 0.1, 2))
    credits["invoice_no"] = "R" + credits["invoice_no"]
    return pd.concat([invoices, receipts, credits], ignore_index=True)
