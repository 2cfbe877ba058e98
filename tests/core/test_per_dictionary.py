"""Work on a column's dictionary is done once for all slices of the column, also when slices
ask for it at the same time, and the answer goes when the dictionary goes."""
from __future__ import annotations

import gc
import threading

import pandas as pd

from crm_core.per_dictionary import answers_held, per_dictionary


def _column() -> pd.Series:
    categories = pd.Index(["b", "a"], dtype="str")
    return pd.Series(pd.Categorical(["b", "a", "b", None] * 3, categories=categories))


def test_slices_of_one_column_share_the_answer_and_it_goes_with_the_dictionary():
    column = _column()
    held, calls = answers_held(), []
    for start in range(0, 12, 4):
        part = column.iloc[start:start + 4]
        assert per_dictionary(part.cat.categories, "test", lambda: calls.append(1) or len(calls)) == 1
    assert calls == [1] and answers_held() == held + 1
    del column, part
    gc.collect()
    assert answers_held() == held


def test_slices_asking_at_once_wait_for_one_answer():
    column, calls, started = _column(), [], threading.Barrier(4)

    def slow():
        calls.append(1)
        threading.Event().wait(0.05)  # long enough for the other threads to ask meanwhile
        return "answer"

    def ask(results: list) -> None:
        started.wait()
        results.append(per_dictionary(column.iloc[:4].cat.categories, "at once", slow))

    results: list = []
    threads = [threading.Thread(target=ask, args=(results,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["answer"] * 4 and calls == [1]


def test_a_failed_computation_is_not_remembered():
    column, calls = _column(), []

    def failing():
        calls.append(1)
        raise ValueError("no")

    for _ in range(2):
        try:
            per_dictionary(column.cat.categories, "failing", failing)
        except ValueError:
            pass
    assert calls == [1, 1]
