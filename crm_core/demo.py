"""A seeded synthetic ledger at the reference company's scale (MM, ../domain): about 450
customers, about 40 million net sales a year over two years, top 100 customers ~83% of sales,
receivables about a quarter of a year's sales.

The ledger opens with each customer's balance brought forward (期初余额): the unpaid tail of the
year before plus older debt. Receipts never pay an invoice more than its gross amount; customers
who pay more than a year's sales (a rate above 100%) pay down that older debt, so balances are
negative only for the few genuine prepayments (预收) made at the end of the last year. A few of the
poorest payers have part of their old debt written off (坏账核销) in the last year."""
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
    pay_ratio = _pay_ratios(rng, weights)
    frames, owed = [], None
    for y in range(-1, years):  # year -1 is not exported: it leaves the balances brought forward
        growth = np.clip(rng.normal(1.0, 0.15, customers), 0.4, 1.8)
        sales = weights / weights.sum() * yearly_sales * growth
        sales *= yearly_sales / sales.sum()
        rows = _year_rows(rng, codes, names, sales, pay_ratio, first_year + y)
        if owed is None:
            owed, rows = _brought_forward(rng, rows, codes, names, sales, pay_ratio, first_year)
        frames.append(rows)
    frames.append(_prepayments(rng, codes, names, sales, first_year + years - 1))
    frames.append(_write_offs(rng, codes, names, owed, pay_ratio, first_year + years - 1))
    ledger = pd.concat(frames, ignore_index=True).sort_values(["date", "customer"], kind="stable")
    return ledger.reset_index(drop=True)


_VAT = 0.13


def _pay_ratios(rng, weights: np.ndarray, key: int = 100) -> np.ndarray:
    """How much of its invoices each customer pays: the key customers (largest `key`) pay well,
    the small ones spread widely, so that many customers pay poorly but they hold a small part of
    sales and the receivables stay near a quarter of the year's sales, as in the reference case."""
    is_key = np.zeros(len(weights), dtype=bool)
    is_key[np.argsort(-weights, kind="stable")[:key]] = True
    ratio = np.where(is_key, rng.normal(0.995, 0.025, len(weights)), rng.normal(0.86, 0.14, len(weights)))
    return np.clip(ratio, np.where(is_key, 0.85, 0.45), 1.10)


def _brought_forward(rng, rows, codes, names, sales, pay_ratio, first_year):
    """From the year before the ledger: its receipts dated in the ledger's years, and one opening
    balance per customer (that year's unpaid tail plus older debt: a few years of what a slow
    payer leaves unpaid, and the debt a customer paying above 100% is paying down)."""
    start = np.datetime64(f"{first_year}-01-01")
    before = rows["date"] < start
    gross = rows["amount"].to_numpy() * np.where(rows["type"] == "receipt", 1.0, 1 + _VAT)
    signed = np.where(rows["type"] == "invoice", gross, -gross)
    tail = pd.Series(signed[before.to_numpy()]).groupby(rows["customer"].to_numpy()[before.to_numpy()]).sum()
    tail = tail.reindex(codes, fill_value=0.0).to_numpy()
    yearly_gross = sales * (1 + _VAT)
    older = yearly_gross * (np.clip(1 - pay_ratio, 0, None) * rng.uniform(0.2, 1.0, len(codes))
                            + np.clip(pay_ratio - 1, 0, None) * 4.0)
    opening = np.round(np.clip(tail, 0, None) + older, 2)
    balances = pd.DataFrame({"date": start, "customer": codes, "customer_name": names, "type": "opening balance",
                             "amount": opening, "invoice_no": "", "due_date": start})
    later_receipts = rows[~before & (rows["type"] == "receipt")]
    return opening, pd.concat([balances[opening > 0], later_receipts], ignore_index=True)


def _write_offs(rng, codes, names, opening, pay_ratio, year) -> pd.DataFrame:
    """A few of the poorest payers (a fifth of those paying under 70%) have part of their old debt
    written off as bad (坏账核销) in the last year."""
    who = np.flatnonzero((pay_ratio < 0.7) & (rng.random(len(codes)) < 0.2) & (opening > 0))
    amount = np.round(opening[who] * rng.uniform(0.2, 0.5, len(who)), 2)
    return pd.DataFrame({"date": np.datetime64(f"{year}-11-30"), "customer": codes[who],
                         "customer_name": names[who], "type": "write-off", "amount": amount,
                         "invoice_no": "", "due_date": pd.NaT})


def _prepayments(rng, codes, names, sales, year) -> pd.DataFrame:
    """A few customers (2%) pay ahead at the end of the last year: genuine credit balances."""
    who = np.flatnonzero(rng.random(len(codes)) < 0.02)
    amount = np.round(sales[who] * (1 + _VAT) * rng.uniform(0.3, 0.6, len(who)), 2)
    return pd.DataFrame({"date": np.datetime64(f"{year}-12-20"), "customer": codes[who],
                         "customer_name": names[who], "type": "receipt", "amount": amount,
                         "invoice_no": "", "due_date": pd.NaT})


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
    # each invoice paid at most in full; a customer paying above 100% pays older debt besides
    paid = np.round(amount * (1 + _VAT) * np.clip(rng.normal(np.minimum(pay_ratio[cust], 1.0), 0.05), 0, 1), 2)
    pay_dates = dates + rng.integers(10, 60, len(cust)).astype("timedelta64[D]")
    receipts = pd.DataFrame({"date": pay_dates, "customer": codes[cust], "customer_name": names[cust],
                             "type": "receipt", "amount": paid, "invoice_no": numbers, "due_date": pd.NaT})
    extra = np.flatnonzero(pay_ratio > 1)
    paydown = pd.DataFrame({"date": start + rng.integers(30, 330, len(extra)).astype("timedelta64[D]"),
                            "customer": codes[extra], "customer_name": names[extra], "type": "receipt",
                            "amount": np.round(sales[extra] * (1 + _VAT) * (pay_ratio[extra] - 1), 2),
                            "invoice_no": "", "due_date": pd.NaT})
    receipts = pd.concat([receipts, paydown], ignore_index=True)
    receipts = receipts[receipts["date"] <= np.datetime64(f"{year + 1}-12-31")]
    returns = rng.random(len(cust)) < 0.02
    credits = invoices.loc[returns].assign(type="credit_note", due_date=pd.NaT,
                                           amount=lambda f: np.round(f["amount"] * 0.1, 2))
    credits["invoice_no"] = "R" + credits["invoice_no"]
    return pd.concat([invoices, receipts, credits], ignore_index=True)
