"""Who may get an automated response: never a machine, never an unauthenticated sender.

RFC 3834 §2 and long mail-system practice: no answer to messages that are themselves
automatic (Auto-Submitted other than "no", Precedence bulk/junk/list/auto_reply, List-Id,
a null return path, mailer-daemon/postmaster senders), so two responders can never loop
and a forged sender can never turn us into a backscatter source. Many responders write
none of those: Exchange and vacation programs mark themselves with vendor headers, and
plenty mark nothing but their subject ("Automatic reply: …", "Abwesenheitsnotiz: …"), so
both count as automatic too. An automatic message never confirms a request.
"""

from __future__ import annotations

import re

from core.context import MessageContext

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


# Subjects auto-responders write, as a prefix (after Re:/AW:/[tags]) ending at a colon, a
# bracket or the end: English and the usual translations of Outlook, Gmail, Notes, Zimbra.
_AUTO_SUBJECTS = (
    r"auto(?:matic|mated)?[ -]?(?:reply|response|respond|antwort)|auto",
    r"out of (?:the )?office(?: auto-?reply)?|ooo|away from (?:the )?office|on vacation",
    r"vacation (?:reply|notice|message)|absence notice",
    r"abwesenheitsnotiz|automatische antwort|abwesend|au(?:ß|ss)er haus",
    r"r[ée]ponse automatique|absence du bureau|absent(?:e)? du bureau",
    r"respuesta autom[áa]tica|fuera de la oficina|ausente",
    r"resposta autom[áa]tica|aus[êe]ncia|fora do escrit[óo]rio",
    r"risposta automatica|fuori sede|fuori ufficio",
    r"automatisch antwoord|afwezig(?:heid)?|niet aanwezig",
    r"automatiskt svar|automatisk svar|automatisk besked|fr[åa]nvaro|frav[æa]r",
    r"automaattinen vastaus|poissa(?:olo)?",
    r"odpowied[źz] automatyczna|automatick[áa] odpov[ěe]ď|nieobecno[śs][ćc]",
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|wg|fw|fwd|tr|rif|r)\s*:\s*|\[[^\]]{0,40}\]\s*)*"
    r"[\[(]?\s*(?:" + "|".join(_AUTO_SUBJECTS) + r")\s*(?::|\]|\)|$)",
    re.IGNORECASE,
)


def automatic_subject(subject: str) -> bool:
    return _AUTO_SUBJECT.match(subject[:300]) is not None


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
    if headers.auto_reply_headers:
        return "auto_reply_header"
    if automatic_subject(headers.subject):
        return "auto_reply_subject"
    if ctx.envelope.channel == "email" and ctx.envelope.mail_from.strip() in ("", "<>"):
        return "null_return_path"
    local = (ctx.sender.address if ctx.sender else "").rpartition("@")[0]
    if local.split("+", 1)[0] in _ROBOT_LOCALS:
        return "robot_sender"
    return None
