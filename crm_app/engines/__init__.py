"""Engines: where a ledger file's partitions are computed. They only schedule: each reads the
file in partitions of consecutive rows, runs the core's partition function (`crm_core.partition`)
on each and hands the results, in file order, to the core's reductions.

- inprocess: the default, the file read whole by Arrow in this process and checked in slices,
  one thread per core;
- dask: files larger than memory, on the local scheduler or a cluster (`crm-addin[dask]`);
- spark: a Spark session, local or a cluster (`crm-addin[spark]`).
"""
from __future__ import annotations

from importlib import import_module

ENGINES = {"inprocess": "crm_app.engines.inprocess", "dask": "crm_app.engines.dask_engine",
           "spark": "crm_app.engines.spark_engine"}
EXTRAS = {"dask": "dask", "spark": "spark"}  # pip install 'crm-addin[EXTRA]'


def engine_module(name: str):
    """The engine's module; a clear message when its library is not installed."""
    from crm_core.issues import CrmInputError, Issue, IssueCode

    if name not in ENGINES:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, f"unknown engine {name!r} (one of {', '.join(ENGINES)})")])
    try:
        return import_module(ENGINES[name])
    except ImportError as missing:
        raise CrmInputError([Issue(IssueCode.BAD_SHAPE, (
            f"the {name} engine needs {missing.name or 'its library'}: pip install 'crm-addin[{EXTRAS[name]}]' "
            f"/ 需要安装 {name}"))]) from missing
