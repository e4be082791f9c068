"""Worst-case analysis time on pathological bodies, stage by stage, and how it grows.

A request body is attacker-controlled text up to the extraction cap (200 000 characters,
``classifiers.nlp.MAX_EXTRACT_CHARS``). A regular expression that backtracks on a long
run of one character class, or a per-line or per-match loop that rescans the whole text,
turns such a body into minutes of CPU in a worker, and every message queued behind it
(emergencies too) waits. This bench builds one message per pathological body (long runs of
each character class, handle-, URL- and phone-like runs, reply prefixes, quote and HTML
nesting, many headers, many short lines, one huge line, …) at 10 k, 50 k and 200 k
characters, runs it through the real stage table (``ingest.pipeline.stage_table`` with
``config.settings.load_settings()``, as ``ingest.pipeline.analyse`` does), and prints per
case the slowest stage, then per size the worst case, and the growth of the worst time
from size to size: about 4 to 5 means linear, about 16 to 25 quadratic. The same lines
"past parse" leave out the parse stage (the MIME reading of ingest/parse.py, where
mail-parser's NFC of a long run of combining marks was once quadratic), and a line per
stage shows where a case's time goes.

    python -m bench.adversarial [--sizes 10000 50000 200000] [--case NAME ...]
                                [--repeat 1] [--limit SECONDS] [--list]

``--limit``: a case whose analysis took longer than this at one size is not run at the
larger sizes (its row then says "skipped"), so a run before a fix ends in reasonable time.

The body is a short genuine emergency request (an @handle, a user ID, a phone number, a
statute citation, a danger claim, so that every extraction and the completeness check
run) followed by the pathological filler; ``build_message(..., surround=True)`` puts
filler on both sides (the regression tests in tests/test_pathological_inputs.py).
"""

from __future__ import annotations

import argparse
import itertools
import string
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from classifiers.nlp import message_doc
from config.settings import Settings, load_settings
from core.context import MessageContext
from core.envelope import Envelope
from core.verdicts import Decision
from ingest.pipeline import Stage, build_stages

SENDER = "agent.smith@fbi.gov"
REQUEST_ADDRESS = "lawenforcement@example-platform.com"
SIZES = (10_000, 50_000, 200_000)

# The genuine request every pathological body carries: what the analysis must still find.
REQUEST = (
    "To whom it may concern,\n\n"
    "This is an emergency: a 14-year-old girl is in imminent danger of death. Under "
    "18 U.S.C. § 2702(b)(8) we request the subscriber information and IP logs of the "
    "account @target_account (User ID: 1234567) and of the phone number +1 202-555-0143 "
    "for the past 7 days, in order to locate her.\n"
)
# What the analysis of REQUEST finds, whatever surrounds it (the tests check these).
EXPECTED_SUBJECTS = (
    ("username", "target_account"),
    ("user_id", "1234567"),
    ("phone", "+12025550143"),
)
SIGNATURE = (
    "\n\nSincerely,\nSpecial Agent Dana Scully\nFederal Bureau of Investigation\n"
    "(202) 324-3000\ndana.scully@fbi.gov\n"
)


def _repeat(unit: str, size: int) -> str:
    """``unit`` repeated to about ``size`` characters, in whole units (a cut unit would
    leave a stray word: "r", the tail of "reply", is a closing line)."""
    return unit * max(1, size // len(unit))


@dataclass(frozen=True)
class Case:
    """One pathological input: ``filler(size)`` is the hostile text of that many
    characters. ``where`` says where it goes: the body (plain text), an HTML body, the
    header block, or the Subject header."""

    name: str
    filler: Callable[[int], str]
    where: str = "body"  # "body", "html", "headers" or "subject"


def _run(unit: str) -> Callable[[int], str]:
    return lambda size: _repeat(unit, size)


def _then(unit: str, tail: str) -> Callable[[int], str]:
    """A run of ``unit`` ending in ``tail``: a run that the text's own ``strip()`` would
    otherwise remove, or one a pattern must scan to its end to reject."""
    return lambda size: _repeat(unit, max(0, size - len(tail))) + tail


def _html_nesting(size: int) -> str:
    depth = max(1, (size - 20) // 11)
    return "<div>" * depth + "deep text" + "</div>" * depth


def _headers(size: int) -> str:
    lines = []
    total = 0
    n = 0
    while total < size:
        line = f"X-Filler-{n}: value {n}\r\n"
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)


CASES: tuple[Case, ...] = (
    Case("letters", _run("a")),
    Case("word_chars", _run("aB3_")),
    Case("digits", _run("7")),
    Case("at_signs", _run("@")),
    Case("dots", _run(".")),
    Case("dashes", _run("-")),
    Case("underscores", _run("_")),
    Case("spaces", _then(" ", "end")),
    Case("whitespace_mix", _then(" \t\u00a0\u2003", "end")),
    Case("newlines", _then("\n", "end")),
    Case("blank_lines", _then(" \n\t\n", "end")),
    Case("punctuation", _run(string.punctuation)),
    Case("handle_like", _run("a@")),
    Case("handles", _run("@a1 ")),
    Case("email_like", _run("a.a@a.")),
    Case("emails", _run("x.y@example.com ")),
    Case("url_like", lambda size: "http://a" + _repeat("/a", size - 8)),
    Case("urls", _run("http://a.example/x ")),
    Case("dotted_host", _run("a.")),
    Case("phone_like", _run("555 123 4567 ")),
    Case("digit_groups", _run("12 ")),
    Case("digit_dashes", _run("1-")),
    Case("paren_digits", _run("(555) ")),
    Case("ipv6_like", _run("a:")),
    Case("ipv4_like", _run("1.")),
    Case("re_prefix", _run("Re: ")),
    Case("re_subject", _run("Re: "), where="subject"),
    Case("quote_nesting", _then(">", " quoted")),
    Case("quote_lines", _run("> quoted\nreply\n")),
    Case("html_nesting", _html_nesting, where="html"),
    Case("many_headers", _headers, where="headers"),
    Case("short_lines", _run("a\n")),
    Case("huge_line", _run("lorem ipsum dolor sit amet ")),
    Case("sentences", _run("Ab. ")),
    Case("closings", _run("Thank you,\n")),
    Case("sig_dashes", _run("--\n")),
    Case("pipes_labels", _run("| t ")),
    Case("dash_capitals", _run("- Ab ")),
    Case("forwarded", _run("---------- Forwarded message ---------\n")),
    Case("attribution", _run("On Mon, someone\n")),
    Case("outlook_from", _run("From: a\n")),
    Case("statute_like", _run("2702 (b) (8) and ")),
    Case("dates", _run("January 1, 2026 - ")),
    Case("numeric_dates", _run("1/1/2026 to ")),
    Case("case_cues", _run("Case No. ")),
    Case("id_cues", _run("User ID: ")),
    Case("labels", _run("Officer Phone: ")),
    Case("colons", _run("A: ")),
    Case("danger_words", _run("imminent danger of death ")),
    Case("deadline_cues", _run("respond by ")),
    Case("within_cues", _run("within 10 days ")),
    Case("warrants", _run("the warrant ")),
    Case("anticipated", _run("a subpoena will follow ")),
    Case("court_orders", _run("court order 2703(d) ")),
    Case("preserve_for", _run("preserve for 180 days ")),
    Case("usc_spaces", _then("18 U.S.C. " + " " * 50, "x")),
    Case("combining_marks", _then("e" + "\u0301\u0316" * 40, "x")),
    Case("combining_run", lambda size: "e" + "\u0316\u0301" * (size // 2)),
    Case("html_paragraphs", _run("<p>x"), where="html"),
    Case("html_unclosed", _run("<b>x"), where="html"),
    Case("html_links", _run('<a href="http://a.example/x">y</a> '), where="html"),
)


def case_named(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(name)


def build_message(case: Case, size: int, *, surround: bool = False) -> bytes:
    """An authenticated RFC 5322 message from an LE sender whose body is REQUEST followed
    by ``size`` characters of the case's filler (``surround``: half before, half after,
    and a signature at the end)."""
    domain = SENDER.rpartition("@")[2]
    subject = "Request for records"
    extra = ""
    content_type = "text/plain"
    request = REQUEST
    if case.where == "body" or case.where == "html":
        if surround:
            half = size // 2
            body = case.filler(half) + "\n\n" + request + "\n" + case.filler(size - half)
            body += SIGNATURE
        else:
            body = request + "\n" + case.filler(size)
        if case.where == "html":
            content_type = "text/html"
            body = "<html><body><p>" + body.replace("\n", "<br>") + "</p></body></html>"
    else:
        body = request + (SIGNATURE if surround else "")
        if case.where == "headers":
            extra = case.filler(size)
        else:
            # one Subject header, folded as a mail client folds it
            words = case.filler(size).split(" ")
            folded, line = [], ""
            for word in words:
                if len(line) + len(word) > 70:
                    folded.append(line)
                    line = ""
                line += word + " "
            folded.append(line)
            subject = "\r\n ".join(part.rstrip() for part in folded if part.strip())
    head = (
        f"Authentication-Results: le-intake.local; spf=pass smtp.mailfrom={domain}; "
        f"dkim=pass header.d={domain}; dmarc=pass header.from={domain}\r\n"
        "Date: Mon, 16 Nov 2026 09:30:00 +0000\r\n"
        f"From: Dana Scully <{SENDER}>\r\n"
        f"To: {REQUEST_ADDRESS}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <adversarial-{case.name}-{size}@{domain}>\r\n"
        f"{extra}"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + body.replace("\n", "\r\n")).encode("utf-8")


def envelope() -> Envelope:
    """The envelope the message arrives with, from the boundary MTA on loopback."""
    return Envelope(
        mail_from=SENDER,
        rcpt_tos=(REQUEST_ADDRESS,),
        received_at=datetime(2026, 11, 16, 9, 30, tzinfo=UTC),
        peer="127.0.0.1",
        helo="bench.local",
    )


def timed_analysis(
    raw: bytes, env: Envelope, stages: Sequence[Stage]
) -> tuple[dict[str, float], MessageContext]:
    """``ingest.pipeline.analyse`` with a clock around each stage. The body's shared Doc
    is made just before the emergency stage (which would make it) and timed as
    "tokenise", so the tokenizer's cost is not counted against one recognizer."""
    ctx = MessageContext(raw=raw, envelope=env)
    seconds: dict[str, float] = {}
    with ExitStack() as resources:
        ctx.resources = resources
        try:
            for stage in stages:
                if ctx.decision is Decision.DROP and not stage.runs_after_drop:
                    continue
                if stage.name == "emergency" and ctx.decision is not Decision.DROP:
                    start = time.perf_counter()
                    message_doc(ctx)
                    seconds["tokenise"] = time.perf_counter() - start
                start = time.perf_counter()
                ctx.verdicts.extend(stage(ctx))
                seconds[stage.name] = time.perf_counter() - start
        finally:
            ctx.scratch.clear()
            ctx.resources = None
    return seconds, ctx


@dataclass
class Row:
    case: str
    size: int
    stage: str
    seconds: float
    total: float
    stages: dict[str, float]


def _label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def run(
    settings: Settings,
    cases: Sequence[Case],
    sizes: Sequence[int],
    repeat: int,
    limit: float | None,
) -> dict[int, list[Row]]:
    stages = build_stages(settings)
    env = envelope()
    # warm up on a small body of every case: what a first use costs once per process
    # (phonenumbers' metadata, tldextract's suffix table, spaCy's vocabulary) is not
    # counted against the case that happens to come first
    for case in cases:
        timed_analysis(build_message(case, 1000), env, stages)
    rows: dict[int, list[Row]] = {size: [] for size in sizes}
    print(f"{'case':<16}{'size':>6}  {'slowest stage':<14}{'ms':>10}{'total ms':>11}")
    for case in cases:
        skipped_from: int | None = None
        for size in sizes:
            if skipped_from is not None:
                print(
                    f"{case.name:<16}{_label(size):>6}  skipped (over {limit} s at "
                    f"{_label(skipped_from)})"
                )
                continue
            raw = build_message(case, size)
            best: dict[str, float] | None = None
            for _ in range(max(1, repeat)):
                seconds, _ctx = timed_analysis(raw, env, stages)
                if best is None or sum(seconds.values()) < sum(best.values()):
                    best = seconds
            assert best is not None
            stage, worst = max(best.items(), key=lambda item: item[1])
            total = sum(best.values())
            rows[size].append(Row(case.name, size, stage, worst, total, best))
            print(
                f"{case.name:<16}{_label(size):>6}  {stage:<14}{worst * 1000:>10.1f}"
                f"{total * 1000:>11.1f}",
                flush=True,
            )
            if limit is not None and total > limit:
                skipped_from = size
    return rows


def report(rows: dict[int, list[Row]]) -> None:
    print()
    worst: dict[int, Row] = {}
    for size, found in rows.items():
        if not found:
            print(f"worst {_label(size)} : none run")
            continue
        row = max(found, key=lambda r: r.seconds)
        worst[size] = row
        print(f"worst {_label(size)} : {row.case} {row.stage} {row.seconds * 1000:.1f} ms")
    sizes = sorted(rows)
    for small, large in itertools.pairwise(sizes):
        label = f"growth {_label(large)}/{_label(small)} :"
        if small in worst and large in worst and len(rows[large]) == len(rows[small]):
            print(f"{label} {worst[large].seconds / worst[small].seconds:.1f}")
        else:
            print(f"{label} n/a (cases skipped)")
    # the same past parsing: the recognizers and text helpers this bench was first
    # written for, apart from the MIME reading
    after: dict[int, tuple[float, str, str]] = {}
    for size, found in rows.items():
        candidates = [
            (seconds, r.case, stage)
            for r in found
            for stage, seconds in r.stages.items()
            if stage != "parse"
        ]
        if candidates:
            after[size] = max(candidates)
            seconds, case, stage = after[size]
            print(f"worst {_label(size)} past parse : {case} {stage} {seconds * 1000:.1f} ms")
    for small, large in itertools.pairwise(sizes):
        if small in after and large in after:
            ratio = after[large][0] / after[small][0]
            print(f"growth {_label(large)}/{_label(small)} past parse : {ratio:.1f}")
    # per stage: its worst time over the cases at each size, and how that grows (which
    # stage a quadratic case lives in)
    stage_names = list(
        dict.fromkeys(name for found in rows.values() for r in found for name in r.stages)
    )
    for name in stage_names:
        worst_ms = [
            max((r.stages.get(name, 0.0) for r in rows[size]), default=0.0) for size in sizes
        ]
        ratios = [f"{b / a:.1f}" if a > 0.0005 else "-" for a, b in itertools.pairwise(worst_ms)]
        figures = " ".join(
            f"{_label(z)} {w * 1000:.1f} ms" for z, w in zip(sizes, worst_ms, strict=True)
        )
        print(f"stage {name:<13}: {figures}; growth {' '.join(ratios)}")
    # the case that grows fastest, whatever its absolute time
    for small, large in itertools.pairwise(sizes):
        growths: list[tuple[float, str]] = []
        by_case = {r.case: r for r in rows[small]}
        for r in rows[large]:
            before = by_case.get(r.case)
            if before is not None and before.total > 0:
                growths.append((r.total / before.total, r.case))
        if growths:
            ratio, name = max(growths)
            print(f"fastest growth {_label(large)}/{_label(small)} : {name} {ratio:.1f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--case", nargs="*", default=[], help="only these cases")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per case")
    parser.add_argument("--limit", type=float, default=None, help="seconds; see above")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.list:
        for case in CASES:
            print(case.name)
        return
    cases = [case_named(n) for n in args.case] if args.case else list(CASES)
    rows = run(load_settings(), cases, sorted(args.sizes), args.repeat, args.limit)
    report(rows)


if __name__ == "__main__":
    main()
