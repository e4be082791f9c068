"""Soak: an analysis worker SIGKILLed (as the OOM killer would) in the middle of traffic.

A real ``le-intake serve`` with one worker process; a few threads send 200 messages over
SMTP on loopback; once the worker is busy it is killed (found as a child of the server in
/proc, cross-checked with the pid /readyz reports). Every message that got 250 must be in
the store exactly once, and nothing may be in ``spool/bad/``: the killed worker is
replaced, the message it had runs again, and no other message is touched.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import sqlite3
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LE_SENDER, REQUEST_ADDRESS, request_message
from tests.test_crash_recovery import free_port, start_server, wait_for_port, write_config

pytestmark = pytest.mark.slow

MESSAGES = 200
SENDERS = 4


def analysis_workers(server_pid: int) -> list[int]:
    """The server's children that are multiprocessing spawn workers (not its resource
    tracker), from /proc: no psutil."""
    children: list[int] = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    workers = []
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(pid)
    return workers


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/readyz")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read())


def test_killing_the_worker_mid_traffic_loses_and_quarantines_nothing(tmp_path: Path) -> None:
    smtp_port, http_port = free_port(), free_port()
    config = write_config(tmp_path, smtp_port, http_port)
    log = tmp_path / "server.log"
    server = start_server(config, tmp_path, log)
    acknowledged: list[str] = []
    lock = threading.Lock()
    counter = iter(range(MESSAGES))

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
            for n in counter:
                message_id = f"<soak-{n}@fbi.gov>"
                raw = request_message(message_id=message_id, body=f"Records for @acct_{n}.\n")
                smtp.sendmail(LE_SENDER, [REQUEST_ADDRESS], raw)  # raises unless 250
                with lock:
                    acknowledged.append(message_id)

    try:
        wait_for_port(smtp_port, server, log)
        deadline = time.monotonic() + 60
        while readyz(http_port)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        [first_worker] = analysis_workers(server.pid)
        assert readyz(http_port)[1]["pool"]["pids"] == [first_worker]

        threads = [threading.Thread(target=client) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()
        # Kill once the worker has work and a third of the mail is in.
        while time.monotonic() < deadline:
            with lock:
                sent = len(acknowledged)
            if sent >= MESSAGES // 3 and readyz(http_port)[1]["pool"]["busy"]:
                break
            time.sleep(0.005)
        os.kill(first_worker, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=60)
        assert len(acknowledged) == MESSAGES

        spool = tmp_path / "spool"

        def settled() -> bool:
            return not any((spool / "new").iterdir()) and not any((spool / "cur").iterdir())

        while time.monotonic() < deadline + 30 and not settled():
            time.sleep(0.2)
        assert settled()
        with sqlite3.connect(tmp_path / "cases.db") as db:
            rows = db.execute("SELECT message_id, COUNT(*) FROM messages GROUP BY message_id")
            stored = dict(rows.fetchall())
        for message_id in acknowledged:
            assert stored.get(message_id) == 1, message_id
        assert not any((spool / "bad").iterdir())
        status, report = readyz(http_port)
        assert status == 200, report
        assert report["pool"]["worker_deaths"] == 1
        assert report["pool"]["pids"] != [first_worker]
        assert analysis_workers(server.pid) == report["pool"]["pids"]
        assert report["spool"]["bad"] == 0
        rerun = log.read_text().count("analysis worker died under a message")
        print(
            f"acknowledged={len(acknowledged)} stored={len(stored)} "
            f"restarts={report['pool']['restarts']} messages run again after the kill={rerun}"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, log.read_text()
