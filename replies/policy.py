"""Who may get an automated response: never a machine, never an unauthenticated sender.

RFC 3834 §2 and long mail-system practice: no answer to messages that are themselves
automatic (Auto-Submitted other than "no", Precedence bulk/junk/list, List-Id, a null
return path, mailer-daemon/postmaster senders), so two responders can never loop and a
forged sender can never turn us into a backscatter source.
"""

from __future__ import annotations

from ingest.context import MessageContext

_ROBOT_LOCALS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "bounce",
        "bounces",
        "auto-reply",
        "autoreply",
    }
)


def automatic_reason(ctx: MessageContext) -> str | None:
    """Why this message is automatic, or None for a message a person sent."""
    headers = ctx.headers
    auto = (headers.auto_submitted or "").strip().lower()
    if auto and not auto.startswith("no"):
        return "auto_submitted"
    if (headers.precedence or "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return "precedence_bulk"
    if headers.list_id:
        return "mailing_list"
    if ctx.envelope.channel == "email" and ctx.envelope.mail_from.strip() in ("", "<>"):
        return "null_return_path"
    local = (ctx.sender.address if ctx.sender else "").rpartition("@")[0]
    if local.split("+", 1)[0] in _ROBOT_LOCALS:
        return "robot_sender"
    return None
