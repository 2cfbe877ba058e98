"""Worksheet functions about the add-in itself: version and the policy in force."""
from __future__ import annotations

from importlib import metadata

import xlwings as xw

from . import _excel as ex
from .collection import POLICY_DOC, RANGE

FALLBACK_VERSION = "0.1.0"


def version() -> str:
    try:
        return metadata.version("crm-addin")
    except metadata.PackageNotFoundError:
        return FALLBACK_VERSION


@xw.func(category=ex.CATEGORY)
def crm_version():
    """Version of the crm-addin Python package behind these functions 版本."""
    return version()


@xw.func(category=ex.CATEGORY)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_policy_label(policy=None):
    """Name and fingerprint of the policy 政策 in force, e.g. default@1a2b3c4d; write it beside results to record which rules made them."""
    return ex.read_policy(policy).label


@xw.func(category=ex.CATEGORY)
@xw.arg("policy", doc=POLICY_DOC, **RANGE)
@ex.shows_errors
def crm_policy_table(policy=None):
    """Every policy key and value in force, table with header key | value 政策参数: a template for the Policy sheet."""
    pairs = ex.read_policy(policy).to_pairs()
    return [["key / 键", "value / 值"]] + [[k, ex.cell(v)] for k, v in pairs]
