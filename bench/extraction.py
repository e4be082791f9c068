"""Account-identifier extraction against the hand-labelled set in fixtures/extraction/.

Runs ``IdentifierExtractor.extract`` on every request body (quoted spans from
``classifiers.quotes.quoted_spans``, sender domain from the labelled sender) and prints, per
kind of identifier, precision, recall and F1 for *subject* identifiers: a prediction
counts when its kind and normalised value match an expected subject identifier and its
role is "subject". Predictions matching a ``not_expected`` entry (identifiers damaged by
OCR, wraps or stray spaces) are neither right nor wrong. Then the micro-averaged F1,
extraction speed (documents/second, extraction calls only, the whole set repeated for at
least ``--seconds``), the share of labelled facts ``FactExtractor`` finds, and the speed
of the whole analysis pipeline on a ~4 KB RFC 5322 message.

    python -m bench.extraction [--errors] [--seconds 3] [--set PATH] [--workers 1 2]

``--errors`` lists every false positive and false negative (and every missed fact) with
the request id, the recognizer pattern and the text around it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from classifiers.facts import FactExtractor, RequestFacts
from classifiers.identifiers import IdentifierExtractor, IdentifierStage
from classifiers.quotes import quoted_spans
from config.settings import Settings, load_settings
from core.envelope import Envelope
from core.findings import Identifier
from core.verdicts import Decision
from ingest.pipeline import analyse, build_stages

ROOT = Path(__file__).resolve().parent.parent
SET_PATH = ROOT / "fixtures" / "extraction" / "requests.jsonl"
# Relative periods in the set ("the past 90 days") are labelled from this day.
FACTS_NOW = date(2026, 11, 16)
KINDS = ("username", "user_id", "status_id", "phone", "email", "sid", "ip", "url")
LIST_FACTS = ("legal_process", "time_period", "case_number")
SINGLE_FACTS = ("agent_name", "agent_phone", "agent_email")
FACT_KINDS = LIST_FACTS + SINGLE_FACTS
REQUEST_ADDRESS = "lawenforcement@example-platform.com"
MESSAGE_BYTES = 4096
# The request the pipeline is timed on (always taken from SET_PATH when absent).
PIPELINE_REQUEST = "x001-"

Pair = tuple[str, str]


# -- the set -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    id: str
    sender: str
    text: str
    subjects: frozenset[Pair]
    # Damaged by noise: neither expected nor counted against the extractor.
    unscored: frozenset[Pair]
    # Every labelled fact as a list of values (single-valued facts have one).
    facts: dict[str, tuple[str, ...]]

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2].lower()


def _pairs(entries: Iterable[dict[str, Any]]) -> frozenset[Pair]:
    return frozenset((str(e["kind"]), str(e["value"])) for e in entries)


def load_set(path: Path = SET_PATH) -> list[Request]:
    requests = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            data: dict[str, Any] = json.loads(line)
            facts: dict[str, tuple[str, ...]] = {}
            for kind, value in (data.get("facts") or {}).items():
                values = value if isinstance(value, list) else [value]
                facts[str(kind)] = tuple(str(v) for v in values)
            requests.append(
                Request(
                    id=str(data["id"]),
                    sender=str(data["sender"]),
                    text=str(data["text"]),
                    subjects=_pairs(data["subject_identifiers"]),
                    unscored=_pairs(data.get("not_expected") or []),
                    facts=facts,
                )
            )
    return requests


# -- scoring identifiers -------------------------------------------------------------------


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Error:
    request_id: str
    what: str  # "FP", "FN" or "FACT"
    kind: str
    value: str
    detail: str


@dataclass
class Evaluation:
    per_kind: dict[str, Score] = field(default_factory=dict)
    errors: list[Error] = field(default_factory=list)
    unscored: int = 0

    @property
    def overall(self) -> Score:
        total = Score()
        for s in self.per_kind.values():
            total.tp += s.tp
            total.fp += s.fp
            total.fn += s.fn
        return total

    def score(self, kind: str) -> Score:
        return self.per_kind.setdefault(kind, Score())


def _context(text: str, start: int, end: int, width: int = 40) -> str:
    snippet = text[max(0, start - width) : start] + "[" + text[start:end] + "]"
    snippet += text[end : end + width]
    return " ".join(snippet.split())


def _describe(text: str, ident: Identifier) -> str:
    return (
        f"role={ident.role} {ident.recognizer}/{ident.pattern}: "
        f"{_context(text, ident.start, ident.end)}"
    )


def extract(extractor: IdentifierExtractor, request: Request) -> list[Identifier]:
    return extractor.extract(
        request.text, quoted_spans(request.text), request.sender, request.domain
    )


def evaluate(requests: Sequence[Request], extractor: IdentifierExtractor) -> Evaluation:
    result = Evaluation()
    for request in requests:
        found = extract(extractor, request)
        subject = {(i.kind, i.value): i for i in found if i.role == "subject"}
        other = {(i.kind, i.value): i for i in found if i.role != "subject"}
        for pair, ident in subject.items():
            if pair in request.subjects:
                result.score(pair[0]).tp += 1
            elif pair in request.unscored:
                result.unscored += 1
            else:
                result.score(pair[0]).fp += 1
                result.errors.append(Error(request.id, "FP", *pair, _describe(request.text, ident)))
        for pair in sorted(request.subjects - subject.keys()):
            result.score(pair[0]).fn += 1
            elsewhere = other.get(pair)
            detail = _describe(request.text, elsewhere) if elsewhere else "not found"
            result.errors.append(Error(request.id, "FN", *pair, detail))
    return result


# -- facts ---------------------------------------------------------------------------------


def _fact_values(facts: RequestFacts, kind: str) -> set[str]:
    if kind in LIST_FACTS:
        return {f.value for f in facts.facts if f.kind == kind}
    value: str | None = getattr(facts, kind)
    return {value} if value is not None else set()


def _same_fact(kind: str, expected: str, found: set[str]) -> bool:
    if kind == "agent_name":
        wanted = " ".join(expected.split()).casefold()
        return any(" ".join(v.split()).casefold() == wanted for v in found)
    return expected in found


def facts_accuracy(
    requests: Sequence[Request], extractor: FactExtractor, now: date = FACTS_NOW
) -> tuple[dict[str, tuple[int, int]], list[Error]]:
    """Per fact kind: (expected values found, expected values); and the misses.
    List facts count each labelled value found among the extractor's values; single
    facts (agent name, phone, email) compare the one value the desk would use."""
    counts = {kind: [0, 0] for kind in FACT_KINDS}
    misses = []
    for request in requests:
        if not request.facts:
            continue
        facts = extractor.extract(request.text, quoted_spans(request.text), request.sender, now)
        for kind, expected in request.facts.items():
            if kind not in counts:
                continue
            found = _fact_values(facts, kind)
            for value in expected:
                counts[kind][1] += 1
                if _same_fact(kind, value, found):
                    counts[kind][0] += 1
                else:
                    got = ", ".join(sorted(found)) or "nothing"
                    misses.append(Error(request.id, "FACT", kind, value, f"found: {got}"))
    return {k: (v[0], v[1]) for k, v in counts.items() if v[1]}, misses


# -- speed ---------------------------------------------------------------------------------


def time_extraction(
    requests: Sequence[Request], extractor: IdentifierExtractor, min_seconds: float
) -> tuple[int, float]:
    """(documents, seconds) spent in ``extract`` alone over whole passes of the set."""
    prepared = [(r.text, quoted_spans(r.text), r.sender, r.domain) for r in requests]
    for args in prepared:  # warm up (spaCy vocab, phonenumbers metadata)
        extractor.extract(*args)
    docs, elapsed = 0, 0.0
    while elapsed < min_seconds:
        start = time.perf_counter()
        for args in prepared:
            extractor.extract(*args)
        elapsed += time.perf_counter() - start
        docs += len(prepared)
    return docs, elapsed


_RIDER = (
    "{n}. The records requested include, for each account named above, the name, "
    "addresses, local and long distance telephone connection records, records of session "
    "times and durations, length of service and types of service used, telephone or "
    "instrument numbers and other subscriber numbers or identities, including any "
    "temporarily assigned network address, and the means and source of payment.\n\n"
)


def build_message(request: Request, size: int = MESSAGE_BYTES) -> bytes:
    """An RFC 5322 message from ``request`` (as its authenticated sender would send it),
    its body padded with a subpoena rider to about ``size`` bytes."""
    domain = request.domain
    date_header = format_datetime(datetime(2026, 11, 16, 9, 30, tzinfo=UTC))
    headers = [
        f"Authentication-Results: le-intake.local; spf=pass smtp.mailfrom={domain}; "
        f"dkim=pass header.d={domain}; dmarc=pass header.from={domain}",
        f"Date: {date_header}",
        f"From: {request.sender}",
        f"To: {REQUEST_ADDRESS}",
        "Subject: Grand Jury Subpoena - subscriber records",
        f"Message-ID: <bench-{request.id}@{domain}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    head = "\r\n".join(headers) + "\r\n\r\n"
    rider = "SUBPOENA RIDER (reproduced from the attachment)\n\n"
    n = 0

    def render() -> bytes:
        body = request.text.rstrip("\n") + "\n\n" + rider
        return (head + body.replace("\n", "\r\n")).encode("utf-8")

    while len(render()) < size:
        n += 1
        rider += _RIDER.format(n=n)
    return render()


def bench_envelope(request: Request) -> Envelope:
    """The envelope the timed message arrives with: from its sender, to the request address."""
    return Envelope(
        mail_from=request.sender,
        rcpt_tos=(REQUEST_ADDRESS,),
        received_at=datetime(2026, 11, 16, 9, 30, tzinfo=UTC),
        peer="127.0.0.1",
        helo="bench.local",
    )


def time_pipeline(
    settings: Settings, request: Request, min_seconds: float
) -> tuple[int, float, int, Decision, int]:
    """(messages, seconds, message bytes, decision, subject identifiers) for
    ``ingest.pipeline.analyse`` alone on one ~4 KB message, repeated."""
    stages = build_stages(settings)
    raw = build_message(request)
    envelope = bench_envelope(request)
    ctx = analyse(raw, envelope, stages)  # warm up, and check it went the whole road
    subjects = sum(1 for i in ctx.identifiers if i.role == "subject")
    messages, elapsed = 0, 0.0
    while elapsed < min_seconds:
        start = time.perf_counter()
        for _ in range(20):
            analyse(raw, envelope, stages)
        elapsed += time.perf_counter() - start
        messages += 20
    return messages, elapsed, len(raw), ctx.decision, subjects


async def _pool_rate(
    settings: Settings, raw: bytes, envelope: Envelope, workers: int, count: int
) -> float:
    from ingest.analysis import PoolAnalyser

    pool = PoolAnalyser(settings, workers)
    try:
        await pool.warm_up()
        await asyncio.gather(*(pool.analyse(raw, envelope) for _ in range(workers * 4)))
        start = time.perf_counter()
        await asyncio.gather(*(pool.analyse(raw, envelope) for _ in range(count)))
        return count / (time.perf_counter() - start)
    finally:
        pool.close()


def time_pool(settings: Settings, request: Request, workers: int, count: int = 600) -> float:
    """messages/s of ``analyse`` on the ~4 KB message in a pool of ``workers`` processes
    (the server's PoolAnalyser), all messages submitted at once."""
    envelope = bench_envelope(request)
    return asyncio.run(_pool_rate(settings, build_message(request), envelope, workers, count))


# -- report --------------------------------------------------------------------------------


def _row(name: str, s: Score) -> str:
    return f"{name:<16}{s.tp:>5}{s.fp:>5}{s.fn:>5}{s.precision:>11.3f}{s.recall:>8.3f}{s.f1:>8.3f}"


def print_table(evaluation: Evaluation) -> None:
    print(f"{'kind':<16}{'tp':>5}{'fp':>5}{'fn':>5}{'precision':>11}{'recall':>8}{'f1':>8}")
    kinds = [k for k in KINDS if k in evaluation.per_kind]
    kinds += sorted(set(evaluation.per_kind) - set(KINDS))
    for kind in kinds:
        print(_row(kind, evaluation.per_kind[kind]))
    print("-" * 58)
    print(_row("overall (micro)", evaluation.overall))


def print_errors(errors: Sequence[Error]) -> None:
    for e in sorted(errors, key=lambda e: (e.request_id, e.what, e.kind, e.value)):
        print(f"{e.request_id:<40} {e.what:<4} {e.kind:<12} {e.value}")
        print(f"{'':<45}{e.detail}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--errors", action="store_true", help="list every FP, FN and miss")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timing per run")
    parser.add_argument(
        "--set",
        type=Path,
        default=SET_PATH,
        help="the JSON Lines set (default fixtures/extraction/requests.jsonl; "
        "the held-out set is fixtures/extraction/heldout.jsonl)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=[],
        help="also time analyse() in worker pools of these sizes (e.g. --workers 1 2)",
    )
    args = parser.parse_args(argv)

    settings = load_settings()
    requests = load_set(args.set)
    extractor = IdentifierStage.from_settings(settings).extractor
    evaluation = evaluate(requests, extractor)
    expected = sum(len(r.subjects) for r in requests)
    print(
        f"{args.set}: {len(requests)} requests, {expected} expected subject identifiers, "
        f"{sum(len(r.unscored) for r in requests)} marked not expected "
        f"({evaluation.unscored} predictions of them ignored)\n"
    )
    print_table(evaluation)
    print(f"\noverall subject-identifier F1 (micro): {evaluation.overall.f1:.3f}")

    docs, seconds = time_extraction(requests, extractor, args.seconds)
    print(f"extraction: {docs / seconds:,.0f} documents/s ({docs} documents in {seconds:.2f} s)")

    fact_counts, misses = facts_accuracy(
        requests, FactExtractor(settings.extraction.default_region)
    )
    print(f"\nfacts (now = {FACTS_NOW.isoformat()}): share of labelled values found")
    print(f"{'fact':<16}{'found':>7}{'total':>7}{'accuracy':>10}")
    found_all = total_all = 0
    for kind, (found, total) in fact_counts.items():
        found_all += found
        total_all += total
        print(f"{kind:<16}{found:>7}{total:>7}{found / total:>10.3f}")
    if total_all:
        print(f"{'all':<16}{found_all:>7}{total_all:>7}{found_all / total_all:>10.3f}")

    # The pipeline is always timed on x001 of the main set, so that runs on another set
    # (--set fixtures/extraction/heldout.jsonl) report a comparable messages/s.
    pipeline_request = next(
        r for r in (*requests, *load_set(SET_PATH)) if r.id.startswith(PIPELINE_REQUEST)
    )
    messages, seconds, size, decision, subjects = time_pipeline(
        settings, pipeline_request, args.seconds
    )
    print(
        f"\npipeline analyse(): {messages / seconds:,.1f} messages/s "
        f"({messages} x {size}-byte message in {seconds:.2f} s; "
        f"decision {decision.name}, {subjects} subject identifiers)"
    )

    for workers in args.workers:
        rate = time_pool(settings, pipeline_request, workers)
        print(
            f"pipeline analyse() in a pool of {workers} worker process(es): {rate:,.1f} messages/s"
        )

    if args.errors:
        print("\nidentifier errors (FP: predicted subject, not expected; FN: expected, missed)")
        print_errors(evaluation.errors)
        print("\nfacts not found")
        print_errors(misses)


if __name__ == "__main__":
    main()
