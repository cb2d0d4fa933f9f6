"""A shared phone (two patients, one number): which person is answering? (issue 12 item 6). Pure: no I/O.

When two patients of one number are both in a check-in, a text from that number could answer either; it is
held and the sender is asked "Who is answering? Reply 1 for Ana or 2 for Luis." (en, es; in both when the
two patients' languages differ). The reply is read here: a number (1, 2…) or a first name, as the whole
message ("2", "Luis", "luis.", "Soy Luis" is not enough: a sentence is not a choice).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.flows.text import fold, squash
from app.i18n import gettext_for


def parse_choice(text: str, names: Sequence[str]) -> int | None:
    """The index (0-based) of the person chosen among ``names`` (in the order the question listed them), by
    number or by first name; None when the text is neither or the name is not unique."""
    word = squash(text)
    if word.isdigit():
        index = int(word) - 1
        return index if 0 <= index < len(names) else None
    folded = [squash(fold(name)) for name in names]
    if word and folded.count(word) == 1:
        return folded.index(word)
    return None


def which_person_text(program: str, names: Sequence[str], languages: Sequence[str]) -> str:
    """The question, numbered in the order of ``names``, in each of ``languages`` (one paragraph each)."""
    lines = []
    for language in dict.fromkeys(languages):
        _ = gettext_for(language)
        options = ", ".join(_("%(n)d for %(name)s") % {"n": i + 1, "name": name} for i, name in enumerate(names))
        lines.append(
            _("%(program)s: This phone is shared. Who is answering? Reply %(options)s.")
            % {"program": program, "options": options}
        )
    return "\n\n".join(lines)
