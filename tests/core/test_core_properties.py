"""Invariants checked on many generated inputs (hypothesis)."""
import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crm_core.credit import allocate_credit, largest_remainder
from crm_core.reallocation import Register, check_reallocation
from crm_core.suggest import suggest_cuts
from crm_core.tiers import pareto_tiers, rank_tiers, rate_tiers

TIERS = ["A", "B", "C", "D", "unrated"]
cents = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TIERS), cents), min_size=1, max_size=60),
       st.integers(min_value=0, max_value=10**13), st.sampled_from([1, 100, 100_000]),
       st.dictionaries(st.sampled_from(TIERS[:4]), st.floats(0, 3), min_size=4, max_size=4))
def test_allocation_always_sums_to_the_budget(rows, budget, unit, weights):
    tiers, sales = zip(*rows)
    assume(any(weights.get(t, 0) > 0 and s > 0 for t, s in rows))  # else there is nothing to allocate to
    lines = allocate_credit(tiers, sales, budget, weights=weights, unit_cents=unit)
    assert int(lines.sum()) == budget
    assert (lines >= 0).all()
    off_unit = lines % unit != 0
    assert off_unit.sum() <= 1  # only the odd cents of a budget that is not a multiple of the unit


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e9), min_size=2, max_size=40), st.integers(0, 10**10))
def test_largest_remainder_is_within_one_unit_of_the_exact_share(basis, total):
    basis = np.array(basis)
    assume(basis.sum() > 0)
    out = largest_remainder(basis, total, 1)
    assert out.sum() == total
    assert np.all(np.abs(out - basis / basis.sum() * total) <= 1 + 1e-6 * total)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 3, allow_nan=False), min_size=1, max_size=50))
def test_rate_tiers_are_monotone_in_the_rate(rates):
    order = np.argsort(rates, kind="stable")
    tiers = rate_tiers(np.array(rates)[order])
    rank = {"D": 0, "C": 1, "B": 2, "A": 3}
    assert all(rank[a] <= rank[b] for a, b in zip(tiers, tiers[1:]))
    ranked = rank_tiers(np.array(rates)[order])
    assert all(rank[a] <= rank[b] for a, b in zip(ranked, ranked[1:]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1e9, allow_nan=False), min_size=1, max_size=50))
def test_pareto_tiers_never_put_a_smaller_customer_above_a_larger_one(sales):
    tiers = pareto_tiers(sales)
    for i in range(len(sales)):
        for j in range(len(sales)):
            if sales[i] > sales[j]:
                assert tiers[i] <= tiers[j]  # 'A' < 'B' < 'C'


@st.composite
def register_and_batch(draw):
    n = draw(st.integers(2, 12))
    names = [f"K{i}" for i in range(n)]
    lines = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    balances = draw(st.lists(st.integers(-10**6, 10**9), min_size=n, max_size=n))
    tiers = draw(st.lists(st.sampled_from("ABCD"), min_size=n, max_size=n))
    picked = draw(st.lists(st.sampled_from(names + ["nobody"]), min_size=1, max_size=n + 1))
    changes = draw(st.lists(st.integers(-10**9, 10**9), min_size=len(picked), max_size=len(picked)))
    idx = pd.Index(names)
    register = Register(pd.Series(lines, index=idx), pd.Series(tiers, index=idx),
                        balances_cents=pd.Series(balances, index=idx))
    return register, pd.DataFrame({"customer": picked, "change_cents": changes})


@settings(max_examples=300, deadline=None)
@given(register_and_batch())
def test_a_passing_batch_never_changes_the_total_nor_makes_a_line_negative(case):
    register, batch = case
    result = check_reallocation(register, batch)
    if result.ok:
        assert batch["change_cents"].sum() == 0
        assert (result.moves["new_cents"] >= 0).all()
        cut = result.moves["change_cents"] < 0
        assert (result.moves.loc[cut, "new_cents"] >= result.moves.loc[cut, "balance_cents"]).all()
    else:
        assert result.verdict.startswith("refused")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**8), st.integers(-10**6, 10**8), st.floats(0, 2)),
                min_size=1, max_size=40), st.integers(1, 10**9))
def test_suggested_cuts_total_exactly_and_respect_balances(rows, amount):
    lines, balances, rates = (list(c) for c in zip(*rows))
    available = sum(max(line - max(b, 0), 0) for line, b, _ in rows)
    names = [f"K{i}" for i in range(len(rows))]
    assume(available >= amount)  # else refused: tests/core/test_schema.py
    cuts = suggest_cuts(names, lines, balances, rates, amount)
    assert int(cuts["cut_cents"].sum()) == amount
    by_name = dict(zip(names, zip(lines, balances)))
    for name, cut in zip(cuts["customer"], cuts["cut_cents"]):
        line, balance = by_name[name]
        assert 0 < cut and line - cut >= max(balance, 0)


_ROW = st.tuples(st.sampled_from(["C1", "C2", "C3", "C4"]), st.sampled_from(["invoice", "receipt", "credit_note", "write_off", "opening_balance"]),
                 st.integers(0, 800), st.integers(-10**9, 10**9), st.sampled_from([np.nan, np.nan, 0.06, 0.13]))


def _class_rows(rows: list[tuple], start: int, length: int):
    """_ROW tuples as the checked rows class sums read, and a period `length` days from day `start`."""
    from crm_core.collection import Period
    from crm_core.ledger import TYPES

    names, kinds, days, cents, vat = zip(*rows) if rows else ((),) * 5
    frame = pd.DataFrame({
        "customer": pd.Series(names, dtype=object),
        "type": pd.Categorical(kinds, categories=TYPES),
        "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(np.array(days, dtype="int64"), unit="D"),
        "amount_cents": np.array(cents, dtype="int64"), "vat_rate": np.array(vat, dtype="float64")})
    return frame, Period(pd.Timestamp("2023-01-01") + pd.Timedelta(days=start),
                         pd.Timestamp("2023-01-01") + pd.Timedelta(days=start + length))


@settings(max_examples=200, deadline=None)
@given(st.lists(_ROW, max_size=40), st.integers(0, 800), st.integers(0, 400),
       st.sampled_from([None, ["C2", "C3", "C9"]]), st.sampled_from([1, 3, 7, 1 << 20]))
def test_class_sums_equal_one_masked_sum_per_measure(rows, start, length, customers, block_rows):
    """The class sums, block by block, in floats or in integers, give exactly the five measures
    summed one mask at a time (written out here as the definition)."""
    from crm_core.collection import (
        BALANCE_SIGNS,
        _customer_codes,
        class_sums,
        gross_cents,
        measures,
        period_buckets,
    )
    from crm_core.policy import Policy

    frame, period = _class_rows(rows, start, length)
    codes, index = _customer_codes(frame, None if customers is None else pd.Index(customers))
    buckets = period_buckets(frame["date"].to_numpy(), period)
    fast = measures(class_sums(frame, Policy(), codes, len(index), buckets, block_rows), buckets.labels, 1)
    exact = measures(class_sums(frame, Policy(), codes, len(index), buckets, block_rows, exact_only=True),
                     buckets.labels, 1)
    inside = ((frame["date"] >= period.start) & (frame["date"] <= period.end)).to_numpy()
    until = (frame["date"] <= period.end).to_numpy()
    amount, gross = frame["amount_cents"].to_numpy(), gross_cents(frame, Policy())
    kind = frame["type"].cat.codes.to_numpy()
    sign = np.where(frame["type"] == "credit_note", -1, 1)

    def per_customer(mask, values):
        out = [0] * len(index)
        for code, keep, value in zip(codes, mask, values):
            if keep and code >= 0:
                out[code] += int(value)
        return out

    expected = [per_customer(inside & frame["type"].isin(["invoice", "credit_note"]).to_numpy(), amount * sign),
                per_customer(inside & frame["type"].isin(["invoice", "credit_note"]).to_numpy(), gross * sign),
                per_customer(inside & (frame["type"] == "receipt").to_numpy(), amount),
                per_customer(inside & (frame["type"] == "write_off").to_numpy(), amount),
                per_customer(until, gross * BALANCE_SIGNS[kind])]
    assert fast.T.tolist() == exact.T.tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(_ROW, max_size=40), st.integers(0, 800), st.integers(0, 400), st.sampled_from([1, 3, 7, 1 << 20]),
       st.booleans())
def test_class_cells_are_the_occupied_classes_summed_row_by_row(rows, start, length, block_rows, exact_only):
    """The occupied classes a partition hands on: every class with rows, none without, ascending,
    each with its rows, amounts and amounts with VAT added up one row at a time."""
    from crm_core.collection import (
        _customer_codes,
        class_cells,
        gross_cents,
        period_buckets,
    )
    from crm_core.ledger import TYPES
    from crm_core.policy import Policy

    frame, period = _class_rows(rows, start, length)
    codes, index = _customer_codes(frame, None)
    buckets = period_buckets(frame["date"].to_numpy(), period)
    cells = class_cells(frame, Policy(), codes, len(index), buckets, block_rows, exact_only)
    expected: dict[tuple, list[int]] = {}
    gross = gross_cents(frame, Policy())
    for code, kind, bucket, amount, with_vat in zip(codes, frame["type"].cat.codes, buckets.codes,
                                                    frame["amount_cents"], gross):
        sums = expected.setdefault((int(code), int(kind), int(bucket)), [0, 0, 0])
        for at, value in enumerate((1, amount, with_vat)):
            sums[at] += int(value)
    customer, kind, bucket = cells.position()
    assert cells.shape == (len(index), len(TYPES), len(buckets.labels))
    assert list(cells.cell) == sorted(cells.cell)
    assert {(c, k, b): [r, a, g] for c, k, b, r, a, g in zip(customer.tolist(), kind.tolist(), bucket.tolist(),
            cells.rows.tolist(), cells.amount.tolist(), cells.gross.tolist())} == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 1200), min_size=1, max_size=30), st.integers(0, 86_399), st.booleans())
def test_vat_shortcuts_give_the_policy_rate_of_every_date(days, second, with_nat):
    """One rate when no change falls inside the dates, else per day or per row: always the rate
    `Policy.vat_rates` gives each date (the table changes rate on 2018-05-01 and 2019-04-01)."""
    from crm_core.collection import _vat_by_day
    from crm_core.policy import Policy

    dates = np.datetime64("2017-09-01", "ns") + np.array(days, dtype="timedelta64[D]") \
        + np.timedelta64(second, "s") * (np.arange(len(days)) % 2)
    if with_nat:
        dates = np.append(dates, np.datetime64("NaT", "ns"))
    expected = Policy().vat_rates(dates)
    assert np.array_equal(np.broadcast_to(_vat_by_day(Policy(), dates), expected.shape), expected)


def test_vat_by_calendar_day_over_a_large_ledger_across_a_rate_change():
    from crm_core.collection import _vat_by_day
    from crm_core.policy import Policy

    days = np.random.default_rng(7).integers(0, 730, 150_000)
    dates = np.datetime64("2018-06-01", "ns") + days.astype("timedelta64[D]")
    assert np.array_equal(_vat_by_day(Policy(), dates), Policy().vat_rates(dates))
    with_times = dates + np.timedelta64(3, "h")
    assert np.array_equal(_vat_by_day(Policy(), with_times), Policy().vat_rates(with_times))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["C1", "C2", "C3", "C7"]), st.sampled_from(["", "甲", "乙", "A B"])),
                max_size=30), st.sampled_from([1, 2, 5, 1 << 20]))
def test_last_names_block_by_block_are_each_customers_last_named_row(rows, block_rows):
    """C7 is not among the customers (code -1): its rows name nobody."""
    from crm_core.review import last_named_positions, last_names

    frame = pd.DataFrame({"customer": [c for c, _ in rows], "customer_name": [n for _, n in rows]}, dtype=object)
    customers = pd.Series(["C1", "C2", "C3", "C9"])
    codes = pd.Index(customers).get_indexer(frame["customer"])
    expected = [next((n for c, n in reversed(rows) if c == k and n), "") for k in customers]
    positions = last_named_positions(frame, codes, len(customers), block_rows)
    assert [rows[p][1] if p >= 0 else "" for p in positions] == expected
    assert last_names(frame, customers, codes).tolist() == expected
