"""Education lessons by text (issue 12 item 5): a topic split into parts, one part per text, and "reply MORE"
for the next one. Pure: no SQL, no Flask, no Twilio.

A topic's body (``content/education/<topic>/<lang>.md``) is cut at its blank lines into blocks; blocks are
packed into parts of at most :data:`PART_CHARS` characters (a block longer than that is a part of its own,
never cut mid-sentence). Every part but the last ends with "Reply MORE for the next part (n of N)." in the
patient's language; the first part starts with the topic's title.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.flows.text import squash
from app.i18n import gettext_for

#: The whole message, squashed (accents and punctuation removed), that asks for the next part, by language.
MORE_WORDS = {"more": "en", "mas": "es"}
#: About two GSM-7 segments of body: short enough to read on a phone, long enough to keep a block whole.
PART_CHARS = 300
_BLANK_LINE = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Trigger:
    """A lesson sent after a check-in in which one of the flow's rules fired with ``reason``
    (``content/education/triggers.yaml``)."""

    id: str
    flow: str
    reasons: tuple[str, ...]
    topic: str
    line: int = 1


def is_more(text: str) -> bool:
    """Whether the whole message asks for the next part: MORE, more!, MÁS, mas (any case, spaces, marks)."""
    return squash(text) in MORE_WORDS


def split_parts(body: str, limit: int = PART_CHARS) -> list[str]:
    """The body cut into parts of at most ``limit`` characters at blank lines (a longer block stays whole).

    Returns at least one part for a non-empty body; ``[]`` for an empty one."""
    blocks = [b.strip() for b in _BLANK_LINE.split(body.strip()) if b.strip()]
    parts: list[str] = []
    for block in blocks:
        if parts and len(parts[-1]) + 2 + len(block) <= limit:
            parts[-1] = f"{parts[-1]}\n\n{block}"
        else:
            parts.append(block)
    return parts


def part_text(title: str, parts: Sequence[str], index: int, language: str) -> str:
    """The text of part ``index`` (0-based) of ``parts``: the title first on part 0, the MORE line on every
    part but the last. Raises IndexError for an index out of range."""
    _ = gettext_for(language)
    body = parts[index]
    if index == 0:
        body = f"{title}\n\n{body}"
    if index + 1 < len(parts):
        more = _("Reply MORE for the next part (%(part)d of %(parts)d).") % {"part": index + 1, "parts": len(parts)}
        body = f"{body}\n\n{more}"
    return body


def triggered_topics(triggers: Sequence[Trigger], flow_id: str, reasons: Sequence[str]) -> list[str]:
    """Topics whose trigger matches a check-in of ``flow_id`` in which rules fired with ``reasons``; in the
    order the triggers are declared, each topic once."""
    fired = set(reasons)
    topics: list[str] = []
    for trigger in triggers:
        if trigger.flow == flow_id and fired & set(trigger.reasons) and trigger.topic not in topics:
            topics.append(trigger.topic)
    return topics
