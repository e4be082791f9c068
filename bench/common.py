"""What the benchmarks share: a free loopback port, waiting for a server to listen, and
``le-intake serve`` started on scratch paths."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def serve_env(scratch: str, smtp_port: int, **settings: str) -> dict[str, str]:
    """The environment for ``le-intake serve`` on the demo config with every path under
    ``scratch`` (``cases.db``, ``spool/``, ``outbox/``) and a free HTTP port; ``settings``
    are further overrides without the prefix (``RUNNER__WORKERS="2"``)."""
    return {
        **os.environ,
        "LE_INTAKE_SMTP__PORT": str(smtp_port),
        "LE_INTAKE_HTTP__PORT": str(free_port()),
        "LE_INTAKE_DATA_DIR": scratch,
        "LE_INTAKE_SPOOL_DIR": f"{scratch}/spool",
        "LE_INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{scratch}/cases.db",
        "LE_INTAKE_OUTBOX__FOLDER": f"{scratch}/outbox",
        "LE_INTAKE_LOG_LEVEL": "WARNING",
        **{f"LE_INTAKE_{name}": value for name, value in settings.items()},
    }


@contextmanager
def serving(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``le-intake serve`` running in a process of its own until the block ends."""
    server = subprocess.Popen(
        [sys.executable, "-m", "le_intake", "serve"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield server
    finally:
        server.terminate()
        server.wait(timeout=60)
