"""Parsing and attachment stripping: cost per message over the external MIME corpus.

Runs the parse stage and the attachment stage (the [attachments] part of the road) over
every message of tests/corpus/mime several times and prints the mean and the slowest.

    python -m bench.attachments [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from core.context import MessageContext
from core.envelope import Envelope
from ingest.attachments import AttachmentStage
from ingest.parse import ParseStage
from ingest.pipeline import Stage, run_stages
from ingest.replay import iter_sources

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "mime"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    items = list(iter_sources([CORPUS]))
    envelope = Envelope(
        "x@example.com", ("lawenforcement@example-platform.com",), datetime.now(UTC)
    )
    stages: list[Stage] = [ParseStage(), AttachmentStage()]
    timings: list[float] = []
    removed = 0
    for _ in range(args.rounds):
        for item in items:
            start = time.perf_counter()
            ctx = run_stages(MessageContext(raw=item.raw, envelope=envelope), stages)
            timings.append(time.perf_counter() - start)
            removed += len(ctx.attachments)
    size = sum(len(i.raw) for i in items) / len(items)
    print(
        f"{len(items)} messages (mean {size / 1024:.1f} KiB), {args.rounds} rounds: "
        f"parse + strip {statistics.mean(timings) * 1000:.2f} ms/message mean, "
        f"p99 {sorted(timings)[int(0.99 * len(timings))] * 1000:.1f} ms, "
        f"max {max(timings) * 1000:.0f} ms; {removed // args.rounds} attachments removed"
    )


if __name__ == "__main__":
    main()
