"""A seeded synthetic ledger at the reference company's scale (MM, ../domain).

The ledger opens with each customer's balance brought forward (期初余额): the unpaid tail of the
year before plus older debt. Receipts never pay an invoice more than its gross amount after
returns (credit notes); customers who pay more than a year's sales (a rate above 100%) pay down
that older debt, so balances are negative only for the few genuine prepayments (预收) made at the
end of the last year. A few of the poorest payers have part of their old debt written off
(坏账核销) in the last year.

Three kinds of customer give it the reference company's shape:
- key customers (the largest 100 of 450 by expected sales) pay every invoice in full, the largest
  within one or two weeks, the smallest in about three months: together they owe about a month of
  their sales, but each owes enough to rank among the 100 largest debtors. (Were each to owe only
  a month, the smaller ones would owe less than the average other customer, and the 100 largest
  debtors could not be 76 key customers.)
- old debtors (22 of 450, mid-sized and small non-key customers) carry an overdue debt brought
  forward of about twice an average customer's yearly sales; a third pay it down slowly, the
  others add to it. With a few of the poorest other payers they are the large non-key debtors.
- the others pay the worse the smaller they are, so the many poor payers owe little each.

Shape of the default ledger (seed 2010), measured on the review of its last year (2025) and
held by tests/core/test_demo_shape.py, reference figure and tolerance:
- net sales 40,000,000 (±5%); the top 100 customers by net sales 83% of them (±2 points);
- receivables (positive open balances) 10,000,000 (±10%);
- the 100 largest debtors hold 7,800,000 (±10%); 76 of them (±6) are key customers (the top
  100 by sales), holding 3,200,000 (±15%): the other large debtors owe several times as much
  each as a key debtor (4.5 times in the reference case), non-key customers tie up the money;
- every collection-rate tier A-D holds at least 30 customers, every customer is rated, and some
  are raise candidates (rate up and sales up from the year before).
Other seeds keep this shape within looser tolerances (tested on a few). Tenure (customers of three
years or more) is not modelled: the ledger exports two years, so every customer starts in it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_CITIES = ["北京", "上海", "广州", "深圳", "成都", "武汉", "杭州", "南京", "重庆", "西安", "长沙", "郑州"]
_WORDS = ["康泰", "华信", "仁和", "同济", "安泰", "德升", "恒瑞", "金鹰", "益民", "万家", "百草", "天元"]

_VAT = 0.13
_KEY_SHARE = 100 / 450  # the reference case's key customers: the top 100 of 450 by sales
_OLD_DEBTOR_SHARE = 22 / 450  # and its large debtors that are not key customers
_INVOICE_SIZE = 20_000.0  # a typical invoice; small customers' are smaller (a minimum number a year)
_WRITE_OFF_BELOW = 0.7  # only customers paying less than this of their invoices have debt written off


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
    key = max(1, round(customers * _KEY_SHARE))
    weights = np.arange(1, customers + 1, dtype="float64") ** -pareto_exponent(customers, key, 0.83)
    rng.shuffle(weights)
    codes = np.array([f"C{i:04d}" for i in range(1, customers + 1)], dtype=object)
    names = np.array([f"{_CITIES[i % 12]}{_WORDS[(i * 7) % 12]}医药{i:03d}号" for i in range(customers)], dtype=object)
    payers = _payers(rng, weights, key, yearly_sales)
    frames, owed = [], None
    for y in range(-1, years):  # year -1 is not exported: it leaves the balances brought forward
        growth = np.clip(rng.normal(1.0, 0.15, customers), 0.4, 1.8)
        sales = weights / weights.sum() * yearly_sales * growth
        sales *= yearly_sales / sales.sum()
        rows = _year_rows(rng, codes, names, sales, payers, first_year + y)
        if owed is None:
            owed, rows = _brought_forward(rng, rows, codes, names, sales, payers, first_year)
        frames.append(rows)
    frames.append(_prepayments(rng, codes, names, sales, payers, first_year + years - 1))
    frames.append(_write_offs(rng, codes, names, owed, payers, first_year + years - 1))
    ledger = pd.concat(frames, ignore_index=True).sort_values(["date", "customer"], kind="stable")
    return ledger.reset_index(drop=True)


@dataclass(frozen=True)
class _Payers:
    """How each customer pays, drawn once for the whole ledger (arrays in customer order)."""

    is_key: np.ndarray  # the largest customers by expected sales
    is_old_debtor: np.ndarray  # non-key customers with a large old debt brought forward
    ratio: np.ndarray  # share of each invoice paid; above 1: pays older debt besides
    lag_days: np.ndarray  # typical days from an invoice to its receipt
    old_debt: np.ndarray  # the old debtors' debt from before the year before the ledger
    yearly_paydown: np.ndarray  # paid against older debt each year by a customer paying above 100%


def _payers(rng, weights: np.ndarray, key: int, yearly_sales: float) -> _Payers:
    """Key customers, old debtors, and how each customer pays (see the module docstring)."""
    n = len(weights)
    rank = np.empty(n, dtype="int64")
    rank[np.argsort(-weights, kind="stable")] = np.arange(n)
    is_key = rank < key
    is_old_debtor = np.zeros(n, dtype=bool)
    others = np.flatnonzero(~is_key)
    is_old_debtor[rng.choice(others, min(len(others), max(1, round(n * _OLD_DEBTOR_SHARE))), replace=False)] = True
    ratio = _pay_ratios(rng, rank, is_key, is_old_debtor)
    old_debt = np.where(is_old_debtor, yearly_sales / n * rng.lognormal(np.log(2.05), 0.3, n), 0.0)
    # what the customer would invoice in a year at its expected sales, so that three years of
    # paydowns (the year before the ledger's and the ledger's two) never exceed the older debt
    expected_gross = weights / weights.sum() * yearly_sales * (1 + _VAT)
    yearly_paydown = np.clip(ratio - 1, 0, None) * expected_gross
    return _Payers(is_key, is_old_debtor, ratio, _lag_days(rng, weights, is_key), old_debt, yearly_paydown)


def _pay_ratios(rng, rank: np.ndarray, is_key: np.ndarray, is_old_debtor: np.ndarray) -> np.ndarray:
    """Key customers pay (nearly) every invoice in full. The old debtors either pay their debt down
    slowly (a third, rates above 100%) or add to it. The others pay the worse the smaller they are, so
    that their many poor payers owe little each: in the reference case the 350 customers outside
    the 100 largest debtors owe only 2,200,000 together."""
    n, key = len(rank), int(is_key.sum())
    smallness = np.clip((rank - key) / max(1, n - key), 0.0, 1.0)  # 0 for the largest non-key customer
    ratio = np.clip(rng.normal(1.0 - 0.45 * smallness**4, 0.05), 0.6, 1.1)
    ratio[is_key] = np.clip(rng.normal(0.999, 0.003, key), 0.99, 1.0)
    pays_down = rng.random(n) < 1 / 3
    ratio[is_old_debtor] = np.where(pays_down, rng.uniform(1.05, 1.3, n), rng.uniform(0.4, 0.75, n))[is_old_debtor]
    return ratio


def _lag_days(rng, weights: np.ndarray, is_key: np.ndarray) -> np.ndarray:
    """Days from invoice to receipt: the largest key customer within a week or two, the smallest
    in about three months, so that each key customer's balance ranks it among the 100 largest
    debtors yet the key debtors hold only about 42,000 each on average (the reference case's
    3,200,000 among 76); other customers pay in two to five weeks."""
    size_to_smallest_key = weights / np.sort(weights)[-int(is_key.sum())]
    return np.where(is_key, np.clip(100 * size_to_smallest_key**-0.5, 7, 110), rng.uniform(15, 35, len(weights)))


def _brought_forward(rng, rows, codes, names, sales, payers: _Payers, first_year):
    """From the year before the ledger: its receipts dated in the ledger's years, and one opening
    balance per customer (that year's unpaid tail plus older debt: the old debtors' debt, a few
    years of what a slow payer leaves unpaid, and the debt a customer paying above 100% is paying
    down)."""
    start = np.datetime64(f"{first_year}-01-01")
    before = rows["date"] < start
    gross = rows["amount"].to_numpy() * np.where(rows["type"] == "receipt", 1.0, 1 + _VAT)
    signed = np.where(rows["type"] == "invoice", gross, -gross)
    tail = pd.Series(signed[before.to_numpy()]).groupby(rows["customer"].to_numpy()[before.to_numpy()]).sum()
    tail = tail.reindex(codes, fill_value=0.0).to_numpy()
    slow_payers_debt = sales * (1 + _VAT) * np.clip(1 - payers.ratio, 0, None) * rng.uniform(0.0, 0.4, len(codes))
    older = np.where(payers.is_old_debtor, payers.old_debt, slow_payers_debt + 4 * payers.yearly_paydown)
    opening = np.round(np.clip(tail, 0, None) + older, 2)
    balances = pd.DataFrame({"date": start, "customer": codes, "customer_name": names, "type": "opening balance",
                             "amount": opening, "invoice_no": "", "due_date": start})
    later_receipts = rows[~before & (rows["type"] == "receipt")]
    return opening, pd.concat([balances[opening > 0], later_receipts], ignore_index=True)


def _write_offs(rng, codes, names, opening, payers: _Payers, year) -> pd.DataFrame:
    """A few of the poorest payers (a fifth of those paying under 70%) have part of their old debt
    written off as bad (坏账核销) in the last year. The old debtors' debts are still pursued: the
    review's point is the money they tie up."""
    poorest = (payers.ratio < _WRITE_OFF_BELOW) & ~payers.is_old_debtor
    who = np.flatnonzero(poorest & (rng.random(len(codes)) < 0.2) & (opening > 0))
    amount = np.round(opening[who] * rng.uniform(0.2, 0.5, len(who)), 2)
    return pd.DataFrame({"date": np.datetime64(f"{year}-11-30"), "customer": codes[who],
                         "customer_name": names[who], "type": "write-off", "amount": amount,
                         "invoice_no": "", "due_date": pd.NaT})


def _prepayments(rng, codes, names, sales, payers: _Payers, year) -> pd.DataFrame:
    """A few small customers (about 2% of all) pay ahead at the end of the last year: genuine
    credit balances. Key customers and old debtors do not: their balances make the review's shape."""
    ordinary = ~payers.is_key & ~payers.is_old_debtor
    who = np.flatnonzero(ordinary & (rng.random(len(codes)) < 0.025))
    amount = np.round(sales[who] * (1 + _VAT) * rng.uniform(0.6, 1.0, len(who)), 2)
    return pd.DataFrame({"date": np.datetime64(f"{year}-12-20"), "customer": codes[who],
                         "customer_name": names[who], "type": "receipt", "amount": amount,
                         "invoice_no": "", "due_date": pd.NaT})


def _year_rows(rng, codes, names, sales, payers: _Payers, year) -> pd.DataFrame:
    """One year's invoices, a few credit notes (returns of a tenth of an invoice), the receipts of
    the invoices and the paydowns of older debt."""
    invoices = _invoices(rng, codes, names, sales, payers, year)
    returned = np.where(rng.random(len(invoices)) < 0.02, np.round(invoices["amount"].to_numpy() * 0.1, 2), 0.0)
    credits = invoices[returned > 0].assign(type="credit_note", due_date=pd.NaT, amount=returned[returned > 0])
    credits["invoice_no"] = "R" + credits["invoice_no"]
    payable = invoices["amount"].to_numpy() - returned
    start = np.datetime64(f"{year}-01-01")
    receipts = pd.concat([_invoice_receipts(rng, codes, invoices, payable, payers),
                          _paydowns(rng, codes, names, payers, start)], ignore_index=True)
    receipts = receipts[receipts["date"] <= np.datetime64(f"{year + 1}-12-31")]
    return pd.concat([invoices, receipts, credits], ignore_index=True)


def _invoices(rng, codes, names, sales, payers: _Payers, year) -> pd.DataFrame:
    """A year's invoices, one in each equal slice of the year: key customers twice a month or more,
    the others every two months or more, so that a year-end balance is not one invoice's luck."""
    count = np.clip(np.round(sales / _INVOICE_SIZE).astype(int), np.where(payers.is_key, 24, 6), 60)
    cust = np.repeat(np.arange(len(codes)), count)
    share = rng.gamma(8.0, 1.0, len(cust))
    share /= np.bincount(cust, weights=share)[cust]
    nth = np.arange(len(cust)) - np.repeat(np.cumsum(count) - count, count)
    days = ((nth + rng.random(len(cust))) / count[cust] * 365).astype(int)
    dates = np.datetime64(f"{year}-01-01") + days.astype("timedelta64[D]")
    return pd.DataFrame({"date": dates, "customer": codes[cust], "customer_name": names[cust], "type": "invoice",
                         "amount": np.round(sales[cust] * share, 2),
                         "invoice_no": np.array([f"INV{year}-{i:06d}" for i in range(len(cust))], dtype=object),
                         "due_date": dates + np.timedelta64(30, "D")})


def _invoice_receipts(rng, codes, invoices: pd.DataFrame, payable: np.ndarray, payers: _Payers) -> pd.DataFrame:
    """Each invoice's receipt after its customer's usual delay, never more than its gross amount
    after returns. A customer pays better or worse from year to year (so tiers move), a key
    customer hardly."""
    cust = pd.Index(codes).get_indexer(invoices["customer"])
    shock = np.clip(rng.normal(0, 0.05, len(payers.ratio)), -0.1, 0.1) * np.where(payers.is_key, 0.1, 1.0)
    this_year = np.minimum(payers.ratio, 1.0) + shock  # above 100% is paid as a paydown instead
    spread = np.where(payers.is_key, 0.003, 0.03)[cust]
    paid = np.round(payable * (1 + _VAT) * np.clip(rng.normal(this_year[cust], spread), 0, 1), 2)
    delay = np.round(payers.lag_days[cust] * rng.uniform(0.5, 1.5, len(cust))).astype(int)
    receipts = invoices.assign(type="receipt", amount=paid, due_date=pd.NaT,
                               date=invoices["date"].to_numpy() + delay.astype("timedelta64[D]"))
    return receipts[paid > 0]


def _paydowns(rng, codes, names, payers: _Payers, start) -> pd.DataFrame:
    """The receipts of customers paying above 100%: their yearly paydown of older debt, in one go."""
    extra = np.flatnonzero(payers.yearly_paydown > 0)
    return pd.DataFrame({"date": start + rng.integers(30, 330, len(extra)).astype("timedelta64[D]"),
                         "customer": codes[extra], "customer_name": names[extra], "type": "receipt",
                         "amount": np.round(payers.yearly_paydown[extra], 2), "invoice_no": "", "due_date": pd.NaT})
