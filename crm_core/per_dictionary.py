"""Work on a categorical column's dictionary (its categories), done once per dictionary.

The in-process engine cuts one table into slices that the partition function checks side by
side; every slice's customer and name columns share the one dictionary the reader built for the
whole file (slices of a categorical share its categories object). Normalizing, parsing and
sorting 10^6 customers' names is per-dictionary work, and it cost each slice as much as all its
rows' other checks together. `per_dictionary(categories, step, compute)` runs `compute()` for
the first slice and hands its answer to the others.

Written here because no library keys a cache on an object's identity while letting the object
go: `functools.lru_cache` needs hashable keys (a pandas Index is not) and keeps them alive. An
answer lives exactly as long as its dictionary (a `weakref.finalize` drops it), so a Dask
partition's own dictionary takes its answer with it. An answer must not hold the dictionary
itself, or neither would ever go; `compute` builds new objects.
"""
from __future__ import annotations

import threading
import weakref
from typing import Callable, TypeVar

T = TypeVar("T")

_answers: dict[tuple[str, int], _Answer] = {}
_answers_lock = threading.Lock()


class _Answer:
    __slots__ = ("lock", "done", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()  # a second slice waits for the first's answer, not redoes it
        self.done = False
        self.value = None


def per_dictionary(categories: object, step: str, compute: Callable[[], T]) -> T:
    """`compute()`, the `step` of work on `categories`, run once while that object lives."""
    key = (step, id(categories))
    with _answers_lock:
        answer = _answers.get(key)
        if answer is None:
            answer = _answers[key] = _Answer()
            weakref.finalize(categories, _answers.pop, key, None)
    with answer.lock:
        if not answer.done:
            answer.value = compute()
            answer.done = True
    return answer.value


def answers_held() -> int:
    """How many answers are held (for tests: they go with their dictionaries)."""
    return len(_answers)
