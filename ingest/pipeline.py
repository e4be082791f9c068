"""The stage contract and the ordered table of stages every message goes through.

A stage is a small object with a ``name`` and a ``__call__(ctx) -> list[Verdict]``. It
may add facts to the context (the fields it owns are named in its docstring) and returns
the verdicts it reached. The order is the table in ``build_stages``: data, not nested calls.

After a stage drops the message, only stages marked ``runs_after_drop`` still run: the cheap
ones whose findings the record of a dropped message needs (attachment metadata, the
emergency flag). Nothing is extracted from mail we disregard.

A stage must not raise for bad input: it records a verdict instead. If one raises anyway
the runner counts a failed attempt, and the message lands in the spool's ``bad/`` folder
after ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Protocol

from config.settings import Settings
from core.context import MessageContext
from core.envelope import Envelope
from core.verdicts import Decision, Verdict


class Stage(Protocol):
    name: str
    runs_after_drop: bool

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]: ...


StageFactory = Callable[[Settings], Stage]


def stage_table() -> tuple[StageFactory, ...]:
    """The road's order. A new stage goes here, between the stages whose facts it needs
    and the ones that need its facts."""
    from classifiers.emergency import CompletenessStage, EmergencyStage
    from classifiers.facts_stage import FactStage
    from classifiers.gate import GateStage
    from classifiers.identifiers import IdentifierStage
    from ingest.attachments import AttachmentStage
    from ingest.fax_stage import FaxStage
    from ingest.parse import ParseStage

    return (
        ParseStage.from_settings,
        FaxStage.from_settings,
        AttachmentStage.from_settings,
        GateStage.from_settings,
        EmergencyStage.from_settings,
        IdentifierStage.from_settings,
        FactStage.from_settings,
        CompletenessStage.from_settings,
    )


def build_stages(settings: Settings) -> list[Stage]:
    return [factory(settings) for factory in stage_table()]


def run_stages(ctx: MessageContext, stages: Sequence[Stage]) -> MessageContext:
    for stage in stages:
        if ctx.decision is Decision.DROP and not stage.runs_after_drop:
            continue
        ctx.verdicts.extend(stage(ctx))
    return ctx


def analyse(raw: bytes, envelope: Envelope, stages: Sequence[Stage]) -> MessageContext:
    """Run every stage over one message; the result carries no parsed tree, no raw bytes
    and no working state, so it is small to send back from a worker process. What the
    stages shared (the body's tokens) is released here, when the last stage is done."""
    ctx = MessageContext(raw=raw, envelope=envelope)
    with ExitStack() as resources:
        ctx.resources = resources
        try:
            run_stages(ctx, stages)
        finally:
            ctx.scratch.clear()
            ctx.resources = None
    ctx.message = None
    ctx.raw = b""
    return ctx
