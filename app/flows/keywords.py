"""Consent keywords (STOP / START / HELP in every supported language): the pure part, no I/O.

Only a message that is one keyword as a whole counts ("stop", "STOP!", " Parar "); "please don't stop" is
a reply, not an opt-out. YES / SÍ opt back in only while the patient is opted out, because otherwise they
are answers. Which keywords give way to an answer, and why, is documented in ``app/messaging/consent.py``; the
decision itself is in ``app/flows/routing.py``. This module has no SQL so the engine's callers (transcripts,
``outreach simulate``) classify exactly as the inbound webhook does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from app.flows.text import squash
from app.i18n import gettext_for


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


@dataclass(frozen=True)
class KeywordHit:
    keyword: Keyword
    #: The language the keyword itself is in, when it says ("PARAR" is Spanish), else None.
    language: str | None
    #: The whole message, squashed ("alto"): what a flow question may understand as an answer instead.
    word: str = field(default="", compare=False)

    @property
    def enforced_by_twilio(self) -> bool:
        """Twilio (and the carriers) act on this word themselves whatever we do: it is never an answer."""
        return self.word in TWILIO_ENFORCED


OPT_OUT = {
    "stop": None,
    "stopall": None,
    "unsubscribe": None,
    "cancel": None,
    "end": None,
    "quit": None,
    "revoke": None,
    "optout": None,
    "parar": "es",
    "alto": "es",
    "cancelar": "es",
    "baja": "es",
}
OPT_IN = {"start": None, "unstop": None}
OPT_IN_WHILE_OPTED_OUT = {"yes": "en", "si": "es"}
HELP = {"help": None, "info": None, "ayuda": "es"}

#: Twilio's default opt-out and opt-in keywords: Twilio blocks (or unblocks) the number at its end when it
#: sees them, so we must act on them too, even in the middle of a question. Every other keyword above is
#: ours (or, for HELP / INFO, only auto-answered by Twilio) and gives way to an answer (app/messaging/consent.py).
TWILIO_ENFORCED = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "start", "unstop"}
)


def classify(text: str, *, opted_out: bool) -> KeywordHit | None:
    word = squash(text)
    if word in OPT_OUT:
        return KeywordHit(Keyword.STOP, OPT_OUT[word], word)
    if word in OPT_IN:
        return KeywordHit(Keyword.START, OPT_IN[word], word)
    if opted_out and word in OPT_IN_WHILE_OPTED_OUT:
        return KeywordHit(Keyword.START, OPT_IN_WHILE_OPTED_OUT[word], word)
    if word in HELP:
        return KeywordHit(Keyword.HELP, HELP[word], word)
    return None


def reply_text(keyword: Keyword, language: str, program_name: str, program_phone: str) -> str:
    _ = gettext_for(language)
    values = {"program": program_name, "phone": program_phone}
    if keyword is Keyword.STOP:
        return _("%(program)s: You will not get more messages from us. Reply START to get them again.") % values
    if keyword is Keyword.START:
        return _("%(program)s: You will get messages from us again. Reply STOP to stop them.") % values
    return (
        _("%(program)s: For help call %(phone)s. Reply STOP to stop messages. If this is an emergency, call 911.")
        % values
    )


def opt_out_sentence_text(language: str) -> str:
    """The one line an opt-out written as a sentence gets ("please stop texting me"): how to really stop."""
    _ = gettext_for(language)
    return _("Reply STOP to stop all texts.")
