"""Flows by phone: what a caller hears and how a keypress or a spoken phrase becomes the engine's input.

Pure (no Flask, Twilio, SQL): the voice webhooks (app/messaging/call_turns.py), the simulator's phone mode
and ``outreach simulate --channel voice`` use the same functions, so a call behaves the same everywhere.

- :func:`gather_spec` — how to listen at a question (DESIGN §4.7, TWILIO.md "Voice TwiML"): keypad and
  speech (``input="dtmf speech"``), the patient's language (``en-US`` / ``es-US``), ``hints`` from the
  words the question expects, one key for yes/no, choices and scales up to 9, ``#`` to end a number.
- :func:`read_input` — a Gather result (``Digits`` / ``SpeechResult`` + ``Confidence``) → what to do:
  answer the engine (the digits or words go through the same understanding as texts: "1" is yes, "2" is
  no, "one eighty three" / "ciento ochenta y tres" is 183), confirm low-confidence speech first ("I heard
  183. Press 1 if that is right, or 2 to try again."), opt out of calls ("9" where 9 is no answer of the
  question), or silence. A red flag spoken at any confidence goes to the engine at once (triage first).
- :class:`Turn` — one answer to Twilio: lines said, then a Gather (with its prompt) or a hang-up or a
  ``<Dial>``; stored per step (``to_dict``) so a replayed request gets the same TwiML
  (app/channels/voice_twiml.py renders it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from babel.dates import format_time

from app.flows import engine
from app.flows.answers import UNIT_WORDS, parse_yes_no
from app.flows.intents import GlobalIntents
from app.flows.model import Condition, Flow, Node
from app.flows.text import fold, tokens
from app.i18n import gettext_for, locale_for, normalise_language

#: Twilio speech-recognition locale per language.
SPEECH_LOCALES: Mapping[str, str] = {"en": "en-US", "es": "es-US"}
#: Default text-to-speech voices per language (Amazon Polly neural voices in Twilio's list).
DEFAULT_VOICES: Mapping[str, str] = {"en": "Polly.Joanna-Neural", "es": "Polly.Lupe-Neural"}
#: Below this speech confidence (0-1) an understood answer is read back for the caller to confirm.
DEFAULT_CONFIDENCE_THRESHOLD = 0.5
#: Seconds of silence before a Gather gives up.
GATHER_TIMEOUT_SECONDS = 6
#: The key that stops calls ("to stop these calls, press 9"), where 9 is not an answer of the question.
OPT_OUT_KEY = "9"
#: The key that dials the program's nurse line after an emergency.
NURSE_KEY = "0"
#: Seconds the nurse line rings before the ``<Dial>`` gives up and its action tells the caller.
NURSE_DIAL_TIMEOUT_SECONDS = 25
#: ``DialCallStatus`` values that mean nobody at the nurse line took the call.
NURSE_NOT_REACHED = frozenset({"busy", "no-answer", "failed", "canceled"})
#: Words that ask for the nurse after "to talk to a nurse now, press 0" (a caller in distress may say it
#: instead of pressing it): folded, matched as whole words.
NURSE_WORDS = frozenset(
    {"zero", "cero", "nurse", "enfermera", "enfermero", "yes", "yeah", "si", "please", "connect", "talk", "hablar"}
)


def wants_nurse(digits: str | None, speech: str | None) -> bool:
    """Whether the reply to the nurse offer asks for the nurse: the 0 key, or a word for it ("zero",
    "nurse", "yes", "sí", "enfermera"); a "no" in the words wins ("no thanks")."""
    if (digits or "").strip().rstrip("#") == NURSE_KEY:
        return True
    words = set(tokens(speech or ""))
    return bool(words & NURSE_WORDS) and not words & {"no", "not", "nope"}


#: Yes/no words and the key words read as the 1 and 2 keys ("one" / "uno" is yes; see :func:`spoken_keys`).
_YES_NO_HINTS: Mapping[str, tuple[str, ...]] = {
    "en": ("yes", "no", "not sure", "one", "two"),
    "es": ("sí", "no", "no sé", "uno", "dos"),
}


def speech_locale(language: str) -> str:
    return SPEECH_LOCALES[normalise_language(language)]


def voice_for(language: str, voices: Mapping[str, str] | None = None) -> str:
    """The text-to-speech voice for ``language`` (configured per locale, else the default)."""
    lang = normalise_language(language)
    return (voices or {}).get(lang) or DEFAULT_VOICES[lang]


@dataclass(frozen=True)
class GatherSpec:
    """A ``<Gather>``: ``num_digits`` 1 for single-key answers, ``finish_on_key`` "#" for numbers."""

    language: str
    input: str = "dtmf speech"
    hints: tuple[str, ...] = ()
    num_digits: int | None = None
    finish_on_key: str | None = None
    timeout: int = GATHER_TIMEOUT_SECONDS
    speech_timeout: str = "auto"
    action_on_empty_result: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "input": self.input,
            "hints": list(self.hints),
            "num_digits": self.num_digits,
            "finish_on_key": self.finish_on_key,
            "timeout": self.timeout,
            "speech_timeout": self.speech_timeout,
            "action_on_empty_result": self.action_on_empty_result,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GatherSpec:
        return cls(
            language=str(data["language"]),
            input=str(data.get("input", "dtmf speech")),
            hints=tuple(data.get("hints", ())),
            num_digits=data.get("num_digits"),
            finish_on_key=data.get("finish_on_key"),
            timeout=int(data.get("timeout", GATHER_TIMEOUT_SECONDS)),
            speech_timeout=str(data.get("speech_timeout", "auto")),
            action_on_empty_result=bool(data.get("action_on_empty_result", True)),
        )


def single_key(node: Node) -> bool:
    """Whether one key answers the question: yes/no, up to 9 choices, a scale within 0-9."""
    if node.question_type == "yes_no":
        return True
    if node.question_type == "choice":
        return 0 < len(node.choices) <= 9
    if node.question_type == "scale":
        return node.minimum is not None and node.maximum is not None and node.minimum >= 0 and node.maximum <= 9
    return False


def hints_for(node: Node, language: str) -> tuple[str, ...]:
    """Words the question expects, to help speech recognition (yes/no words, the choices' labels and words)."""
    lang = normalise_language(language)
    words: list[str] = []
    if node.question_type == "yes_no":
        words.extend(_YES_NO_HINTS[lang])
    for choice in node.choices:
        label = choice.label.get(lang)
        if label:
            words.append(label)
        words.extend(choice.words.get(lang, ()))
    if node.question_type == "number" and node.unit:
        words.append(node.unit)
    return tuple(dict.fromkeys(w.strip() for w in words if w and w.strip()))


def gather_spec(node: Node, language: str) -> GatherSpec:
    """How to listen for the answer to the question ``node`` in ``language`` (DESIGN §4.7)."""
    one = single_key(node)
    return GatherSpec(
        language=speech_locale(language),
        hints=hints_for(node, language),
        num_digits=1 if one else None,
        finish_on_key=None if one else "#",
    )


def single_key_spec(language: str) -> GatherSpec:
    """A Gather for one key (1 / 2 to confirm, a menu, 0 for the nurse)."""
    lang = normalise_language(language)
    return GatherSpec(language=speech_locale(lang), hints=_YES_NO_HINTS[lang], num_digits=1)


@dataclass(frozen=True)
class Turn:
    """One TwiML answer: ``say`` (spoken first, whole), then either a Gather speaking ``prompt`` (a key or
    a word interrupts it; a ``<Redirect>`` follows so silence comes back), or ``dial`` (a number), or a
    hang-up. ``voice`` and ``language`` (``en-US``) are the ``<Say>`` attributes."""

    say: tuple[str, ...]
    voice: str
    language: str
    gather: GatherSpec | None = None
    prompt: tuple[str, ...] = ()
    dial: str | None = None

    @property
    def ends(self) -> bool:
        return self.gather is None and self.dial is None

    def lines(self) -> list[str]:
        """Everything the caller hears, in order (for the transcript and the simulator)."""
        return [*self.say, *self.prompt]

    def to_dict(self) -> dict[str, Any]:
        return {
            "say": list(self.say),
            "voice": self.voice,
            "language": self.language,
            "gather": self.gather.to_dict() if self.gather else None,
            "prompt": list(self.prompt),
            "dial": self.dial,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Turn:
        gather = data.get("gather")
        return cls(
            say=tuple(data.get("say", ())),
            voice=str(data["voice"]),
            language=str(data["language"]),
            gather=GatherSpec.from_dict(gather) if gather else None,
            prompt=tuple(data.get("prompt", ())),
            dial=data.get("dial"),
        )


# ------------------------------------------------------------------------------------ reading a Gather
@dataclass(frozen=True)
class Heard:
    """What a Gather result means.

    ``kind``: ``answer`` (give ``text`` to the engine as ``Reply(text, mode)``), ``confirm`` (low-confidence
    speech that reads as an answer: ask "I heard ``display``" first), ``opt_out`` (9: stop calls),
    ``silence`` (nothing heard)."""

    kind: Literal["answer", "confirm", "opt_out", "silence"]
    text: str = ""
    mode: Literal["text", "digits", "speech"] = "text"
    display: str = ""


def _confidence(raw: str | float | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def read_input(
    node: Node | None,
    language: str,
    *,
    digits: str | None,
    speech: str | None,
    confidence: str | float | None,
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    intents: GlobalIntents | None = None,
    guarded: bool = False,
) -> Heard:
    """A Gather result at the question ``node`` (None: a prompt that is no question, e.g. "right now?").

    Digits win over speech (Twilio sends one or the other). "9" opts out of calls unless the question
    takes 9 as an answer. Speech below ``threshold`` that the question understands is confirmed first,
    unless triage finds a red flag or a mention to confirm in it (those go to the engine at once: an
    emergency never waits for a keypress). A confidence that is missing or not a number in 0-1 counts
    as confident (the words are still checked by the question). ``guarded`` (:func:`guards_opt_out`): 9
    is read as an answer (re-asked when invalid), never as the opt-out that would leave the question unasked.
    """
    keys = (digits or "").strip().rstrip("#")
    words = (speech or "").strip()
    if keys:
        if keys == OPT_OUT_KEY and not guarded and not accepts(node, OPT_OUT_KEY, language):
            return Heard("opt_out", keys, "digits")
        return Heard("answer", keys, "digits")
    if not words:
        return Heard("silence")
    words = spoken_keys(node, words, language)
    level = _confidence(confidence)
    if level is None or level >= threshold:
        return Heard("answer", words, "speech")
    if intents is not None:
        verdict = intents.assess(words, language)
        if verdict.emergency or verdict.confirm:
            return Heard("answer", words, "speech")
    if node is None or node.type != "question":
        return Heard("answer", words, "speech")
    understood = engine.understand(node, engine.Reply(words, "speech"), language)
    if understood is None or understood.kind == "unknown":
        return Heard("answer", words, "speech")  # not an answer: the engine re-prompts with its hint
    return Heard("confirm", words, "speech", display=_display(understood, node, language, words))


#: Digit words a speech recogniser returns for a key, en and es (folded), with its usual mishearings
#: ("won", "too"). Read alone at a one-key question, or in a run of two or more at a number question.
_KEY_WORDS: Mapping[str, str] = {
    **{str(d): str(d) for d in range(10)},
    "zero": "0", "one": "1", "won": "1", "two": "2", "too": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6", "siete": "7",
    "ocho": "8", "nueve": "9",
}  # fmt: skip
#: Only inside a run of digits: "two oh five" (205).
_RUN_ONLY: Mapping[str, str] = {"oh": "0"}
#: Words said before a key ("number two", "press 1", "el dos", "opción uno").
_KEY_LEAD_INS = frozenset({"number", "press", "option", "the", "numero", "opcion", "el", "la", "oprimo", "marco"})
_POINT_WORDS = frozenset({"point", "punto", "coma"})


def _spoken_words(text: str) -> list[str]:
    """Folded words with the punctuation a recogniser adds around them ("One." → "one")."""
    return [w.strip(".,!?¿¡;:") for w in fold(text).split() if w.strip(".,!?¿¡;:")]


def spoken_keys(node: Node | None, words: str, language: str) -> str:
    """A phrase as the keys it stands for, where the question expects keys; else ``words`` unchanged.

    - One-key questions (yes/no, choices, small scales): a lone digit word, after "number" / "press" /
      "el" / "opción", is that key when the question takes it ("one" → "1" = yes, "dos" → "2" = no,
      "too" → "2"). "One more thing" or "I have two pillows" stay words.
    - Number questions: digits said one by one ("one eight three", "uno ocho tres", "two oh five",
      "uno ocho dos punto cinco") are joined (183, 205, 182.5), a unit word after them kept ("183
      pounds"). Numbers said as numbers ("one eighty three", "ciento ochenta y tres") are left to the
      answer understanding (text2num), as is a single digit word.
    """
    if node is None or node.type != "question":
        return words
    said = _spoken_words(words)
    if single_key(node):
        rest = [w for w in said if w not in _KEY_LEAD_INS] if len(said) > 1 else said
        key = _KEY_WORDS.get(rest[0]) if len(rest) == 1 else None
        return key if key is not None and accepts(node, key, language) else words
    if node.question_type != "number":
        return words
    unit = ""
    while said and said[-1] in UNIT_WORDS:
        unit = f" {said.pop()}{unit}"
    digits: list[str] = []
    for word in said:
        if word in _POINT_WORDS and digits and "." not in digits:
            digits.append(".")
            continue
        digit = _KEY_WORDS.get(word) or _RUN_ONLY.get(word)
        if digit is None:
            return words
        digits.append(digit)
    if sum(d != "." for d in digits) < 2 or digits[-1] == ".":
        return words
    return "".join(digits) + unit


def _answer_subjects(condition: Condition) -> set[str]:
    found = {condition.subject} if condition.kind == "answer" and condition.subject else set()
    for child in condition.children:
        found |= _answer_subjects(child)
    return found


def guards_opt_out(flow: Flow, node: Node | None) -> bool:
    """Whether key 9 must not stop calls at ``node``: a question an EMERGENCY rule reads (PHQ-9 item 9,
    chest pain now). A caller who presses 9 there (the PHQ-9 scale is 0-3) is asked again; the opt-out
    stays offered at every other question (fresh-user review, 2026-11-30)."""
    if node is None or node.type != "question":
        return False
    return any(rule.level == "EMERGENCY" and node.answer_id in _answer_subjects(rule.when) for rule in flow.rules)


def waits(flow: Flow, state: engine.State) -> bool:
    """Whether the conversation now waits at a ``wait`` node (med-reminder's "2 = remind me in 30
    minutes"): nothing is asked until the wait ends, so a call says the wait's line and goodbye and hangs
    up, the conversation stays open, and the patient is contacted again once the wait is over (a new call,
    or a text where the patient can no longer be called: app/scheduling/sweeper.py)."""
    if state.status != "active" or state.confirming or state.node is None:
        return False
    return flow.node(state.node).type == "wait"


def accepts(node: Node | None, text: str, language: str) -> bool:
    """Whether the question reads ``text`` as a valid answer."""
    if node is None or node.type != "question":
        return False
    understood = engine.understand(node, engine.Reply(text, "digits"), language)
    return understood is not None and understood.kind != "unknown"


def _display(understood: engine.Understood, node: Node, language: str, words: str) -> str:
    """How an understood answer is read back: the number, yes / no, the choice's label, else the words."""
    _ = gettext_for(language)
    value = understood.value
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return f"{value:g}"
    if node.question_type == "choice":
        for choice in node.choices:
            if choice.id == value:
                return choice.label.get(normalise_language(language)) or words
    return words


def read_confirm(digits: str | None, speech: str | None) -> bool | None:
    """The reply to "I heard …, press 1 if that is right, 2 to try again": True, False or None."""
    keys = (digits or "").strip().rstrip("#")
    if not keys and speech:
        # "one" / "uno" is the 1 key, "two" / "dos" the 2 key.
        said = [w for w in _spoken_words(speech) if w not in _KEY_LEAD_INS]
        keys = _KEY_WORDS.get(said[0], "") if len(said) == 1 else ""
    if keys:
        return True if keys == "1" else False if keys == "2" else None
    return parse_yes_no(speech or "") if speech else None


# -------------------------------------------------------------------------------------------- texts
def confirm_text(display: str, language: str) -> str:
    _ = gettext_for(language)
    return _("I heard %(heard)s. Press 1 if that is right, or 2 to try again.") % {"heard": display}


def opt_out_offer(language: str) -> str:
    """Said once per automated call: an interactive opt-out (47 CFR 64.1200(b)(2))."""
    _ = gettext_for(language)
    return _("To stop these calls, press 9.")


def with_opt_out_offer(turn: Turn, language: str) -> Turn:
    """``turn`` with "to stop these calls, press 9" said before its question, unless it already says it
    (a conversation started on the phone carries it in its first message, app/flows/instructions.py)."""
    offer = opt_out_offer(language)
    if any(offer in line for line in (*turn.say, *turn.prompt)):
        return turn
    return Turn(
        say=(*turn.say, offer), voice=turn.voice, language=turn.language, gather=turn.gather,
        prompt=turn.prompt, dial=turn.dial,
    )  # fmt: skip


def opted_out_text(language: str) -> str:
    _ = gettext_for(language)
    return _("You will not get more calls from us. Goodbye.")


def silence_text(language: str) -> str:
    _ = gettext_for(language)
    return _("Sorry, I did not hear you.")


def without_apology(prompt: Sequence[str], language: str) -> tuple[str, ...]:
    """The question's lines without the engine's "Sorry, I didn't understand." in front, to ask it again
    after "Sorry, I did not hear you." (one apology, not two)."""
    _ = gettext_for(language)
    sorry = _("Sorry, I didn't understand.")
    return tuple(line[len(sorry) :].lstrip() if line.startswith(sorry) else line for line in prompt)


def nurse_offer(language: str) -> str:
    _ = gettext_for(language)
    return _("To talk to a nurse now, press 0.")


def connecting_text(language: str) -> str:
    _ = gettext_for(language)
    return _("Connecting you to a nurse now.")


def failed_text(language: str) -> str:
    _ = gettext_for(language)
    return _("Sorry, something went wrong with this call. Your care team will see your answers. Goodbye.")


def nurse_not_reached_text(language: str) -> str:
    """Said when the nurse line was busy or did not answer: the escalation is open either way."""
    _ = gettext_for(language)
    return _(
        "The nurse line did not answer. Your care team has been alerted. If this is an emergency, hang up and call 911."
    )


def spoken_time(at: dt.time, language: str) -> str:
    """A time of day as said in ``language``: "9:15 PM", "21:15" (Babel's short format, plain spaces)."""
    text = format_time(at, format="short", locale=locale_for(normalise_language(language)))
    return text.replace("\u202f", " ").replace("\xa0", " ")


def wait_texted_text(language: str, start: dt.time, end: dt.time, at: dt.time) -> str:
    """Said on a call when a wait (a snooze) would end outside calling hours: a text comes instead."""
    _ = gettext_for(language)
    return _("We only call between %(start)s and %(end)s, so we will send you a text at %(at)s instead.") % {
        "start": spoken_time(start, language), "end": spoken_time(end, language), "at": spoken_time(at, language),
    }  # fmt: skip


def wait_unreached_text(language: str, start: dt.time, end: dt.time) -> str:
    """Said on a call when a wait would end outside calling hours and the patient cannot be texted."""
    _ = gettext_for(language)
    return _("We only call between %(start)s and %(end)s, so we cannot call you back this time.") % {
        "start": spoken_time(start, language), "end": spoken_time(end, language),
    }  # fmt: skip


def wait_unreached_advice(language: str) -> str:
    """What to do, when a flow's wait gives no ``after_hours`` text of its own."""
    _ = gettext_for(language)
    return _("Please do what your care team told you. If you feel very sick, call 911.")


def goodbye_text(language: str) -> str:
    _ = gettext_for(language)
    return _("Goodbye.")


def voicemail_text(language: str, program: str, first_name: str, phone: str) -> str:
    """No PHI: who calls, for whom, the number to call back (DESIGN §4.7)."""
    _ = gettext_for(language)
    return _("This is %(program)s calling for %(first_name)s. Please call us at %(phone)s. Thank you.") % {
        "program": program,
        "first_name": first_name,
        "phone": phone,
    }


def missed_call_sms(language: str, program: str, phone: str) -> str:
    _ = gettext_for(language)
    return _("%(program)s: We called you for your check-in. Please call us at %(phone)s. Reply STOP to end texts.") % {
        "program": program,
        "phone": phone,
    }


def unfinished_call_sms(language: str, program: str, phone: str) -> str:
    _ = gettext_for(language)
    return _(
        "%(program)s: Your call ended before the check-in was done. We saved your answers. "
        "If you need us, call %(phone)s. Reply STOP to end texts."
    ) % {"program": program, "phone": phone}


def unknown_caller_text(language: str) -> str:
    """No PHI, no program name: the 911 advice."""
    _ = gettext_for(language)
    return _(
        "Thank you for calling. We could not match this number to a patient. Please call your care team. "
        "If this is an emergency, hang up and call 911."
    )


def menu_text(language: str, program: str) -> str:
    _ = gettext_for(language)
    return _("This is %(program)s. For today's check-in, press 1. To ask your care team to call you back, press 2.") % {
        "program": program
    }


def no_checkin_text(language: str) -> str:
    _ = gettext_for(language)
    return _("You have no check-in waiting today.")


def callback_text(language: str) -> str:
    _ = gettext_for(language)
    return _("We will ask your care team to call you back. Goodbye.")


# --------------------------------------------------------------------------------------------- turns
ASKING = frozenset({"prompt", "reprompt", "confirm", "reminder"})


def question_turn(
    lines: Sequence[engine.Say],
    node: Node | None,
    language: str,
    voice: str,
    *,
    asking: bool,
    extra_prompt: Sequence[str] = (),
) -> Turn:
    """The turn after an engine step: its lines, the last one (the question) inside a Gather when the
    conversation still asks something; else every line and a hang-up."""
    locale = speech_locale(language)
    if not asking:
        return Turn(say=(*(s.text for s in lines), goodbye_text(language)), voice=voice, language=locale)
    said = list(lines)
    prompt: list[str] = []
    if said and said[-1].purpose in ASKING:
        prompt.append(said.pop().text)
    spec = gather_spec(node, language) if node is not None and node.type == "question" else single_key_spec(language)
    return Turn(
        say=tuple(s.text for s in said),
        voice=voice,
        language=locale,
        gather=spec,
        prompt=(*prompt, *extra_prompt),
    )


def emergency_turn(lines: Sequence[str], language: str, voice: str, nurse_line: str | None) -> Turn:
    """911 / 988 said at once; with a nurse line, "to talk to a nurse now, press 0" (one key)."""
    locale = speech_locale(language)
    if nurse_line:
        return Turn(
            say=tuple(lines),
            voice=voice,
            language=locale,
            gather=single_key_spec(language),
            prompt=(nurse_offer(language),),
        )
    return Turn(say=tuple(lines), voice=voice, language=locale)


#: ``after`` states of a call once an EMERGENCY was said with a nurse line (``calls.pending["after"]``,
#: ``PhoneCall.after``): the nurse offer is pending, asked once more, or the nurse line is being dialled.
EMERGENCY = "emergency"
EMERGENCY_AGAIN = "emergency_again"
DIALED = "dialed"
ENDED = "ended"


def after_emergency(
    digits: str | None,
    speech: str | None,
    *,
    advice: Sequence[str],
    asked_again: bool,
    nurse_line: str,
    language: str,
    voice: str,
) -> tuple[Turn, str]:
    """The reply to "to talk to a nurse now, press 0" after the emergency ``advice`` (the 911 / 988 lines):
    the nurse asked for → dial the nurse line (``DIALED``); anything else (a key, words, silence) → the
    advice and the offer once more (``EMERGENCY_AGAIN``), and the second time the advice and goodbye
    (``ENDED``): the call never ends in silence. Returns the turn and the call's next ``after`` state."""
    if wants_nurse(digits, speech):
        return dial_turn([connecting_text(language)], nurse_line, language, voice), DIALED
    if not asked_again:
        return key_turn(advice, [nurse_offer(language)], language, voice), EMERGENCY_AGAIN
    return simple_turn([*advice, goodbye_text(language)], language, voice), ENDED


def after_dial(dial_status: str | None, language: str, voice: str) -> Turn:
    """The nurse line's ``<Dial>`` ended (its action, ``DialCallStatus``): busy / no answer / failed →
    "the nurse line did not answer, your care team has been alerted, call 911 if this is an emergency";
    a call the nurse took → goodbye."""
    if (dial_status or "").strip().lower() in NURSE_NOT_REACHED:
        return simple_turn([nurse_not_reached_text(language)], language, voice)
    return simple_turn([goodbye_text(language)], language, voice)


def simple_turn(lines: Sequence[str], language: str, voice: str) -> Turn:
    return Turn(say=tuple(lines), voice=voice, language=speech_locale(language))


def key_turn(say: Sequence[str], prompt: Sequence[str], language: str, voice: str) -> Turn:
    return Turn(
        say=tuple(say), voice=voice, language=speech_locale(language), gather=single_key_spec(language),
        prompt=tuple(prompt),
    )  # fmt: skip


def dial_turn(lines: Sequence[str], number: str, language: str, voice: str) -> Turn:
    return Turn(say=tuple(lines), voice=voice, language=speech_locale(language), dial=number)


@dataclass(frozen=True)
class Voices:
    """Configured voices per language (``OUTREACH_VOICE_EN`` / ``OUTREACH_VOICE_ES``)."""

    by_language: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, language: str) -> str:
        return voice_for(language, self.by_language)
