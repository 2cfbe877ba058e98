"""Results of reviewing a ledger file, kept on disk by everything that computes them.

A key names the file's content (SHA-256 of its bytes), the policy's fingerprint, the package
version and a fingerprint of the code that turns a file into results, so an upgraded or edited
add-in never answers from results its old rules computed. The store is diskcache's (SQLite index,
safe across processes); a file's digest is kept there too under its size, times and inode, so an
unchanged file is not hashed again by a new process.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path

CACHE_VERSION = "3"  # bump when cached tables change meaning
_HASH_BLOCK = 16 * 2**20
_SIZE_LIMIT = 2**30  # diskcache evicts the least recently used entries above this


def cache_dir() -> Path:
    """CRM_ADDIN_CACHE if set, else the user's cache folder (LOCALAPPDATA on Windows)."""
    if os.environ.get("CRM_ADDIN_CACHE"):
        return Path(os.environ["CRM_ADDIN_CACHE"])
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "crm-addin" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crm-addin"


def _store():
    """The cache folder's store, or None where it cannot be opened (read-only home, no diskcache):
    a cache that cannot be used only costs time."""
    try:
        import diskcache

        return diskcache.Cache(str(cache_dir()), size_limit=_SIZE_LIMIT)
    except (ImportError, OSError, RuntimeError):
        return None
    except Exception as problem:  # sqlite3 errors of a damaged or locked index
        if type(problem).__module__.startswith("sqlite3"):
            return None
        raise


@functools.cache
def code_fingerprint() -> str:
    """Hash of the code that turns a ledger file into results: the core, the readers and the engines
    (their source files, found beside this one: reading them imports nothing of the layers above)."""
    import crm_core

    here = Path(__file__).resolve().parent
    folders = (Path(crm_core.__file__).resolve().parent, here, here.parent / "engines")
    sources = sorted(path for folder in folders for path in folder.glob("*.py"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def package_version() -> str:
    try:
        return metadata.version("crm-addin")
    except metadata.PackageNotFoundError:
        return "unknown"


def result_key(kind: str, digest: str, policy_fingerprint: str, params: dict) -> str:
    return json.dumps([CACHE_VERSION, package_version(), code_fingerprint(), kind, digest, policy_fingerprint,
                       params], sort_keys=True, default=str)


def load(key: str):
    store = _store()
    if store is None:
        return None
    with store:
        return _quietly(store.get, key)


def save(key: str, value) -> None:
    store = _store()
    if store is not None:
        with store:
            _quietly(store.set, key, value)


def _quietly(call, *args):
    try:
        return call(*args)
    except (OSError, EOFError, ValueError, TypeError, AttributeError, ImportError):
        return None  # an entry written by another version, or a full disk: computed again


def stat_key(path: str | os.PathLike[str]) -> str:
    """What changes whenever the file's content does. The change time too: copy tools may keep a
    file's size and set its mtime back, but cannot set the change time."""
    stat = os.stat(path)
    return json.dumps(["digest", os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino,
                       stat.st_ctime_ns])


def content_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes, hashed again only when its size, times or inode change."""
    key = stat_key(path)
    known = load(key)
    if isinstance(known, str) and len(known) == 64:
        return known
    digest = hash_file(path)
    if stat_key(path) == key:  # not changed while it was read
        save(key, digest)
    return digest


def hash_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
