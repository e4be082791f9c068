"""The README's own recipe, run verbatim: send a request with swaks, reply to the automated
response with swaks, and see the case open.

The shell blocks are read out of README.md (section "Send a test mail, and confirm it") and
run with bash in a scratch directory, against a real ``le-intake serve`` on the README's
address (127.0.0.1:2525) with the demo config, exactly as a new user would type them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_crash_recovery import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTION = "## Send a test mail, and confirm it"

pytestmark = pytest.mark.slow


def recipe_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_readme_shows_the_request_and_the_reply() -> None:
    request, reply = recipe_blocks()[:2]
    assert "swaks" in request
    assert "lawenforcement@example-platform.com" in request
    for part in ("REPLY_TO=", "swaks", "cases list"):
        assert part in reply


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(
    shutil.which("swaks") is None, reason="swaks is not installed (.ci/run installs it)"
)
def test_the_readme_recipe_opens_a_case(tmp_path: Path) -> None:
    assert _port_free(2525), "the README's SMTP port 2525 is taken on this machine"
    request, reply = recipe_blocks()[:2]
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {
        **os.environ,
        "LE_INTAKE_LOG_LEVEL": "WARNING",
        "LE_INTAKE_HTTP__PORT": str(free_port()),  # only SMTP is the README's business here
        "LE_INTAKE_RUNNER__SCAN_INTERVAL_SECONDS": "0.2",
    }
    env.pop("LE_INTAKE_CONFIG", None)
    log = tmp_path / "server.log"
    with log.open("ab") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "le_intake", "serve"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
        )  # fmt: skip
    try:
        wait_for_port(2525, server, log)

        def shell(script: str) -> str:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        shell(request)
        outbox = tmp_path / "var" / "outbox"
        deadline = time.monotonic() + 60
        while not list(outbox.glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(outbox.glob("*.eml")), log.read_text()

        output = shell(reply)
        # swaks printed the server's acceptance of the reply's DATA
        assert re.search(r"<-\s+250 2\.0\.0 Message accepted", output), output
        status = ""
        while time.monotonic() < deadline + 60:
            listed = shell(".venv/bin/le-intake cases list --json")
            [case] = [json.loads(line) for line in listed.splitlines() if line.strip()]
            status = case["status"]
            if status == "open":
                break
            time.sleep(0.3)
        assert status == "open", log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
