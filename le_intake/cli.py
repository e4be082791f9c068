"""The ``le-intake`` command: serve, replay, db upgrade, cases list/show."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cases.db import make_engine, upgrade
from cases.repository import CaseStore
from config.settings import Settings, load_settings, merge, with_domain_decisions
from core.clock import SystemClock
from le_intake import __version__, logs
from le_intake.private import make_private, restrict_umask

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="LE_INTAKE_CONFIG",
    help="TOML settings file (default: config/default.toml). LE_INTAKE_* variables override it.",
)
@click.version_option(__version__, prog_name="le-intake")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """le-intake: the intake desk for law-enforcement data requests.

    Mail to the request addresses is spooled, checked (law-enforcement sender, attachments
    removed, emergency flag, account identifiers) and recorded as cases.
    """
    # Before anything is created: data at rest is the service user's alone (files 0600,
    # directories 0700), for every command and the worker processes serve starts.
    restrict_umask()
    try:
        settings = load_settings(config_path)
    except ValidationError as exc:
        # refused at start with what is wrong and where (e.g. a well-known ack token)
        raise click.ClickException(f"invalid configuration: {exc}") from None
    logs.configure(settings.log_level)
    make_private(settings, create=False)
    ctx.obj = settings


@main.command()
@click.pass_obj
def serve(settings: Settings) -> None:
    """Listen for SMTP and process spooled mail (applies migrations first)."""
    from le_intake.app import serve as serve_app

    _run(serve_app(settings))


@main.group()
def db() -> None:
    """Case store schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(settings: Settings) -> None:
    """Apply the Alembic migrations to the configured database."""

    async def go() -> None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    _run(go())
    click.echo("database is at the latest schema")


@main.group()
def cases() -> None:
    """Look at recorded cases."""


async def _with_store(settings: Settings, work: Any) -> Any:
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await work(CaseStore(engine, SystemClock()))
    finally:
        await engine.dispose()


@cases.command("list")
@click.option("--status", help="Only cases in this status (e.g. awaiting_confirmation, open).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def cases_list(settings: Settings, status: str | None, limit: int, as_json: bool) -> None:
    """Newest cases first."""
    rows = _run(_with_store(settings, lambda s: s.list_cases(status, limit)))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    table = Table("case", "status", "emergency", "sender", "subject", "created")
    for row in rows:
        table.add_row(
            row["id"],
            row["status"],
            "yes" if row["emergency"] else "",
            row["sender"],
            row["subject"][:60],
            row["created_at"][:19],
        )
    Console().print(table)


@cases.command("show")
@click.argument("case_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def cases_show(settings: Settings, case_id: str, as_json: bool) -> None:
    """One case with its messages, identifiers and events."""
    data = _run(_with_store(settings, lambda s: s.get_case(case_id)))
    if data is None:
        raise click.ClickException(f"no case {case_id}")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    console = Console()
    console.print(
        f"[bold]{data['id']}[/bold]  {data['status']}{'  EMERGENCY' if data['emergency'] else ''}"
    )
    console.print(f"from {data['sender']}  subject {data['subject']!r}")
    auth = {"pass": "authenticated"}.get(data["sender_auth"] or "", "UNVERIFIED")
    console.print(
        f"agency {data['agency'] or '(unknown)'}  sender {auth}  channel {data['channel']}"
    )
    messages = Table("received", "from", "authentication", "outcome", "subject")
    for m in data["messages"]:
        messages.add_row(
            m["received_at"][:19],
            m["from"],
            {"pass": "authenticated"}.get(m["sender_auth"] or "", "UNVERIFIED"),
            m["outcome"],
            m["subject"][:60],
        )
    console.print(messages)
    ids = Table("kind", "value", "role", "found by")
    for i in data["identifiers"]:
        ids.add_row(i["kind"], i["value"], i["role"], f"{i['recognizer']}/{i['pattern']}")
    console.print(ids)
    if data["facts"]:
        facts = Table("fact", "value", "as written")
        for f in data["facts"]:
            facts.add_row(f["kind"], f["value"], f["raw"][:60])
        console.print(facts)
    events = Table("at", "kind", "code", "detail")
    for e in data["events"]:
        events.add_row(e["at"][:19], e["kind"], e["code"], e["detail"])
    console.print(events)


@main.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be purged.")
@click.pass_obj
def purge(settings: Settings, dry_run: bool) -> None:
    """Delete personal data past its retention period (bodies, subjects, identifiers of
    dropped, expired, closed and held cases; alert payloads; event details; spool/bad/),
    keeping metadata, hashes and an audit event."""
    from cases.retention import PurgeReport
    from cases.retention import purge as run_purge

    async def go(store: CaseStore) -> PurgeReport:
        async with store.sessions() as session:
            await session.begin()
            report = await run_purge(
                session,
                settings.retention,
                store.clock,
                bad_dir=Path(settings.spool_dir) / "bad",
                dry_run=dry_run,
            )
            if dry_run:
                await session.rollback()
            else:
                await session.commit()
            return report

    report = _run(_with_store(settings, go))
    verb = "would purge" if dry_run else "purged"
    click.echo(
        f"{verb} {report.cases} case(s) and {report.dropped_messages} dropped message(s), "
        f"{report.alerts} alert payload(s), {report.events} event detail(s), "
        f"{report.bad_files} message(s) in spool/bad/"
    )


@main.group()
def senders() -> None:
    """Compromised law-enforcement accounts: their mail is held and flagged on alerts."""


@senders.command("block")
@click.argument("address")
@click.option("--reason", default="reported compromised", show_default=True)
@click.option("--by", "by", default="operator", show_default=True, help="Who blocks it.")
@click.pass_obj
def senders_block(settings: Settings, address: str, reason: str, by: str) -> None:
    """Add ADDRESS to the blocklist (recorded with who and why)."""
    from cases.models import BlockedSender, Event

    async def go(store: CaseStore) -> None:
        async with store.sessions() as session, session.begin():
            now = store.clock.now()
            await session.merge(
                BlockedSender(
                    address=address.strip().lower(), added_at=now, added_by=by, reason=reason
                )
            )
            session.add(
                Event(
                    at=now,
                    kind="blocklist",
                    code="sender_blocked",
                    actor=by,
                    detail=f"{address.strip().lower()} blocked: {reason}",
                )
            )

    _run(_with_store(settings, go))
    click.echo(f"blocked {address.strip().lower()}")


@senders.command("list")
@click.pass_obj
def senders_list(settings: Settings) -> None:
    """Blocked senders, from the database and from the config."""
    from sqlalchemy import select

    from cases.models import BlockedSender

    async def go(store: CaseStore) -> list[BlockedSender]:
        async with store.sessions() as session:
            return list((await session.execute(select(BlockedSender))).scalars())

    for row in _run(_with_store(settings, go)):
        click.echo(f"{row.address}\t{row.added_at:%Y-%m-%d}\t{row.added_by}\t{row.reason}")
    for address in settings.blocked_senders:
        click.echo(f"{address}\t(config)")


@main.group()
def domains() -> None:
    """The law-enforcement domain policy."""


@domains.command("check")
@click.argument("address")
@click.option("--display-name", default="", help="The From display name to judge with it.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def domains_check(settings: Settings, address: str, display_name: str, as_json: bool) -> None:
    """Explain the gate's decision for one sender ADDRESS (no authentication: that needs
    the message). Exit code 0 when the domain is law enforcement, 1 when it is not."""
    from classifiers.gate import GateStage

    settings = with_domain_decisions(settings, _recorded_decisions(settings))
    explanation = GateStage.from_settings(settings).explain(address.strip(), display_name)
    decision = explanation.decision
    allowed = decision.allowed and not any(v.decision.value == "drop" for v in explanation.verdicts)
    data = {
        "address": address,
        "domain": decision.domain,
        "registrable_domain": decision.registrable,
        "law_enforcement": allowed,
        "agency": explanation.agency,
        "agency_type": explanation.agency_type,
        "near_miss_of": explanation.near_miss,
        "verdicts": [
            {"code": v.code, "decision": v.decision.value, "why": v.message}
            for v in explanation.verdicts
        ],
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"{address}: {'law enforcement' if allowed else 'NOT law enforcement'}")
        click.echo(f"  registrable domain: {decision.registrable}")
        if explanation.agency:
            click.echo(f"  agency: {explanation.agency} ({explanation.agency_type})")
        for v in explanation.verdicts:
            click.echo(f"  {v.decision.value:5} {v.code}: {v.message}")
        click.echo("  (sender authentication is checked per message: DKIM/SPF alignment)")
    sys.exit(0 if allowed else 1)


def _recorded_decisions(settings: Settings) -> dict[str, str]:
    """Operators' domain decisions from the configured store; none when its SQLite file
    does not exist yet (nothing is created just to look)."""
    from sqlalchemy.engine import make_url

    from cases.repository import domain_decisions

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
        return {}
    decisions: dict[str, str] = _run(_with_store(settings, lambda s: domain_decisions(s.engine)))
    return decisions


def _decide_domain(settings: Settings, domain: str, decision: str, reason: str, by: str) -> None:
    from classifiers.domains import ldh_domain

    domain = domain.strip().strip(".").lower()
    if "." not in domain or "@" in domain or not ldh_domain(domain):
        raise click.ClickException(f"{domain!r} is not a domain name")
    if not reason.strip() or not by.strip():
        raise click.ClickException("--reason and --by are required: the decision is audited")
    _run(_with_store(settings, lambda s: s.decide_domain(domain, decision, reason, by)))
    verb = "allowed as an agency domain" if decision == "allow" else "denied"
    click.echo(
        f"{domain} {verb} (by {by}: {reason}); recorded with an audit event. "
        "Replay and `domains check` use it now; a running `le-intake serve` from its next start."
    )


@domains.command("allow")
@click.argument("domain")
@click.option("--reason", required=True, help="How the agency was verified.")
@click.option("--by", "by", required=True, help="Who verified it.")
@click.pass_obj
def domains_allow(settings: Settings, domain: str, reason: str, by: str) -> None:
    """Record that DOMAIN (and its subdomains) is a verified agency's: for agencies on
    ordinary domains, without editing the TOML policy."""
    _decide_domain(settings, domain, "allow", reason, by)


@domains.command("deny")
@click.argument("domain")
@click.option("--reason", required=True, help="Why (compromised, retired, fraudulent).")
@click.option("--by", "by", required=True, help="Who decided it.")
@click.pass_obj
def domains_deny(settings: Settings, domain: str, reason: str, by: str) -> None:
    """Record that mail from DOMAIN (and its subdomains) is dropped, whatever else says."""
    _decide_domain(settings, domain, "deny", reason, by)


@domains.command("lookalikes")
@click.option("--days", default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def domains_lookalikes(settings: Settings, days: int, as_json: bool) -> None:
    """Lookalike and spoofed senders seen recently: an attack on the desk is worth seeing."""
    rows = _run(_with_store(settings, lambda s: s.lookalike_summary(days)))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    table = Table("from domain", "messages", "emergency subjects", "first seen", "last seen")
    for row in rows:
        table.add_row(
            row["from_domain"],
            str(row["messages"]),
            str(row["emergency"]),
            row["first_seen"][:19],
            row["last_seen"][:19],
        )
    Console().print(table)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--smtp",
    "smtp_target",
    metavar="HOST:PORT",
    help="Send through a running listener with a real SMTP client instead.",
)
@click.option(
    "--report-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report as JSON Lines, one object per message.",
)
@click.option(
    "--into-store",
    is_flag=True,
    help="Record into the configured case store (default: a scratch database).",
)
@click.pass_obj
def replay(
    settings: Settings,
    paths: tuple[Path, ...],
    smtp_target: str | None,
    report_json: Path | None,
    into_store: bool,
) -> None:
    """Replay .eml folders, mbox files or Maildirs through the pipeline and report.

    Exit code 0 when every message ended in a known outcome, 1 when any failed.
    Outbound mail never leaves the machine: it goes to the outbox folder.
    """
    from ingest.replay_run import run_replay

    # The configured store's domain decisions hold for a scratch replay too.
    settings = with_domain_decisions(settings, _recorded_decisions(settings))
    with tempfile.TemporaryDirectory(prefix="le-intake-replay-") as scratch:
        overrides: dict[str, Any] = {
            "outbox": {"transport": "folder", "folder": settings.outbox.folder}
        }
        if not (into_store or smtp_target):
            overrides["database_url"] = f"sqlite+aiosqlite:///{scratch}/replay.db"
        run_settings = Settings.model_validate(merge(settings.model_dump(), overrides))
        console = Console(stderr=True)
        with Progress(console=console, disable=not sys.stderr.isatty(), transient=True) as bar:
            task = bar.add_task("replaying", total=None)
            reports = _run(
                run_replay(run_settings, list(paths), smtp_target, lambda: bar.advance(task))
            )
    if report_json:
        with report_json.open("w", encoding="utf-8") as fh:
            for row in reports:
                fh.write(json.dumps(row) + "\n")
    _print_summary(reports)
    if any(r["outcome"] == "failed" for r in reports):
        sys.exit(1)


def _print_summary(reports: list[dict[str, Any]]) -> None:
    console = Console()
    table = Table("source", "outcome", "reasons", "emergency", "attachments", "subject ids")
    for r in reports:
        subjects = [i for i in r["identifiers"] if i["role"] == "subject"]
        table.add_row(
            Path(r["source"]).name if ":" not in Path(r["source"]).name else r["source"],
            r["outcome"],
            ",".join(r["reasons"]),
            "yes" if r["emergency"] else "",
            str(r["attachments_removed"]),
            str(len(subjects)),
        )
    console.print(table)
    counts = Counter(r["outcome"] for r in reports)
    console.print(
        f"{len(reports)} messages: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )
