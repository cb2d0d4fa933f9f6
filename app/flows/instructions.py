"""Answer instructions per question type, channel and language: one flow serves SMS and voice.

Flow texts ask the question only ("Are you more short of breath than usual?"). How to answer is added
here, from the Babel catalogs, for the channel the conversation runs on:

============  ==========================================  =======================================================
question      SMS                                         voice
============  ==========================================  =======================================================
yes_no        Reply YES or NO.                            Press 1 for yes or 2 for no. You can also say yes or no.
number        Reply with your weight, like 182.           Enter your weight, then press the pound key.
choice        Reply 1 Better, 2 Same, 3 Worse.            Press 1 for Better, press 2 for Same, press 3 for Worse.
scale         a menu line per point ("0 Not at all")      Press 0 for Not at all, press 1 for Several days, ...
text          Reply in a few words.                       Please say your answer in a few words.
============  ==========================================  =======================================================

A node may override the instruction of one channel (``instructions: {voice: {en, es}}``) where the wording
must differ. The first message of every conversation also carries the opt-out line (:func:`opt_out_line`:
"Reply STOP to end texts." / "To stop these calls, press 9."; the engine adds it, content never says it).

Channels: ``"sms"`` (the console channel counts as SMS) and ``"voice"``. Everything here is pure: no I/O.
Public API for the voice side: :func:`render_prompt` (the whole spoken prompt of a question node, with
``ctx.channel == "voice"``), :func:`instruction` (the instruction alone), :func:`opt_out_line`,
:func:`keypad` (which key answers what) and :func:`spoken_text` (a node's text as said aloud).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from babel.numbers import format_decimal

from app.i18n import gettext_for, locale_for

if TYPE_CHECKING:
    from app.flows.engine import PatientContext
    from app.flows.model import Node

Channel = Literal["sms", "voice"]
CHANNELS: tuple[str, ...] = ("sms", "voice")

#: Letters outside GSM-7 that force a whole SMS into UCS-2 (70 characters a part), written without the
#: accent in the SMS menus built from choice labels ("Ningún día" → "Ningun dia"), as the Spanish content
#: does by hand; é, ñ, ü, ¿ and ¡ are GSM-7 and stay (app/channels/segments.py).
_SMS_FOLD = str.maketrans("áíóúÁÍÓÚ", "aiouAIOU")
#: "3/9. Trouble falling asleep" on a screen is "Question 3 of 9. Trouble falling asleep" aloud.
_ITEM_NUMBER = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\.\s*")


def channel_of(name: str | None) -> Channel:
    """``"voice"`` for a phone call; every other channel (sms, console, None) reads texts."""
    return "voice" if name == "voice" else "sms"


def _fill(template: str, ctx: PatientContext) -> str:
    values = _Vars(first_name=ctx.first_name, program_name=ctx.program_name, program_phone=ctx.program_phone)
    values.update(ctx.variables)
    return template.format_map(values)


class _Vars(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _local(text: Mapping[str, str], language: str) -> str:
    return text.get(language) or next(iter(text.values()), "")


def _number(value: float | None, language: str) -> str:
    return format_decimal(value or 0, locale=locale_for(language))


def _labels(node: Node, language: str) -> list[tuple[str, str]]:
    """(key, label) per choice: the choice's value on a scale ("0", "1"...), its place on a choice list."""
    keys: list[tuple[str, str]] = []
    for place, choice in enumerate(node.choices, start=1):
        if node.question_type == "scale" and choice.value is not None:
            key = _number(choice.value, language)
        else:
            key = str(place)
        keys.append((key, _local(choice.label, language)))
    return keys


def keypad(node: Node, language: str) -> list[tuple[str, str]]:
    """What each key answers at a question, for a keypad or a menu: ``[("1", "Better"), ...]``.

    yes/no: 1 = yes, 2 = no; choice: 1..n in the order of the flow file; scale: each point's value (or
    every number from min to max when the scale names no points); number and text: ``[]`` (the digits
    are the answer, or speech). The engine understands the same digits (app/flows/engine.py understand).
    """
    _ = gettext_for(language)
    if node.question_type == "yes_no":
        return [("1", _("yes")), ("2", _("no"))]
    if node.question_type in {"choice", "scale"} and node.choices:
        return _labels(node, language)
    if node.question_type == "scale" and node.minimum is not None and node.maximum is not None:
        return [(str(n), str(n)) for n in range(int(node.minimum), int(node.maximum) + 1)]
    return []


def _sms(node: Node, language: str) -> str:
    _ = gettext_for(language)
    kind = node.question_type
    if kind == "yes_no":
        return _("Reply YES or NO.")
    if kind == "number":
        measure = _local(node.measure, language) if node.measure else ""
        if measure and node.example:
            return _("Reply with %(measure)s, like %(example)s.") % {"measure": measure, "example": node.example}
        if measure:
            return _("Reply with %(measure)s.") % {"measure": measure}
        if node.example:
            return _("Reply with a number, like %(example)s.") % {"example": node.example}
        return _("Reply with a number.")
    if kind in {"choice", "scale"}:
        if not node.choices:
            return _("Reply with a number from %(low)s to %(high)s.") % {
                "low": _number(node.minimum, language),
                "high": _number(node.maximum, language),
            }
        options = [(key, label.translate(_SMS_FOLD)) for key, label in _labels(node, language)]
        if node.menu:
            return "\n".join(f"{key} {label}" for key, label in options)
        return _("Reply %(options)s.") % {"options": ", ".join(f"{key} {label}" for key, label in options)}
    return _("Reply in a few words.")


def _voice(node: Node, language: str) -> str:
    _ = gettext_for(language)
    kind = node.question_type
    if kind == "yes_no":
        return _("Press 1 for yes or 2 for no. You can also say yes or no.")
    if kind == "number":
        if node.measure:
            return _("Enter %(measure)s, then press the pound key.") % {"measure": _local(node.measure, language)}
        return _("Enter the number, then press the pound key.")
    if kind in {"choice", "scale"}:
        if not node.choices:
            return _("Press a number from %(low)s to %(high)s.") % {
                "low": _number(node.minimum, language),
                "high": _number(node.maximum, language),
            }
        first, *rest = _labels(node, language)
        parts = [_("Press %(key)s for %(label)s") % {"key": first[0], "label": first[1]}]
        parts += [_("press %(key)s for %(label)s") % {"key": key, "label": label} for key, label in rest]
        return ", ".join(parts) + "."
    return _("Please say your answer in a few words.")


def instruction(node: Node, channel: str, language: str) -> str:
    """How to answer the question ``node`` on ``channel`` ("sms" | "voice"; anything else is SMS) in
    ``language``: the node's own override for that channel if it has one, else the default for its
    question type (table in the module docstring). ``""`` for a node that is not a question.

    SMS choice labels are written without á í ó ú (GSM-7); the voice wording keeps them.
    """
    if node.type != "question":
        return ""
    chosen = channel_of(channel)
    override = node.instructions.get(chosen)
    if override:
        return _local(override, language)
    return _voice(node, language) if chosen == "voice" else _sms(node, language)


#: Written-for-SMS wording said differently on a call, per language (whole phrases, case kept as listed).
SPOKEN_PHRASES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "en": (("will see your messages", "will see your answers"),),
    "es": (
        ("Le escribimos", "Le llamamos"),
        ("le escribimos", "le llamamos"),
        ("va a ver sus mensajes", "va a ver sus respuestas"),
    ),
}
#: Spanish texts leave out á, é, í, ó, ú where a text message would turn into UCS-2 (content/flows/*.yaml);
#: a voice must stress the word right, so the words our texts write without them get them back aloud.
SPOKEN_ACCENTS: Mapping[str, str] = {
    "ultima": "última", "ultimas": "últimas", "ultimo": "último", "ultimos": "últimos",
    "estaria": "estaría", "podrian": "podrían", "podria": "podría", "energia": "energía", "mas": "más",
    "confusion": "confusión", "periodico": "periódico", "preocupacion": "preocupación",
    "television": "televisión", "decaido": "decaído", "decaida": "decaída", "dia": "día", "dias": "días",
    "despues": "después", "tambien": "también", "todavia": "todavía", "numero": "número",
    "telefono": "teléfono", "medico": "médico", "rapido": "rápido", "dificil": "difícil", "facil": "fácil",
    "caida": "caída", "caidas": "caídas", "caido": "caído", "groserias": "groserías",
    "tenia": "tenía", "salio": "salió", "impidio": "impidió", "asi": "así", "aqui": "aquí",
    "linea": "línea", "domestica": "doméstica", "farmaceutico": "farmacéutico", "revision": "revisión",
}  # fmt: skip
_SPANISH_WORD = re.compile(r"\b[A-Za-z]+\b")
#: "muerto(a)", "solo(a)", "mismos(as)": said as both forms, "muerto o muerta".
_GENDER_FORM = re.compile(r"\b(\w+?)o(s?)\(a(?:s)?\)")


def _accented(match: re.Match[str]) -> str:
    word = match.group(0)
    found = SPOKEN_ACCENTS.get(word.lower())
    if found is None:
        return word
    return found[0].upper() + found[1:] if word[0].isupper() else found


def spoken_text(text: str, language: str) -> str:
    """A node's text as it is said aloud: "3/9. Trouble..." → "Question 3 of 9. Trouble...", line breaks
    as spaces; SMS wording said as a call says it (:data:`SPOKEN_PHRASES`, "Le escribimos" → "Le
    llamamos"); in Spanish "muerto(a)" → "muerto o muerta" and the accents a text leaves out put back
    (:data:`SPOKEN_ACCENTS`). A text message keeps the text as written."""
    _ = gettext_for(language)
    match = _ITEM_NUMBER.match(text)
    if match:
        lead = _("Question %(number)s of %(total)s.") % {"number": match.group(1), "total": match.group(2)}
        text = f"{lead} {text[match.end() :]}"
    for written, said in SPOKEN_PHRASES.get(language, ()):
        text = text.replace(written, said)
    if language == "es":
        text = _GENDER_FORM.sub(lambda m: f"{m.group(1)}o{m.group(2)} o {m.group(1).lower()}a{m.group(2)}", text)
        text = _SPANISH_WORD.sub(_accented, text)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def join(text: str, extra: str) -> str:
    """``text`` then ``extra``: on a new line when either is a menu of lines, else after a space."""
    if not extra:
        return text
    if not text:
        return extra
    return f"{text}\n{extra}" if "\n" in extra or "\n" in text else f"{text} {extra}"


def render_text(text: Mapping[str, str], language: str, ctx: PatientContext) -> str:
    """A node's own text (no instruction) in ``language`` with the patient's variables, for ``ctx.channel``."""
    rendered = _fill(_local(text, language), ctx)
    return spoken_text(rendered, language) if channel_of(ctx.channel) == "voice" else rendered


def render_prompt(node: Node, language: str, ctx: PatientContext) -> str:
    """What the patient gets for ``node`` on ``ctx.channel``: its text with the variables filled in, then,
    for a question, the answer instruction (:func:`instruction`). The opt-out line is not included
    (:func:`opt_out_line`; the engine adds it to the first message of a conversation).

    >>> render_prompt(breath, "en", ctx)              # ctx.channel == "sms"
    'Are you more short of breath than usual? Reply YES or NO.'
    """
    text = render_text(node.text, language, ctx)
    said = _fill(instruction(node, ctx.channel, language), ctx)
    if channel_of(ctx.channel) == "voice":
        if said and text and not re.search(r"[.?!:]$", text):
            text += "."  # "Question 1 of 9. Feeling down" is a sentence aloud
        return f"{text} {said}".strip()
    return join(text, said)


def opt_out_line(channel: str, language: str) -> str:
    """The opt-out said in the first message of every conversation: "Reply STOP to end texts." on SMS,
    "To stop these calls, press 9." on a call (an interactive opt-out is required for prerecorded calls:
    47 CFR 64.1200(b)(3); TWILIO.md "Rules that bind the content")."""
    _ = gettext_for(language)
    if channel_of(channel) == "voice":
        return _("To stop these calls, press 9.")
    return _("Reply STOP to end texts.")


def reprompt_default(node: Node, channel: str, language: str) -> str:
    """The re-prompt hint when the node gives none for ``channel``: "Please reply YES or NO." on SMS; on a
    call the question's own voice instruction ("Press 1 for yes or 2 for no. You can also say yes or no.")."""
    _ = gettext_for(language)
    if channel_of(channel) == "voice":
        return instruction(node, "voice", language)
    if node.question_type == "yes_no":
        return _("Please reply YES or NO.")
    if node.question_type == "number":
        return _("Please reply with a number between %(low)s and %(high)s.") % {
            "low": _number(node.minimum, language),
            "high": _number(node.maximum, language),
        }
    if node.question_type == "scale":
        return _("Please reply with a number from %(low)s to %(high)s.") % {
            "low": _number(node.minimum, language),
            "high": _number(node.maximum, language),
        }
    if node.question_type == "choice":
        return _("Please reply with the number of your answer.")
    return _("Please reply with a short message.")


def reprompt(node: Node, language: str, ctx: PatientContext) -> str:
    """ "Sorry, I didn't understand." and how to answer, for ``ctx.channel``.

    SMS: the node's ``hint`` alone when it has one, else the default hint and the question again (as
    before voice existed). Voice: the node's voice hint alone when it has one, else the question again
    with its voice instruction ("press / say").
    """
    _ = gettext_for(language)
    sorry = _("Sorry, I didn't understand.")
    if channel_of(ctx.channel) == "voice":
        if node.voice_hint:
            return f"{sorry} {_fill(_local(node.voice_hint, language), ctx)}"
        return f"{sorry} {render_prompt(node, language, ctx)}"
    if node.hint:
        return f"{sorry} {_fill(_local(node.hint, language), ctx)}"
    return f"{sorry} {reprompt_default(node, 'sms', language)}\n{render_prompt(node, language, ctx)}"
