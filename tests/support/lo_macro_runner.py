"""UNO client run by the *system* python3 (the one that has ``uno``), not by the project.

It is started by :mod:`tests.support.libreoffice`, which owns the soffice process; this
script only connects to it over a named pipe, does one job and prints one JSON
object on stdout.  Keep it dependency-free and compatible with any Python 3.7+.

Request (JSON on stdin)::

    {"op": "run" | "build", "pipe": str, "connect_timeout": float, "doc": str,
     "module": str, "proc": str, "args": list, "library": str,   # op == "run"
     "modules": {name: code}, "project": str,                   # op == "build"
     "save_as": str | null}

Reply: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": str}``.
"""

import json
import sys
import time
import traceback

import uno  # noqa: F401  (system python only)
from com.sun.star.beans import PropertyValue

# Export filters by target suffix; the VBA one is what keeps/exports vbaProject.bin.
FILTERS = {
    ".xlsm": "Calc MS Excel 2007 VBA XML",
    ".xlsx": "Calc MS Excel 2007 XML",
    ".ods": "calc8",
}
ALWAYS_EXECUTE_NO_WARN = 4  # com.sun.star.document.MacroExecMode


def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def connect(pipe, timeout):
    """Retry until soffice has opened its pipe (first start of a profile takes longest)."""
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local)
    url = "uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe
    deadline = time.time() + timeout
    while True:
        try:
            return resolver.resolve(url)
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def load(desktop, path):
    url = uno.systemPathToFileUrl(path) if path else "private:factory/scalc"
    args = (prop("Hidden", True), prop("MacroExecutionMode", ALWAYS_EXECUTE_NO_WARN))
    doc = desktop.loadComponentFromURL(url, "_blank", 0, args)
    if doc is None:
        raise RuntimeError("LibreOffice could not load %r" % path)
    return doc


def to_json(value):
    """Basic returns tuples for arrays and UNO structs for dates; flatten to JSON types."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if hasattr(value, "value"):  # uno.Any / uno.Enum wrappers
        return to_json(value.value)
    return str(value)


def run_macro(doc, req):
    url = "vnd.sun.star.script:%s.%s.%s?language=Basic&location=document" % (
        req["library"], req["module"], req["proc"])
    script = doc.getScriptProvider().getScript(url)
    out = script.invoke(tuple(req.get("args") or ()), (), ())
    # pyuno returns (result, outParamIndex, outParam) because invoke has out-params.
    result = out[0] if isinstance(out, tuple) and len(out) == 3 else out
    doc.calculateAll()
    return to_json(result)


def build_project(doc, req):
    """Insert VBA-compatible Basic modules so the xlsm export writes a vbaProject.bin."""
    from com.sun.star.script import ModuleInfo
    from com.sun.star.script.ModuleType import NORMAL

    libs = doc.BasicLibraries
    libs.VBACompatibilityMode = True  # the exporter only writes VBA in this mode
    libs.ProjectName = req.get("project") or "VBAProject"
    name = libs.ProjectName
    lib = libs.getByName(name) if libs.hasByName(name) else libs.createLibrary(name)
    for module, code in req["modules"].items():
        if not code.lstrip().lower().startswith("option vbasupport"):
            code = "Option VBASupport 1\n" + code
        info = ModuleInfo()
        info.ModuleType = NORMAL
        lib.insertModuleInfo(module, info)
        lib.insertByName(module, code)
    return sorted(req["modules"])


def save(doc, path):
    suffix = path[path.rfind("."):].lower()
    args = (prop("FilterName", FILTERS.get(suffix, FILTERS[".xlsx"])), prop("Overwrite", True))
    doc.storeToURL(uno.systemPathToFileUrl(path), args)


def main():
    req = json.load(sys.stdin)
    desktop = doc = None
    try:
        ctx = connect(req["pipe"], float(req.get("connect_timeout", 60)))
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        doc = load(desktop, req.get("doc"))
        op = build_project if req["op"] == "build" else run_macro
        reply = {"ok": True, "result": op(doc, req)}
        if req.get("save_as"):
            save(doc, req["save_as"])
    except Exception as exc:  # report everything; the caller raises LibreOfficeError
        reply = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc),
                 "traceback": traceback.format_exc()}
    finally:
        shutdown(desktop, doc)
    sys.stdout.write(json.dumps(reply))


def shutdown(desktop, doc):
    # Best effort only: the caller kills the soffice process group afterwards anyway.
    for action in (lambda: doc.close(True), lambda: desktop.terminate()):
        try:
            action()
        except Exception:
            pass


if __name__ == "__main__":
    main()
