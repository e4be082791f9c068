"""One typed settings object, read from TOML and overridden by ``LE_INTAKE_…`` variables.

The object is built once at start-up and handed to whatever needs it: there is no
module-level config, so tests build as many differently configured apps as they like.

Environment overrides use ``__`` between levels: ``LE_INTAKE_SMTP__PORT=2526`` sets
``[smtp] port``. Values are parsed as TOML scalars where they can be (numbers, booleans,
arrays), else taken as strings, so ``LE_INTAKE_SMTP__PORT=2526`` is an int.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.tokens import check_ack_tokens

ENV_PREFIX = "LE_INTAKE_"
DEFAULT_CONFIG = Path(__file__).with_name("default.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = "le-intake.local"
    request_addresses: tuple[str, ...] = ("lawenforcement@example-platform.com",)
    default_request_address: str = "lawenforcement@example-platform.com"
    max_message_bytes: int = 25 * 1024 * 1024
    command_timeout_seconds: float = 60.0
    max_sessions: int = 100
    # RFC 5321 allows 1000 octets a line; real senders exceed it, and some clients send
    # bare-LF bodies, which aiosmtpd (splitting on CRLF only) sees as one long line.
    # Refusing either loses a request with a permanent 500, so by default a "line" may be
    # as long as a whole message.
    max_line_bytes: int = 25 * 1024 * 1024
    # Hostile clients (RFC 5321 §4.5.3; ingest/smtp.py). Command lines are capped apart
    # from DATA lines (RFC: 512 octets; room here for long parameters).
    max_command_line_bytes: int = Field(default=4096, ge=512)
    # Sessions one untrusted address (IPv6: one /64) may hold; auth.trusted_peers are exempt.
    # 20: an agency's Postfix opens up to 20 at once (default_destination_concurrency_limit).
    max_sessions_per_peer: int = Field(default=20, ge=1)
    # Share of max_sessions (rounded down) that only auth.trusted_peers may use.
    trusted_reserved_share: float = Field(default=0.2, ge=0.0, le=1.0)
    # Per session, each of NOOP RSET HELP VRFY EXPN HELO EHLO STARTTLS AUTH (untrusted peers).
    command_call_limit: int = Field(default=20, ge=1)
    max_session_seconds: float = Field(default=1800.0, gt=0)
    # RFC 5321 §4.5.3.2: the longest pause between blocks of DATA, and all of DATA.
    data_block_timeout_seconds: float = Field(default=180.0, gt=0)
    final_dot_timeout_seconds: float = Field(default=600.0, gt=0)
    max_recipients: int = Field(default=100, ge=1)
    # Header blocks two parsers read two ways (bare CR, mixed CRLF/LF, non-field lines) are
    # always refused (550). True also refuses a header block that ends every line in bare
    # LF, as Postfix's smtpd_forbid_bare_newline; off by default: LF-only senders exist.
    strict_header_newlines: bool = False
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @field_validator("request_addresses")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(a.strip().lower() for a in value)


class RunnerSettings(_Section):
    max_attempts: int = 3
    # Analysis (parsing, NLP) runs in worker processes so the SMTP loop never stalls;
    # 0 runs it in a thread of the serving process instead.
    workers: int = 1
    scan_interval_seconds: float = 5.0
    # Empty spool files made at start for reuse; see ingest/spool.py.
    spool_preallocate: int = 256
    # A worker still analysing one message after this long is replaced and the message is
    # held for staff (verdict analysis_deadline); 0 = no deadline. Worker processes only.
    analysis_deadline_seconds: float = Field(default=180.0, ge=0)
    # Address-space cap of each analysis worker (RLIMIT_AS, MiB; 0 = none). A worker
    # that runs out raises MemoryError or dies instead of swapping the host to a stop.
    worker_memory_limit_mb: int = Field(default=2048, ge=0)
    # How long a new worker may take to load its stages before the start counts as failed.
    worker_start_timeout_seconds: float = Field(default=120.0, gt=0)
    # A message that was being analysed when its worker died this many times goes to bad/.
    max_worker_kills: int = Field(default=2, ge=1)
    # Failed attempts wait retry_base_seconds * 2^(n-1), at most retry_max_seconds.
    retry_base_seconds: float = Field(default=1.0, ge=0)
    retry_max_seconds: float = Field(default=300.0, ge=0)
    # A case store that is unavailable (locked, I/O, connection) is not the message's
    # fault: the record is retried in place, with this backoff, for as long as it takes.
    store_retry_base_seconds: float = Field(default=0.5, ge=0)
    store_retry_max_seconds: float = Field(default=30.0, ge=0)
    # /readyz answers 503 when an acknowledged message has waited longer than this (0: never).
    ready_max_waiting_seconds: float = Field(default=900.0, ge=0)


class OutboxSettings(_Section):
    """Outbound mail: written to the store's outbox first, then delivered by ``transport``:
    "folder" (one .eml per message, for the demo and replay) or "smtp" (the relay)."""

    transport: str = "folder"
    folder: str = "var/outbox"
    relay_host: str = "127.0.0.1"
    relay_port: int = 25
    relay_starttls: bool = False
    relay_username: str | None = None
    relay_password: str | None = None
    relay_timeout_seconds: float = 30.0
    # Temporary failures retry after these delays (the last one repeats) until max_attempts.
    retry_delays_seconds: tuple[float, ...] = (10.0, 60.0, 300.0, 900.0, 3600.0)
    max_attempts: int = 12
    poll_interval_seconds: float = 2.0

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        if value not in ("folder", "smtp"):
            raise ValueError("must be folder or smtp")
        return value


class RepliesSettings(_Section):
    """The automated response and the sender's confirming reply (replies/)."""

    enabled: bool = True
    from_name: str = "Law Enforcement Response Team"
    # Responses come from, and confirmations go to, the request address that received the
    # request; the token rides in its sub-address: lawenforcement+TOKEN@example-platform.com
    token_ttl_days: float = 14.0
    max_per_sender_per_day: int = 5
    expiry_sweep_interval_seconds: float = 300.0
    case_url_template: str = "http://127.0.0.1:8080/cases/{case_id}"


class RetentionSettings(_Section):
    """How long personal data is kept (``le-intake purge`` and the sweep in ``serve``)."""

    dropped_days: float = 30.0
    expired_days: float = 90.0
    closed_days: float = 365.0
    # Held cases nobody verified (after their last message), like expired ones.
    held_days: float = 180.0
    # Alert payloads (subject, accounts, fraud-signal texts) after the alert was raised.
    alerts_days: float = 90.0
    # Event details (verdict sentences, call-back notes); code, time and actor stay.
    events_days: float = 365.0
    # Messages left in spool/bad/ (after they failed for good).
    bad_days: float = 30.0
    sweep_interval_seconds: float = 3600.0


class LEPolicySettings(_Section):
    """Which sender domains count as law enforcement (first version; [gate] deepens it)."""

    # Public suffixes under which agencies register: subdomains only (``fbi.gov``, never
    # ``gov`` itself).
    allowed_suffixes: tuple[str, ...] = ()
    # Agencies' own domains, shipped and reviewed: the apex and its subdomains
    # (``garda.ie``, ``politie.nl``, ``polizei.nrw.de``).
    agency_domains: tuple[str, ...] = ()
    # Agencies on ordinary domains, added by operators after verification (apex and
    # subdomains); ``le-intake domains allow`` records more in the case store.
    allowed_domains: tuple[str, ...] = ()
    denied_domains: tuple[str, ...] = ()
    agency_words: tuple[str, ...] = ()
    # US state government: ``<agency>.state.<st>.us`` for every state, DC and territory.
    us_state_domains: bool = True
    # The US locality namespace (``co.<county>.<st>.us``, ``ci.<city>.<st>.us``, …):
    # county and city government, whose registration is checked by nobody we know of:
    # "hold" keeps its mail for staff to verify, "allow" treats it as law enforcement.
    us_locality: str = "hold"

    @field_validator(
        "allowed_suffixes", "agency_domains", "allowed_domains", "denied_domains", "agency_words"
    )
    @classmethod
    def _normalise(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().strip(".").lower() for v in value if v.strip())

    @field_validator("us_locality")
    @classmethod
    def _locality(cls, value: str) -> str:
        if value not in ("hold", "allow"):
            raise ValueError("must be hold or allow")
        return value


class AuthSettings(_Section):
    """Sender authentication; see classifiers/auth.py and docs/gate.md."""

    # Authentication-Results are believed only with one of these authserv-ids, only on
    # mail that came from one of these peers (the boundary MTA), never from outside.
    trusted_authserv_ids: tuple[str, ...] = ("le-intake.local",)
    trusted_peers: tuple[str, ...] = ()
    # Host names our boundary MTA writes in the "by" clause of its Received header: only
    # Authentication-Results above the topmost such header are its own (RFC 8601 §5).
    boundary_hosts: tuple[str, ...] = ()
    verify: bool = True
    dns: str = "system"  # "system" (dnspython) or "static" (the table below)
    dns_timeout_seconds: float = 3.0
    static_dns: dict[str, dict[str, list[str] | str]] = Field(default_factory=dict)
    # What each outcome does: "continue", "hold" (staff verify by hand) or "drop".
    on_fail: str = "drop"
    on_temperror: str = "hold"
    on_none: str = "hold"

    @field_validator("on_fail", "on_temperror", "on_none")
    @classmethod
    def _action(cls, value: str) -> str:
        if value not in ("continue", "hold", "drop"):
            raise ValueError("must be continue, hold or drop")
        return value

    @field_validator("dns")
    @classmethod
    def _dns(cls, value: str) -> str:
        if value not in ("system", "static"):
            raise ValueError("must be system or static")
        return value


class SinkSettings(_Section):
    """One place alerts go: ``webhook`` (generic JSON), ``slack`` (incoming webhook),
    ``pagerduty`` (Events API v2) or ``email`` (to ``to``, through the outbox relay)."""

    type: str
    url: str | None = None
    routing_key: str | None = None
    to: str | None = None
    timeout_seconds: float = 5.0

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in ("webhook", "slack", "pagerduty", "email"):
            raise ValueError("must be webhook, slack, pagerduty or email")
        return value


class TierSettings(_Section):
    name: str
    # Tried in order: a sink that fails falls back to the next one in the list.
    sinks: tuple[str, ...]


class AlertSettings(_Section):
    """Paging on-call staff for emergencies (alerts/)."""

    enabled: bool = True
    # No acknowledgement within this time: the next tier is paged.
    escalation_minutes: float = 5.0
    # Severity per kind of alert: "critical", "error", "warning" or "info" (PagerDuty's).
    severity_authenticated: str = "critical"
    severity_unverified: str = "warning"
    severity_suspected: str = "warning"
    retry_delays_seconds: tuple[float, ...] = (2.0, 10.0, 30.0, 60.0)
    poll_interval_seconds: float = 1.0
    tiers: tuple[TierSettings, ...] = ()
    sinks: dict[str, SinkSettings] = Field(default_factory=dict)
    # Staff who may acknowledge: name = sha256 hex of their bearer token.
    ack_tokens: dict[str, str] = Field(default_factory=dict)
    case_url_template: str = "http://127.0.0.1:8080/cases/{case_id}"
    # Unverified pages (held emergencies, unauthenticated body-level signals): at most
    # this many per sender address, registrable domain and peer in the window; repeats
    # are recorded on their cases and paged as one digest when the window ends.
    # Authenticated emergencies are never limited.
    unverified_window_minutes: float = Field(default=15.0, gt=0)
    unverified_max_per_sender: int = Field(default=1, ge=0)
    unverified_max_per_domain: int = Field(default=3, ge=0)
    unverified_max_per_peer: int = Field(default=3, ge=0)
    # and at most this many unverified pages in all per window (0: no overall limit)
    unverified_max_total: int = Field(default=10, ge=0)

    @field_validator("ack_tokens")
    @classmethod
    def _ack_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        return check_ack_tokens(value)


class DirectoryEntry(_Section):
    """A trusted way to reach an agency, kept by operators, never taken from a request."""

    agency: str
    phone: str
    domains: tuple[str, ...] = ()
    fax: tuple[str, ...] = ()


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8080


class FaxSettings(_Section):
    """Faxes: the provider webhook (``POST /fax/inbound``) and fax-gateway email."""

    enabled: bool = True
    # HMAC-SHA256 secret shared with the provider; without one the webhook answers 503.
    webhook_secret: str | None = None
    signature_header: str = "X-Fax-Signature"
    timestamp_tolerance_seconds: float = 300.0
    max_bytes: int = 20 * 1024 * 1024
    # The whole body must arrive within this time (a trickling sender gets 408).
    read_timeout_seconds: float = Field(default=120.0, gt=0)
    max_pages: int = 30
    # Email from these addresses is a fax delivered by an e-fax service: its PDF/TIFF
    # attachment is the request and is OCR'd before being removed like any attachment.
    gateway_senders: tuple[str, ...] = ()
    ocr_dpi: int = 200
    ocr_language: str = "eng"
    # Decompression-bomb caps, checked before the expensive step (ingest/ocr.py): a page
    # side longer than max_page_points is refused unrendered; a render over max_page_pixels
    # is scaled down (an image frame or embedded image over it is refused undecoded); OCR
    # of one fax stops after max_ocr_seconds. Each cap hit holds the case with its reason.
    max_page_points: float = Field(default=1728.0, gt=0)
    max_page_pixels: int = Field(default=50_000_000, gt=0)
    max_ocr_seconds: float = Field(default=120.0, gt=0)

    @field_validator("gateway_senders")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)


class ExtractionSettings(_Section):
    default_region: str = "US"
    # An installed spaCy pipeline with an NER component (a package name such as
    # "en_core_web_sm", or a path); its PERSON and ORG entities find the agent and agency
    # when the signature rules do not. None: rules only. Never downloaded at run time.
    ner_model: str | None = None


class Settings(_Section):
    data_dir: str = "var"
    database_url: str = "sqlite+aiosqlite:///var/le-intake.db"
    spool_dir: str = "var/spool"
    log_level: str = "INFO"
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    le_policy: LEPolicySettings = Field(default_factory=LEPolicySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    replies: RepliesSettings = Field(default_factory=RepliesSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    fax: FaxSettings = Field(default_factory=FaxSettings)
    directory: tuple[DirectoryEntry, ...] = ()
    # Demo convenience (LE_INTAKE_ALERT_WEBHOOK_URL): adds a JSON webhook sink to the first tier.
    alert_webhook_url: str | None = None
    # Compromised accounts: their mail is held, and alerts say so (also `le-intake senders block`).
    blocked_senders: tuple[str, ...] = ()
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    extraction: ExtractionSettings = Field(default_factory=ExtractionSettings)


def _parse_scalar(raw: str) -> Any:
    """Arrays and tables are read as TOML; scalars stay strings for pydantic to coerce, so
    a text setting whose value looks like a number or a boolean keeps its text."""
    if raw.lstrip()[:1] in ("[", "{"):
        try:
            return tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            return raw
    return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``LE_INTAKE_A__B=1`` variables into ``{"a": {"b": 1}}``."""
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{key} conflicts with another LE_INTAKE_ variable")
            node = child
        node[path[-1]] = _parse_scalar(raw)
    return tree


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def with_domain_decisions(settings: Settings, decisions: Mapping[str, str]) -> Settings:
    """The settings with operators' recorded domain decisions added to the policy (a deny
    still wins over every allow)."""
    if not decisions:
        return settings
    policy = settings.le_policy
    allowed = tuple(d for d, v in sorted(decisions.items()) if v == "allow")
    denied = tuple(d for d, v in sorted(decisions.items()) if v == "deny")
    merged = policy.model_copy(
        update={
            "allowed_domains": tuple(dict.fromkeys((*policy.allowed_domains, *allowed))),
            "denied_domains": tuple(dict.fromkeys((*policy.denied_domains, *denied))),
        }
    )
    return settings.model_copy(update={"le_policy": merged})


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (default ``config/default.toml``) and apply env overrides."""
    env = os.environ if environ is None else environ
    chosen = Path(path or env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG)
    with chosen.open("rb") as fh:
        data = tomllib.load(fh)
    return Settings.model_validate(merge(data, env_overrides(env)))
