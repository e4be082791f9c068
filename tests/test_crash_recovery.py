"""A server killed with SIGKILL mid-traffic loses nothing it acknowledged.

Real processes: ``le-intake serve`` started twice on a loopback port, a real SMTP client
sending while the first one is killed, then the case store read with sqlite3.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import LE_SENDER, REQUEST_ADDRESS, request_message

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(config: Path, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LE_INTAKE_LOG_LEVEL": "WARNING"}
    with log.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "le_intake", "--config", str(config), "serve"],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def write_config(tmp_path: Path, smtp_port: int, http_port: int) -> Path:
    """The demo config with its ports and every path moved under ``tmp_path``."""
    config = tmp_path / "config.toml"
    default = (Path(__file__).resolve().parent.parent / "config" / "default.toml").read_text()
    config.write_text(
        default.replace("port = 2525", f"port = {smtp_port}")
        .replace("port = 8080", f"port = {http_port}")
        .replace('database_url = "sqlite+aiosqlite:///var/le-intake.db"',
                 f'database_url = "sqlite+aiosqlite:///{tmp_path}/cases.db"')
        .replace('spool_dir = "var/spool"', f'spool_dir = "{tmp_path}/spool"')
        .replace('data_dir = "var"', f'data_dir = "{tmp_path}"')
        .replace("scan_interval_seconds = 5", "scan_interval_seconds = 0.2")
    )  # fmt: skip
    return config


def test_sigkill_loses_no_acknowledged_message(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port, free_port())
    log = tmp_path / "server.log"
    first = start_server(config, tmp_path, log)
    acknowledged: list[str] = []
    stop = threading.Event()

    def client() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            message_id = f"<crash-{n}@fbi.gov>"
            sender = LE_SENDER if n % 3 else "someone@gmail.com"
            raw = request_message(sender=sender, message_id=message_id)
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    smtp.sendmail(sender, [REQUEST_ADDRESS], raw)
            except (OSError, smtplib.SMTPException):
                return  # the server died under us: this one was never acknowledged
            acknowledged.append(message_id)

    try:
        wait_for_port(port, first, log)
        thread = threading.Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 25 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        stop.set()
        thread.join(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(acknowledged) >= 25
    spool = tmp_path / "spool"
    left_over = len(list((spool / "new").iterdir())) + len(list((spool / "cur").iterdir()))
    print(f"acknowledged={len(acknowledged)} left in spool at the kill={left_over}")

    second = start_server(config, tmp_path, log)
    try:
        wait_for_port(port, second, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not any((spool / "new").iterdir()) and not any((spool / "cur").iterdir()):
                break
            time.sleep(0.2)
        with sqlite3.connect(tmp_path / "cases.db") as db:
            rows = db.execute("SELECT message_id, COUNT(*) FROM messages GROUP BY message_id")
            stored = dict(rows.fetchall())
        for message_id in acknowledged:
            assert stored.get(message_id) == 1, message_id
        assert not any((spool / "bad").iterdir())
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
            raise
    assert second.returncode == 0, log.read_text()
