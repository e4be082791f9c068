"""Data at rest is private: only the service's own user may read it.

The case store holds request bodies and account identifiers, outbox ``.eml`` files hold
confirmation tokens, spool files (recycled ones too) and ``spool/bad/`` hold whole
messages. So every process starts with umask 077 (files 0600, directories 0700, whatever
creates them: SQLite, Alembic, the spool, the outbox, a worker process), and at start
the files and directories already there are tightened, since a umask only governs what
is created after it is set.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url

from config.settings import Settings

log = logging.getLogger("le_intake.private")

UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def restrict_umask() -> None:
    """Files and directories created from now on by this process (and its children)
    are its user's alone."""
    os.umask(UMASK)


def sqlite_files(database_url: str) -> list[Path]:
    """The database file and its WAL/shared-memory/journal files, for a SQLite URL."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    database = Path(url.database)
    return [database, *(database.with_name(database.name + s) for s in _SQLITE_SIDE_FILES)]


def private_roots(settings: Settings) -> list[Path]:
    """The directories whose whole tree is ours: data, spool and outbox."""
    roots: list[Path] = []
    for folder in (settings.data_dir, settings.spool_dir, settings.outbox.folder):
        path = Path(folder)
        if path not in roots:
            roots.append(path)
    return roots


def _tighten(path: Path, mode: int) -> bool:
    """chmod ``path`` to ``mode`` when it is ours and looser; True when changed.
    Symbolic links are never followed (a link in the data directory must not make us
    chmod its target)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        return False
    if stat.S_IMODE(info.st_mode) & ~mode == 0:
        return False
    try:
        path.chmod(stat.S_IMODE(info.st_mode) & mode)
    except OSError as exc:
        log.warning("could not make private", extra={"path": str(path), "error": str(exc)})
        return False
    return True


def tighten_tree(roots: Iterable[Path], files: Iterable[Path] = ()) -> int:
    """Every directory under ``roots`` to at most 0700, every file to at most 0600, and
    ``files`` (a database outside them) likewise; returns how many were changed."""
    changed = 0
    for root in roots:
        if not root.is_dir() or root.is_symlink():
            continue
        changed += _tighten(root, DIR_MODE)
        for folder, dirs, names in os.walk(root, followlinks=False):
            base = Path(folder)
            for name in dirs:
                changed += _tighten(base / name, DIR_MODE)
            for name in names:
                changed += _tighten(base / name, FILE_MODE)
    for path in files:
        changed += _tighten(path, FILE_MODE)
    return changed


def make_private(settings: Settings, create: bool = True) -> int:
    """Start-up: the data, spool and outbox directories exist (when ``create``) as 0700
    and everything in them, and the SQLite database, is tightened; returns how many
    modes were changed (logged, because it means something was readable by others)."""
    roots = private_roots(settings)
    if create:
        for root in roots:
            root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    changed = tighten_tree(roots, sqlite_files(settings.database_url))
    if changed:
        log.warning("data at rest was readable by others; made private", extra={"count": changed})
    return changed
