"""The register's own ribbon tab "CRM 客户信用" (customUI/customUI14.xml, the Office 2010+ schema).

Each button's onAction names a callback Sub in vba/Ribbon.bas (`Sub OnX(control As
IRibbonControl)`), which runs the macro of the same name. The part is tied to the package by a
relationship in `_rels/.rels`; openpyxl keeps the part when it rewrites a macro workbook but
drops that relationship, so `package` puts it back on every write.
"""
from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

CUSTOM_UI_PART = "customUI/customUI14.xml"
CUSTOM_UI_NS = "http://schemas.microsoft.com/office/2009/07/customui"
# The relationship type of a customUI14 part (customUI.xml of Office 2007 uses .../2006/...).
CUSTOM_UI_REL = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
TAB_LABEL = "CRM 客户信用"


@dataclass(frozen=True)
class Button:
    id: str
    label: str
    callback: str  # a Sub in vba/Ribbon.bas
    image: str  # an Office built-in icon (imageMso)
    tip: str


@dataclass(frozen=True)
class Group:
    id: str
    label: str
    buttons: tuple[Button, ...]


GROUPS = (
    Group("crmRegisterGroup", "登记表 Register", (
        Button("crmRefreshRegister", "刷新登记表 Refresh register", "OnRefreshRegister", "RefreshAll",
               "Update the Register from the Ledger sheet, keeping lines and inputs / 按台账更新登记表"),
        Button("crmBuildReview", "年度评审 Build review", "OnBuildReview", "FileNew",
               "The new year's review as a new workbook beside this one / 生成新年度评审工作簿"),
    )),
    Group("crmReallocationGroup", "额度调整 Reallocation", (
        Button("crmCheckRequest", "检查申请 Check request", "OnCheckReallocation", "Spelling",
               "Check the request on the Reallocation sheet; nothing is written / 检查调整申请，不写入"),
        Button("crmApplyRequest", "执行申请 Apply request", "OnApplyReallocation", "ReviewAcceptChange",
               "Apply the checked request, one audit row per line / 执行调整并记录审计"),
        Button("crmSuggestCuts", "建议调减 Suggest cuts", "OnSuggestReallocationCuts", "FunctionWizard",
               "Propose cuts that fund the raise on the form / 建议调减额度"),
    )),
    Group("crmAuditGroup", "审计 Audit", (
        Button("crmVerify", "核验 Verify", "OnVerifyRegister", "ReviewProtectWorkbook",
               "Recompute the audit chain and check the signed standard / 核验审计链与签字标准"),
        Button("crmSignOff", "签字确认 Sign off", "OnSignOff", "ReviewShareWorkbook",
               "Record the year's credit standard signed by CEO, CFO and sales director / 签字确认年度标准"),
    )),
)


def callbacks() -> list[str]:
    """Every onAction of the tab, in button order."""
    return [b.callback for g in GROUPS for b in g.buttons]


def custom_ui_xml() -> bytes:
    """The customUI14 part: one tab of grouped large buttons."""
    lines = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
             f'<customUI xmlns="{CUSTOM_UI_NS}">', "<ribbon>", "<tabs>",
             f'<tab id="crmTab" label={quoteattr(TAB_LABEL)}>']
    for group in GROUPS:
        lines.append(f"<group id={quoteattr(group.id)} label={quoteattr(group.label)}>")
        lines += [_button(b) for b in group.buttons]
        lines.append("</group>")
    lines += ["</tab>", "</tabs>", "</ribbon>", "</customUI>"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _button(button: Button) -> str:
    return (f"<button id={quoteattr(button.id)} label={quoteattr(button.label)} size=\"large\" "
            f"imageMso={quoteattr(button.image)} screentip={quoteattr(button.label)} "
            f"supertip={quoteattr(button.tip)} onAction={quoteattr(button.callback)}/>")
