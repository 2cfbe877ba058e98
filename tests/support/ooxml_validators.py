"""Two independent Open XML validators for the workbooks the add-in writes.

LibreOffice and openpyxl open files Excel repairs ("We found a problem with some content..."), so
the tests also ask validators that follow Excel's rules:

* ``openxml-audit`` (PyPI, ``pip install '.[test]'``): the ECMA-376 schemas and semantic rules,
  plus app-compat rules that predict what Excel does on open (its ``verdict``: opens-clean,
  at-risk, repair-or-rewrite-likely, reject-likely).  Warnings feed that verdict.
* ``ooxml-validate`` (npm ``@ooxml-tools/validate``, pinned in ``tools/ooxml``; ``npm ci
  --prefix tools/ooxml``): Microsoft's Open XML SDK validator compiled to WebAssembly, 25-70 s a
  file.  Every SDK finding is an error.  ``-f xlsx`` is passed for every SpreadsheetML package:
  the tool maps ``.xlsm`` to that same format (a ``.xlsm`` and its ``.xlsx`` copy give the same
  findings), so the file is validated as it is, not copied.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "Report", "ValidatorError", "audit", "find_ooxml_validate", "find_openxml_audit",
           "require_ooxml_validate", "require_openxml_audit", "sdk_validate"]

ROOT = Path(__file__).resolve().parents[2]
OOXML_VALIDATE = ROOT / "tools" / "ooxml" / "node_modules" / ".bin" / "ooxml-validate"


class ValidatorError(RuntimeError):
    """A validator failed to run or answered something that is not its JSON report."""


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    description: str
    part: str  # the package part, e.g. /xl/styles.xml
    where: str = ""  # inside the part (XPath), when the validator says


@dataclass(frozen=True)
class Report:
    tool: str
    file: Path
    findings: tuple[Finding, ...]
    verdict: str | None = None  # openxml-audit's prediction of what Excel does on open

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def summary(self, places: int = 4) -> str:
        """One line per distinct (severity, description) with its parts: what to fix, and where."""
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for f in self.findings:
            groups[f.severity, f.description].append(f"{f.part} {f.where}".strip())
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("error", "warning")}
        verdict = f"verdict {self.verdict}, " if self.verdict else ""
        lines = [f"{self.tool} on {self.file.name}: {verdict}{counts['error']} error(s), "
                 f"{counts['warning']} warning(s)"]
        for (severity, description), where in sorted(groups.items()):
            more = f" (+{len(where) - places} more)" if len(where) > places else ""
            lines.append(f"  {len(where)} x {severity}: {description}\n      in {', '.join(where[:places])}{more}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- discovery


def find_openxml_audit() -> str | None:
    """The openxml-audit command of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).with_name("openxml-audit")
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("openxml-audit")


def find_ooxml_validate() -> str | None:
    """tools/ooxml's local ooxml-validate, when it and node are installed."""
    if shutil.which("node") and os.access(OOXML_VALIDATE, os.X_OK):
        return str(OOXML_VALIDATE)
    return None


def _skip_or_fail(reason: str) -> None:
    """Skip with ``reason``; under ``CI=true`` fail instead (CI must have every tool)."""
    import pytest  # lazy: the product never needs pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required because CI=true)", pytrace=False)
    pytest.skip(reason)


def require_openxml_audit() -> str:
    """openxml-audit's path for tests; skip when missing, but fail when ``CI=true``."""
    found = find_openxml_audit()
    if found is None:
        _skip_or_fail("openxml-audit not installed: pip install '.[test]'")
    return found


def require_ooxml_validate() -> str:
    """ooxml-validate's path for tests; skip when missing, but fail when ``CI=true``."""
    found = find_ooxml_validate()
    if found is None:
        _skip_or_fail("Open XML SDK validator not installed: apt-get install nodejs npm; "
                      "npm ci --prefix tools/ooxml")
    return found


# --------------------------------------------------------------------------- running


def _json_output(cmd: list[str], timeout: float, ok_codes: tuple[int, ...]) -> object:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ValidatorError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
    if done.returncode in ok_codes:
        with contextlib.suppress(ValueError):
            return json.loads(done.stdout)
    raise ValidatorError(f"{' '.join(cmd)} failed (exit {done.returncode}):\n"
                         f"{done.stderr.strip()[-2000:] or done.stdout.strip()[-2000:]}")


def audit(path: str | os.PathLike[str], timeout: float = 600) -> Report:
    """openxml-audit's findings on one file (it exits 1 when it finds errors: that is an answer)."""
    path = Path(path)
    tool = find_openxml_audit() or "openxml-audit"
    (result,) = _json_output([tool, "-m", "0", "-o", "json", str(path)], timeout, (0, 1))
    findings = tuple(Finding(e["severity"], e["description"], e.get("part_uri") or "(package)",
                             e.get("path") or "") for e in result["errors"])
    return Report("openxml-audit", path, findings, result["verdict"]["prediction"])


def sdk_validate(path: str | os.PathLike[str], timeout: float = 600) -> Report:
    """The Open XML SDK's findings on one file (its exit status is 0 whatever it finds)."""
    path = Path(path)
    tool = find_ooxml_validate() or str(OOXML_VALIDATE)
    result = _json_output([tool, "--of", "json", "-f", "xlsx", str(path)], timeout, (0,))
    findings = tuple(Finding("error", f"{e['description']} [{e['id']}]", e["path"]["partUri"],
                             e["path"]["xpath"]) for e in result)
    return Report("Open XML SDK (ooxml-validate)", path, findings)
