"""Data at rest is private: every file under the data directory 0600, every directory 0700,
whoever made it (SQLite, the spool, the outbox, a worker process) and whenever (files an
older run left readable are tightened at start).

The serve test runs the real ``le-intake serve`` in its own process (its umask is its
own), sends it a request over SMTP and checks the modes with ``os.stat``.
"""

from __future__ import annotations

import os
import smtplib
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.common import free_port, serve_env
from cases.models import OutboxMessage
from le_intake.private import make_private
from replies.outbox import FolderTransport
from tests.conftest import LE_SENDER, REQUEST_ADDRESS, make_settings, request_message

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "emails" / "01-fbi-subpoena-plain.eml"


def modes(root: Path) -> dict[str, int]:
    """Permission bits of everything under ``root`` (itself included), by relative path."""
    found = {".": stat.S_IMODE(root.lstat().st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(root: Path) -> None:
    loose = {}
    for rel, mode in modes(root).items():
        want = 0o700 if (root / rel).is_dir() else 0o600
        if mode != want:
            loose[rel] = oct(mode)
    assert loose == {}


def loosen(path: Path, mode: int) -> None:
    path.chmod(mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def wait_for(check: object, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited: {log.read_text()[-3000:]}"
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {log.read_text()[-3000:]}")


def smtp_ready(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


@pytest.fixture
def loose_var(tmp_path: Path) -> Path:
    """A data directory as an older version (umask 022) left it: world-readable."""
    var = tmp_path / "var"
    for folder in (var, var / "spool" / "bad", var / "spool" / "free", var / "outbox"):
        folder.mkdir(parents=True, exist_ok=True)
        loosen(folder, 0o755)
    (var / "spool" / "bad" / "p5-old").write_bytes(b"X-LE-Intake-Envelope: {}\r\n\r\nbody\r\n")
    (var / "spool" / "bad" / "p5-old.error.txt").write_text("attempts: 3\n")
    (var / "spool" / "free" / "0123456789abcdef").touch()
    (var / "outbox" / "20260101T000000-000001.eml").write_bytes(b"Reply-To: x+TOKEN@y\r\n\r\n")
    with sqlite3.connect(var / "cases.db") as db:
        db.execute("PRAGMA user_version = 0")
    for path in var.rglob("*"):
        if path.is_file():
            loosen(path, 0o644)
    return var


@pytest.mark.slow
def test_serve_keeps_every_file_0600_and_every_directory_0700(loose_var: Path) -> None:
    smtp_port = free_port()
    env = serve_env(str(loose_var), smtp_port, RUNNER__WORKERS="1", LOG_LEVEL="INFO")
    log = loose_var.parent / "serve.log"
    with log.open("wb") as err:
        # The test process's own umask stays 022: serve must set its own.
        previous = os.umask(0o022)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "le_intake", "serve"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        finally:
            os.umask(previous)
    try:
        wait_for(lambda: smtp_ready(smtp_port), "the SMTP listener", proc, log)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.sendmail(LE_SENDER, [REQUEST_ADDRESS], request_message())
        outbox = loose_var / "outbox"
        wait_for(lambda: len(list(outbox.glob("*.eml"))) == 2, "the response", proc, log)
        umask = next(
            line.split()[1]
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            if line.startswith("Umask:")
        )
        assert umask == "0077"
        assert_private(loose_var)  # while it runs: database, WAL, spool, outbox
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert_private(loose_var)
    assert (loose_var / "spool" / "bad" / "p5-old").exists()  # tightened, not removed


@pytest.mark.slow
def test_replay_and_db_upgrade_create_private_files(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = serve_env(str(var), free_port(), LOG_LEVEL="ERROR")
    previous = os.umask(0o022)
    try:
        for args in (["db", "upgrade"], ["replay", str(FIXTURE), "--into-store"]):
            done = subprocess.run(
                [sys.executable, "-m", "le_intake", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr.decode()[-3000:]
    finally:
        os.umask(previous)
    assert (var / "cases.db").exists()
    assert list((var / "outbox").glob("*.eml"))  # replay's response holds a token
    assert_private(var)


def test_start_tightens_what_is_there_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    loosen(outside, 0o644)
    settings = make_settings(tmp_path / "var")
    var = Path(settings.data_dir)
    (var / "spool" / "new").mkdir(parents=True)
    (var / "spool" / "new" / "p5-1").write_bytes(b"message")
    (var / "link").symlink_to(outside)
    for path in (var, var / "spool", var / "spool" / "new"):
        loosen(path, 0o755)
    loosen(var / "spool" / "new" / "p5-1", 0o664)

    assert make_private(settings) == 4
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # a link's target is left alone
    (var / "link").unlink()
    assert_private(var)
    assert make_private(settings) == 0  # nothing left to change


def test_outbox_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    message = OutboxMessage(id=7, raw=b"Reply-To: lawenforcement+TOKEN@example\r\n\r\nhi\r\n",
                            created_at=datetime(2026, 11, 2, tzinfo=UTC))  # fmt: skip
    previous = os.umask(0o022)
    try:
        FolderTransport(folder)._write(message)
    finally:
        os.umask(previous)
    [written] = list(folder.iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
