"""The "CRM 客户信用" ribbon tab: a customUI14 part tied to the package, every button calling a
ribbon callback of the embedded project, which runs an existing macro; kept by workflow writes."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from xml.dom import minidom

import openpyxl
import pytest

from crm_app.workbook import ribbon
from crm_app.workbook.builder import TEMPLATE_NAME, WORKBOOKS_DIR
from crm_app.workbook.package import finish_package

TEMPLATE = WORKBOOKS_DIR / TEMPLATE_NAME
VBA_SOURCES = Path(__file__).resolve().parents[2] / "vba"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"


def subs(text: str) -> dict[str, tuple[str, str]]:
    """Sub name -> (its parameter list, its body) in a module's text."""
    found = re.findall(r"(?ms)^Sub (\w+)\(([^)]*)\)\r?\n(.*?)^End Sub", text)
    return {name: (params, body) for name, params, body in found}


def project_subs() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for path in VBA_SOURCES.glob("*.bas"):
        out.update(subs(path.read_text(encoding="ascii")))
    return out


def ribbon_relationships(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        rels = minidom.parseString(z.read("_rels/.rels"))
    return [r.getAttribute("Target") for r in rels.getElementsByTagNameNS(REL_NS, "Relationship")
            if r.getAttribute("Type") == ribbon.CUSTOM_UI_REL]


def test_the_tab_groups_the_seven_actions():
    doc = minidom.parseString(ribbon.custom_ui_xml())  # well-formed
    root = doc.documentElement
    assert (root.namespaceURI, root.localName) == (ribbon.CUSTOM_UI_NS, "customUI")
    (tab,) = root.getElementsByTagNameNS(ribbon.CUSTOM_UI_NS, "tab")
    assert tab.getAttribute("label") == "CRM 客户信用"
    groups = tab.getElementsByTagNameNS(ribbon.CUSTOM_UI_NS, "group")
    labels = [[b.getAttribute("label").split(" ", 1)[1] for b in g.getElementsByTagNameNS(ribbon.CUSTOM_UI_NS, "button")]
              for g in groups]
    assert labels == [["Refresh register", "Build review"], ["Check request", "Apply request", "Suggest cuts"],
                      ["Verify", "Sign off"]]
    ids = [e.getAttribute("id") for e in doc.getElementsByTagName("*") if e.hasAttribute("id")]
    assert len(ids) == len(set(ids))  # ids are unique across the part (schema: xsd:ID)


def test_every_on_action_is_a_ribbon_callback_that_runs_an_existing_macro():
    xml = ribbon.custom_ui_xml().decode("utf-8")
    actions = re.findall(r'onAction="(\w+)"', xml)
    assert actions == ribbon.callbacks() and len(actions) == 7
    known = project_subs()
    for action in actions:
        params, body = known[action]
        assert re.fullmatch(r"control As IRibbonControl", params), action  # the callback signature
        (called,) = body.split()
        assert known[called][0] == "", (action, called)  # a macro of the project (Alt+F8), no arguments
        assert action == "On" + called
    macros_called = {"RefreshRegister", "BuildReview", "CheckReallocation", "ApplyReallocation",
                     "SuggestReallocationCuts", "VerifyRegister", "SignOff"}
    assert {known[a][1].strip() for a in actions} == macros_called


def test_the_template_carries_the_part_with_its_package_relationship():
    data = TEMPLATE.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read(ribbon.CUSTOM_UI_PART) == ribbon.custom_ui_xml()
    assert ribbon_relationships(data) == [ribbon.CUSTOM_UI_PART]


def test_a_workflow_write_keeps_the_ribbon(tmp_path):
    """openpyxl keeps the part but drops its relationship; the package's finishing puts it back."""
    book = openpyxl.load_workbook(TEMPLATE, keep_vba=True)
    buffer = io.BytesIO()
    book.save(buffer)
    assert ribbon_relationships(buffer.getvalue()) == []  # what openpyxl alone writes
    finished = finish_package(buffer.getvalue())
    assert ribbon_relationships(finished) == [ribbon.CUSTOM_UI_PART]
    assert ribbon_relationships(finish_package(finished)) == [ribbon.CUSTOM_UI_PART]  # added once


@pytest.mark.slow
def test_the_part_is_validated_against_the_customui_schema(tmp_path):
    """openxml-audit knows the customUI14 schema: the shipped part has no finding, a broken one has."""
    from tests.support import ooxml_validators as ov

    ov.require_openxml_audit()
    assert [f for f in ov.audit(TEMPLATE).findings if "customUI" in f.part] == []
    with zipfile.ZipFile(TEMPLATE) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts[ribbon.CUSTOM_UI_PART] = parts[ribbon.CUSTOM_UI_PART].replace(b'size="large"', b'size="huge"', 1)
    broken = tmp_path / "broken_ribbon.xlsm"
    with zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    found = [f for f in ov.audit(broken).errors if f.part == "/" + ribbon.CUSTOM_UI_PART]
    assert len(found) == 1 and "huge" in found[0].description
