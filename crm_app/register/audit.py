"""The Audit sheet's hash chain (审计链): one entry per changed credit line, each chained to the last.

An entry's hash is sha256 over the previous entry's hash and its canonical text, so editing,
inserting or deleting an entry breaks the chain from that row on. Anyone can recompute sha256,
though: a keyed chain (an `AuditKey` from a key file, which never enters the workbook) hashes
with HMAC-SHA256 instead, so an edit can only be made consistent by someone holding the key.
About.audit_key_id names the key (a digest of it that reveals nothing) once a keyed entry is
written. A chain may be mixed: the entries written before the first keyed one stay plain
sha256; every entry from the first keyed one on must be keyed. Pure functions over records.

The chain also holds the year's signed standard (签字确认, batch SIGNOFF-<year>, amendments
AMEND-<year>-<n>) and the automatic reversals of temporary batches (EXPIRE-<batch>): entries
the per-customer and per-quarter checks recognise by their batch id (`is_standard`, `is_expiry`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from crm_app.io.files import readable_file
from crm_app.register.schema import AUDIT, AUDIT_COLUMNS
from crm_core.issues import CrmInputError, Issue, IssueCode
from crm_core.values import normalize_text, units

GENESIS = "0" * 64
HASHED = [c for c in AUDIT_COLUMNS if c.key not in ("prev_hash", "hash")]
KEY_ENV = "CRM_AUDIT_KEY_FILE"  # the environment variable naming the key file (CLI and macros)
KEY_MIN_BYTES = 16
_LABEL = {c.key: c.label for c in AUDIT_COLUMNS}

# Batch ids the workflow writes itself, never a user's batch
STANDARD_ID = re.compile(r"^(?:SIGNOFF-(?P<year>\d{4})|AMEND-(?P<ayear>\d{4})-(?P<n>[1-9]\d*))$")
EXPIRE_PREFIX = "EXPIRE-"
RESERVED_PREFIXES = ("SIGNOFF-", "AMEND-", EXPIRE_PREFIX)


class WorkflowCode(str, Enum):
    """Issue codes of the reallocation workflow and of verify (beside crm_core's IssueCode)."""

    DUPLICATE_BATCH = "duplicate_batch"
    REGISTER_CHANGED = "register_changed"
    CHAIN_BROKEN = "chain_broken"
    HASH_MISMATCH = "hash_mismatch"
    ENTRY_INCONSISTENT = "entry_inconsistent"
    LINE_MISMATCH = "line_mismatch"
    BUDGET_MISMATCH = "budget_mismatch"
    BAD_STAMP = "bad_stamp"
    BAD_DATE = "bad_date"
    UNSIGNED = "unsigned"  # no sign-off of the year's standard yet
    SIGNOFF = "signoff"  # the sign-off itself refused (names, date, one per year)
    SIGNOFF_TAMPERED = "signoff_tampered"  # the SignOff sheet or its Audit entry edited, moved, deleted
    STANDARD_CHANGED = "standard_changed"  # Policy, budget or a line differs from the signed standard
    KEY_NEEDED = "key_needed"  # a keyed chain checked or written without its key
    KEY_MISMATCH = "key_mismatch"  # the key given is not the chain's
    NOT_KEYED = "not_keyed"  # a key given, but the chain holds no keyed entry
    TEMPORARY = "temporary"  # a temporary batch's end date, or its expiry


# ---- the key -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditKey:
    """The chain's secret (the bytes of a key file). Never written anywhere; `key_id` names it."""

    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return key_id(self.secret)


def key_id(secret: bytes) -> str:
    """First 16 hex digits of sha256(b"crm-addin audit key" + key): identifies the key, reveals nothing."""
    return hashlib.sha256(b"crm-addin audit key" + secret).hexdigest()[:16]


def read_key(key_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> AuditKey | None:
    """The key from `key_file`, else from the file the environment variable CRM_AUDIT_KEY_FILE
    names, else None. A trailing line break is not part of the key (`openssl rand -hex 32 > key`)."""
    environ = os.environ if environ is None else environ
    name = key_file or environ.get(KEY_ENV, "").strip()
    if not name:
        return None
    path = readable_file(name, "key file")
    secret = path.read_bytes().rstrip(b"\r\n")
    if len(secret) < KEY_MIN_BYTES:
        raise CrmInputError([Issue(IssueCode.EMPTY, f"the key file holds {len(secret)} byte(s); a key needs at "
                                   f"least {KEY_MIN_BYTES} (e.g. `openssl rand -hex 32 > {path.name}`) / 密钥太短",
                                   source=str(path))])
    return AuditKey(secret)


# ---- hashing -----------------------------------------------------------------------------------

def canonical_value(kind: str, value: object) -> str:
    """The one text form of a cell that survives a save and re-read (money in cents, dates ISO)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if kind == "money":
        return str(int(value))
    if kind == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, pd.Timestamp):
            return value.date().isoformat()
        return normalize_text(value)
    return normalize_text(value)


def canonical_text(entry: Mapping[str, object]) -> str:
    """`entry` is keyed like sheet_records' output: money columns as `<key>_cents`."""
    fields = [canonical_value(c.kind, entry.get(c.key + "_cents" if c.kind == "money" else c.key))
              for c in HASHED]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def entry_hash(entry: Mapping[str, object], prev_hash: str, key: AuditKey | None = None) -> str:
    """sha256 of prev_hash + newline + canonical text; with a key, HMAC-SHA256 of the same."""
    message = (prev_hash + "\n" + canonical_text(entry)).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()


def chain(entries: Iterable[Mapping[str, object]], prev_hash: str,
          key: AuditKey | None = None) -> list[dict[str, object]]:
    """New entries with prev_hash and hash filled in, continuing from `prev_hash`."""
    out = []
    for entry in entries:
        row = dict(entry)
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = entry_hash(row, prev_hash, key)
        out.append(row)
    return out


def last_hash(audit: pd.DataFrame) -> str:
    return str(audit["hash"].iloc[-1]) if len(audit) else GENESIS


# ---- checking the chain ------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainCheck:
    """What the chain check found, and how it could check: 'unkeyed' (plain sha256, anyone can
    recompute it), 'keyed' (HMACs checked with the key), 'unchecked' (keyed, no key given: the
    hashes were NOT checked) or 'wrong key'."""

    issues: list[Issue]
    state: str
    keyed_from: int | None = None  # sheet row of the first keyed entry


def chain_issues(audit: pd.DataFrame) -> list[Issue]:
    """Every broken link of an unkeyed chain (see `check_chain` for keyed ones)."""
    return check_chain(audit).issues


def check_chain(audit: pd.DataFrame, key: AuditKey | None = None, recorded_key_id: str = "",
                key_row: int | None = None, writing: bool = False) -> ChainCheck:
    """Links and hashes of the chain, with the key when one is given. `recorded_key_id` is
    About.audit_key_id ('' when absent). With `writing`, a key on an unkeyed chain is not a
    problem: keying starts with the write."""
    issues = _link_issues(audit)
    if recorded_key_id and key is None:
        return ChainCheck(issues + [_key_needed(recorded_key_id, key_row)], "unchecked")
    if recorded_key_id and key is not None and key.key_id != recorded_key_id:
        return ChainCheck(issues + [Issue(WorkflowCode.KEY_MISMATCH, f"the key does not match the chain's key id "
                                          f"({recorded_key_id}): hashes not checked / 密钥与审计链不符",
                                          row=key_row, column="B", source="About")], "wrong key")
    found, keyed_from = _hash_issues(audit, key)
    issues += found + _keying_issues(audit, key, recorded_key_id, keyed_from, key_row, writing)
    return ChainCheck(issues, "keyed" if key is not None and keyed_from is not None else "unkeyed", keyed_from)


def _link_issues(audit: pd.DataFrame) -> list[Issue]:
    issues, expected_prev = [], GENESIS
    for entry in audit.to_dict("records"):
        if entry["prev_hash"] != expected_prev:
            issues.append(Issue(WorkflowCode.CHAIN_BROKEN, "previous-hash does not match the entry above: an entry "
                                "was deleted, inserted or reordered here / 审计链断开", row=entry["row"],
                                column=_LABEL["prev_hash"], source=AUDIT))
        expected_prev = entry["hash"]
    return issues


def _hash_issues(audit: pd.DataFrame, key: AuditKey | None) -> tuple[list[Issue], int | None]:
    """Each entry's hash: plain sha256 until the first keyed (HMAC) entry, keyed from there on."""
    issues: list[Issue] = []
    keyed_from = None
    for entry in audit.to_dict("records"):
        stored, row = entry["hash"], entry["row"]
        if key is not None and stored == entry_hash(entry, entry["prev_hash"], key):
            keyed_from = row if keyed_from is None else keyed_from
        elif stored == entry_hash(entry, entry["prev_hash"]):
            if keyed_from is not None:
                issues.append(Issue(WorkflowCode.HASH_MISMATCH, f"the entry is not keyed, but the chain is keyed from "
                                    f"row {keyed_from}: written without the key / 未用密钥写入",
                                    row=row, column=_LABEL["hash"], source=AUDIT))
        else:
            issues.append(Issue(WorkflowCode.HASH_MISMATCH, "hash does not match the entry's content: the entry was "
                                "edited / 审计记录被修改", row=row, column=_LABEL["hash"], source=AUDIT))
    return issues, keyed_from


def _keying_issues(audit: pd.DataFrame, key: AuditKey | None, recorded: str, keyed_from: int | None,
                   key_row: int | None, writing: bool) -> list[Issue]:
    """The About key id and the keyed entries must agree: removing the id does not unkey a chain."""
    if key is None:
        return []
    if keyed_from is not None and not recorded:
        return [Issue(WorkflowCode.KEY_MISMATCH, f"entries are keyed from Audit row {keyed_from} but About has no "
                      "audit_key_id: it was deleted / 密钥编号被删除", column="audit_key_id", source="About")]
    if keyed_from is None and recorded and len(audit):
        return [Issue(WorkflowCode.HASH_MISMATCH, f"About records the key id {recorded} but no Audit entry is keyed "
                      "with it: the chain was rewritten without the key / 审计链被重写", row=key_row, column="B",
                      source="About")]
    if keyed_from is None and not writing:
        return [Issue(WorkflowCode.NOT_KEYED, "a key was given but the chain is not keyed (no audit_key_id, no keyed "
                      "entry), so nothing was checked against the key; the next sign-off or reallocate with the key "
                      "starts keying it. If this register was keyed, its chain was rewritten / 审计链未加密钥",
                      column="audit_key_id", source="About")]
    return []


def _key_needed(recorded: str, key_row: int | None) -> Issue:
    return Issue(WorkflowCode.KEY_NEEDED, f"the chain is keyed (key id {recorded}): its hashes were NOT checked; give "
                 f"--key-file FILE or set {KEY_ENV} / 审计链已加密钥，未校验哈希，请提供密钥文件",
                 row=key_row, column="B", source="About")


# ---- entries the workflow writes itself ---------------------------------------------------------

def standard_year(batch_id: object) -> int | None:
    """The year of a sign-off or amendment entry's batch id, None for any other batch."""
    match = STANDARD_ID.match(normalize_text(batch_id))
    return int(match["year"] or match["ayear"]) if match else None


def is_standard(batch_id: object) -> bool:
    return standard_year(batch_id) is not None


def is_expiry(batch_id: object) -> bool:
    return normalize_text(batch_id).startswith(EXPIRE_PREFIX)


def customer_entries(audit: pd.DataFrame) -> pd.DataFrame:
    """The entries that change a customer's line (every entry but the standard's)."""
    return audit.loc[[not is_standard(b) for b in audit["batch_id"]]] if len(audit) else audit


def entry_issues(audit: pd.DataFrame) -> list[Issue]:
    """Arithmetic inside the log: new = old + change, each batch sums to zero."""
    issues: list[Issue] = []
    for entry in audit.to_dict("records"):
        old, change, new = entry["old_line_cents"], entry["change_cents"], entry["new_line_cents"]
        if None in (old, change, new) or any(v != v for v in (old, change, new)):
            continue  # unreadable money is reported by sheet_records
        if int(old) + int(change) != int(new):
            issues.append(Issue(WorkflowCode.ENTRY_INCONSISTENT,
                                f"old line {units(int(old)):,.2f} + change {units(int(change)):,.2f} "
                                f"is not the new line {units(int(new)):,.2f}", row=entry["row"],
                                column=_LABEL["new_line"], source=AUDIT))
    if len(audit):
        sums = audit.groupby("batch_id", sort=False).agg(total=("change_cents", "sum"), row=("row", "min"))
        for batch, rec in sums.iterrows():
            if int(rec["total"]) != 0:
                issues.append(Issue(WorkflowCode.ENTRY_INCONSISTENT,
                                    f"batch {batch!r} does not sum to zero ({units(int(rec['total'])):+,.2f})",
                                    row=int(rec["row"]), column=_LABEL["change"], source=AUDIT))
    return issues
