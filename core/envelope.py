"""What the transport told us about a message, kept apart from its (untrusted) content."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: datetime
    peer: str | None = None
    helo: str | None = None
    channel: str = "email"
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["rcpt_tos"] = list(self.rcpt_tos)
        data["received_at"] = self.received_at.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        data = json.loads(text)
        return cls(
            mail_from=str(data["mail_from"]),
            rcpt_tos=tuple(str(r) for r in data["rcpt_tos"]),
            received_at=datetime.fromisoformat(data["received_at"]),
            peer=data.get("peer"),
            helo=data.get("helo"),
            channel=str(data.get("channel", "email")),
            extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
        )
