"""What Excel sees of the worksheet functions: names, help text, converters, the VBA wrappers.

Runs xlwings' real Windows decorators and VBA generator (tests.support.xlwings_offline).
"""
from __future__ import annotations

import importlib
import inspect
import re
import types

from tests.support import xlwings_offline as xo
from tools import build_vba
from udfs import UDF_MODULES

CJK = re.compile(r"[\u4e00-\u9fff]")



def udfs_of(addin):
    return {name: getattr(addin, name) for name in addin.UDF_NAMES}


def test_every_topic_module_function_is_exported_once(addin):
    expected = set()
    for topic in UDF_MODULES:
        module = importlib.import_module(f"udfs.{topic}")
        expected |= {n for n, f in vars(module).items()
                     if n.startswith("crm_") and inspect.isfunction(f) and f.__module__ == module.__name__}
    assert set(addin.UDF_NAMES) == expected
    assert len(addin.UDF_NAMES) == len(set(addin.UDF_NAMES))
    catalogue = {"crm_collection_rate", "crm_collections", "crm_tier", "crm_pareto_tier", "crm_stage_tier",
                 "crm_follow_up_due", "crm_credit_budget", "crm_allocate_credit", "crm_check_reallocation",
                 "crm_reallocate", "crm_suggest_cuts", "crm_aging", "crm_tier_migration", "crm_overlap",
                 "crm_version", "crm_policy_label"}
    assert catalogue <= expected


def test_xlwings_finds_exactly_the_exported_functions(addin):
    found = {name for name in dir(addin) if hasattr(getattr(addin, name), "__xlfunc__")}
    assert found == set(addin.UDF_NAMES)


def test_every_udf_has_a_category_a_wizard_description_and_a_doc_per_argument(addin):
    for name, func in udfs_of(addin).items():
        info = func.__xlfunc__
        assert info["category"] == "CRM", name
        assert info["name"] == name
        assert not info["sub"] and not info["volatile"] and not info["async_mode"], name
        doc = info["ret"]["doc"]
        assert 20 <= len(doc) <= 255, (name, len(doc))
        assert CJK.search(doc), f"{name}: description lacks the Chinese term"
        assert "\n" not in doc.strip(), name
        for arg in info["args"]:
            assert not arg["doc"].startswith("Positional argument"), (name, arg["name"])
            assert len(arg["doc"]) <= 255 and CJK.search(arg["doc"]), (name, arg["name"])


# Topic modules built on udfs._excel (ledger_file, owned elsewhere, reads files, not ranges).
RANGE_TOPICS = {"collection", "tiers", "credit", "reallocation", "analysis", "info"}


def test_range_arguments_are_read_2d_with_error_cells_as_text_and_no_type_hint_converters(addin):
    for name, func in udfs_of(addin).items():
        if func.__module__.rpartition(".")[2] not in RANGE_TOPICS:
            continue
        for arg in func.__xlfunc__["args"]:
            options = arg["options"]
            assert options.get("ndim") == 2 and options.get("err_to_str") is True, (name, arg["name"])
            assert "convert" not in options, (name, arg["name"])  # a type hint would become a converter
        assert "expand" not in func.__xlfunc__["ret"]["options"], name  # native spill, no resize side effect


def test_names_are_valid_vba_identifiers_and_not_keywords(addin):
    for name, func in udfs_of(addin).items():
        assert xo.valid_vba_name(name), name
        assert name.startswith("crm_")
        args = [a["name"] for a in func.__xlfunc__["args"]]
        for arg in args:
            assert xo.valid_vba_name(arg), (name, arg)
            assert arg.lower() != name.lower()
        assert len({a.lower() for a in args}) == len(args), name  # VBA is case-insensitive


def test_optional_arguments_are_optional_in_vba(addin):
    vba = build_vba.udf_vba()
    assert 'Function crm_collection_rate(collections, net_sales, Optional vat_rate, Optional policy)' in vba
    assert 'Function crm_credit_budget(net_sales, Optional ratio, Optional vat_rate, Optional policy)' in vba
    assert vba.count("\nFunction crm_") + vba.startswith("Function") == len(addin.UDF_NAMES)
    assert "ThisWorkbook" in vba and "ActiveWorkbook" not in vba  # generated for the register's own module


def test_golden_vba_module_is_current():
    committed = build_vba.DEFAULT_OUT.read_bytes()
    assert committed == build_vba.udf_vba().replace("\n", "\r\n").encode("ascii"), (
        "vba/xlwings_udfs.bas is out of date: run `crm-addin build-vba`")
    assert committed.startswith(b'Attribute VB_Name = "xlwings_udfs"\r\n')


def test_build_vba_command_writes_the_same_file(tmp_path):
    from crm_app.cli.main import main

    out = tmp_path / "x.bas"
    assert main(["build-vba", "--out", str(out)]) == 0
    assert out.read_bytes() == build_vba.DEFAULT_OUT.read_bytes()
    assert main(["build-vba", "--out", str(out), "--check"]) == 0
    out.write_text("stale")
    assert main(["build-vba", "--out", str(out), "--check"]) == 1


def test_a_new_topic_module_is_picked_up_by_the_re_export():
    import crm_addin

    module = types.ModuleType("udfs.zz_probe")

    def crm_probe(x):
        """probe"""
        return x

    def helper(x):
        return x

    crm_probe.__module__ = helper.__module__ = module.__name__
    module.crm_probe, module.helper, module.np_thing = crm_probe, helper, len
    assert set(crm_addin._udfs_of(module)) == {"crm_probe"}
