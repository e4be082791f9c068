"""The durable spool between the listener and the runner: a Maildir-like tree on disk.

Layout under the spool root (each message is a directory, so one atomic rename moves
its raw bytes and its envelope together)::

    tmp/<id>/    being written; never read by the runner, swept at start-up
    new/<id>/    acknowledged (250 sent), waiting for the runner
    cur/<id>/    claimed by a runner; moved back to new/ at start-up (crash recovery)
    bad/<id>/    failed ``max_attempts`` times; ``error.txt`` says why

Each item holds ``message.eml`` (the bytes exactly as received), ``envelope.json``
and, once it has failed, ``attempts.json``. ``put`` returns only after the files, the
item directory and its parent are fsynced, which is what lets the listener answer 250.
Item ids sort by priority, then arrival time, so a plain sorted listing is the work order.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.envelope import Envelope

MESSAGE_FILE = "message.eml"
ENVELOPE_FILE = "envelope.json"
ATTEMPTS_FILE = "attempts.json"
ERROR_FILE = "error.txt"

PRIORITY_URGENT = 0
PRIORITY_NORMAL = 5


@dataclass(frozen=True)
class SpoolItem:
    id: str
    path: Path

    def read(self) -> tuple[bytes, Envelope]:
        raw = (self.path / MESSAGE_FILE).read_bytes()
        envelope = Envelope.from_json((self.path / ENVELOPE_FILE).read_text("utf-8"))
        return raw, envelope

    def attempts(self) -> int:
        try:
            data = json.loads((self.path / ATTEMPTS_FILE).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return 0
        return int(data.get("attempts", 0))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class Spool:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.new = self.root / "new"
        self.cur = self.root / "cur"
        self.bad = self.root / "bad"
        for folder in (self.tmp, self.new, self.cur, self.bad):
            folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _new_id(priority: int) -> str:
        return f"p{priority}-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"

    def put(self, raw: bytes, envelope: Envelope, priority: int = PRIORITY_NORMAL) -> str:
        """Write durably and return the item id; blocking (call it off the event loop)."""
        item_id = self._new_id(priority)
        work = self.tmp / item_id
        work.mkdir()
        try:
            _write_synced(work / MESSAGE_FILE, raw)
            _write_synced(work / ENVELOPE_FILE, envelope.to_json().encode("utf-8"))
            _fsync_dir(work)
            work.rename(self.new / item_id)
            _fsync_dir(self.new)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return item_id

    def pending(self) -> list[str]:
        return sorted(p.name for p in self.new.iterdir() if not p.name.startswith("."))

    def claim(self, item_id: str) -> SpoolItem | None:
        """Move one item new/ → cur/; None when another runner took it first."""
        target = self.cur / item_id
        try:
            (self.new / item_id).rename(target)
        except FileNotFoundError:
            return None
        return SpoolItem(item_id, target)

    def claim_next(self) -> SpoolItem | None:
        for item_id in self.pending():
            item = self.claim(item_id)
            if item is not None:
                return item
        return None

    def finish(self, item: SpoolItem) -> None:
        """Forget an item whose result is committed to the case store."""
        shutil.rmtree(item.path, ignore_errors=True)
        _fsync_dir(self.cur)

    def fail(self, item: SpoolItem, error: str, max_attempts: int) -> bool:
        """Count a failed attempt; True when the item was moved to bad/."""
        attempts = item.attempts() + 1
        _write_synced(
            item.path / ATTEMPTS_FILE,
            json.dumps({"attempts": attempts, "last_error": error}).encode("utf-8"),
        )
        if attempts >= max_attempts:
            _write_synced(item.path / ERROR_FILE, error.encode("utf-8", "replace"))
            item.path.rename(self.bad / item.id)
            _fsync_dir(self.bad)
            return True
        item.path.rename(self.new / item.id)
        _fsync_dir(self.new)
        return False

    def recover(self) -> int:
        """Start-up: claimed-but-unfinished items run again; half-written ones are dropped.

        Items in tmp/ were never acknowledged (250 comes after the rename), so removing
        them loses nothing the sender was told we have.
        """
        for leftover in self.tmp.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        moved = 0
        for item in sorted(self.cur.iterdir()):
            item.rename(self.new / item.name)
            moved += 1
        if moved:
            _fsync_dir(self.new)
        return moved

    def bad_items(self) -> list[SpoolItem]:
        return [SpoolItem(p.name, p) for p in sorted(self.bad.iterdir())]
