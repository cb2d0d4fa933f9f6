"""A call without a telephone: one flow played by phone, key by key, with no database.

Pure (no Flask, Twilio, SQL). ``outreach simulate --channel voice``, the flow transcripts run on voice
(app/flows/transcripts.py) and the simulator's phone mode use it; it calls the same functions as the
voice webhooks (app/messaging/call_turns.py): :func:`app.flows.voice.read_input` to read a Gather result,
``engine.start`` / ``engine.resume`` with ``ctx.channel == "voice"`` (prompts worded for the keypad),
:func:`~app.flows.voice.question_turn` / :func:`~app.flows.voice.emergency_turn` for what the caller hears.
So a simulated call behaves like a real one: low-confidence speech is read back first, 9 stops calls
(where 9 is no answer of the question), a first silence asks again and a second one moves on, an
EMERGENCY says 911 / 988 at once and, with a nurse line, offers 0 to reach the nurse.

A line typed by a person (:func:`parse_line`): digits (``1``, ``183#``) are keypresses, ``say: …`` (or
``say[0.4]: …`` with a speech confidence 0-1) is speech, an empty line is silence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from app.flows import engine
from app.flows import voice as v
from app.flows.intents import GlobalIntents
from app.flows.model import Flow, Node

_SAY = re.compile(r"^\s*say\s*(?:\[\s*(?P<confidence>[0-9.]+)\s*\])?\s*:\s*(?P<words>.*)$", re.IGNORECASE)
_KEYS = re.compile(r"^[0-9*#]+$")


@dataclass(frozen=True)
class Heard:
    """One Gather result as Twilio sends it: ``digits`` or ``speech`` (+ ``confidence`` 0-1), or neither
    (silence)."""

    digits: str | None = None
    speech: str | None = None
    confidence: float | None = None
    #: The nurse line's ``<Dial>`` outcome (``DialCallStatus``: completed, busy, no-answer, failed).
    dial_status: str | None = None

    def shown(self) -> str:
        if self.dial_status:
            return f"[nurse line: {self.dial_status}]"
        if self.digits:
            return f"[keys {self.digits}]"
        if self.speech is not None:
            level = f" ({self.confidence:g})" if self.confidence is not None else ""
            return f'"{self.speech}"{level}'
        return "[silence]"


def parse_line(line: str) -> Heard | None:
    """A typed line → what the phone sends: ``"183#"`` keys, ``"say: no"`` / ``"say[0.4]: 183"`` speech,
    ``""`` silence. None: not a valid line (e.g. letters without ``say:``)."""
    text = line.strip()
    if not text:
        return Heard()
    if _KEYS.match(text):
        return Heard(digits=text)
    match = _SAY.match(text)
    if match is None:
        return None
    raw = match.group("confidence")
    confidence: float | None = None
    if raw is not None:
        try:
            confidence = float(raw)
        except ValueError:
            return None
        if not 0.0 <= confidence <= 1.0:
            return None
    words = match.group("words").strip()
    return Heard(speech=words, confidence=confidence) if words else Heard()


def gather_note(turn: v.Turn, language: str = "en") -> str:
    """A compact note of how the turn listens: ``[keys 1 digit | speech]``, ``[keys, # to end | speech]``,
    ``[dials 555…]`` or ``[hangs up]``."""
    if turn.dial:
        return f"[dials {turn.dial}]"
    if turn.gather is None:
        return "[hangs up]"
    spec = turn.gather
    keys = "keys, 1 digit" if spec.num_digits == 1 else "keys, # to end" if spec.finish_on_key else "keys"
    speech = f" | speech {spec.language}" if "speech" in spec.input else ""
    return f"[{keys}{speech}]"


@dataclass(frozen=True)
class PhoneStep:
    """What one request did: ``turn`` (what the caller hears next) and the engine's events (answers saved,
    escalations), empty when the engine was not called (a read-back, a re-prompt after silence)."""

    turn: v.Turn
    events: tuple[engine.Event, ...] = ()

    def said(self) -> str:
        return "\n".join(self.turn.lines())


@dataclass
class PhoneCall:
    """One simulated call on ``flow`` (``ctx.channel`` is forced to ``"voice"``).

    ``nurse_line``: the program's nurse number (an EMERGENCY offers 0 to dial it). ``flows``: where a
    chained flow (PHQ-2 → PHQ-9) is found, so it goes on in the same call as on the real one.
    """

    flow: Flow
    ctx: engine.PatientContext
    intents: GlobalIntents
    now: dt.datetime
    nurse_line: str | None = None
    threshold: float = v.DEFAULT_CONFIDENCE_THRESHOLD
    voices: Callable[[str], str] = field(default_factory=v.Voices)
    flows: Mapping[str, Flow] = field(default_factory=dict)
    state: engine.State | None = None
    #: ``None`` while in the flow, ``"confirm"`` at a read-back, ``"emergency"`` after 911 with a nurse
    #: line (``"emergency_again"`` once the offer was made again, ``"dialed"`` while the nurse line rings),
    #: ``"ended"`` once the call says goodbye.
    after: str | None = None
    confirm_text: str = ""
    reprompted: bool = False
    last_question: v.Turn | None = None
    opted_out_of_calls: bool = False
    #: The emergency lines (911 / 988) said, repeated when the nurse offer gets another reply.
    advice: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.ctx = replace(self.ctx, channel="voice")

    @property
    def language(self) -> str:
        return self.state.language if self.state is not None else self.ctx.language

    @property
    def ended(self) -> bool:
        return self.after == v.ENDED

    @property
    def dialing(self) -> bool:
        """The nurse line is ringing: the next result is its ``dial_status``."""
        return self.after == v.DIALED

    # ------------------------------------------------------------------------------------ the call
    def start(self) -> PhoneStep:
        """The call is answered: the flow's opening, "to stop these calls, press 9", the first question."""
        step = engine.start(self.flow, self.ctx, self.now, self.intents)
        events = list(step.events)
        self.state = step.state
        turn = self._turn_after(step, events)
        return PhoneStep(v.with_opt_out_offer(turn, self.language), tuple(events))

    def hear(self, heard: Heard) -> PhoneStep:
        """A Gather result (keys, speech or silence) → the next turn, as the Gather webhook answers it."""
        if self.state is None:
            raise RuntimeError("start the call first")
        language = self.language
        voice = self.voices(language)
        if self.ended:
            return PhoneStep(v.simple_turn([v.goodbye_text(language)], language, voice))
        if self.after == v.DIALED:
            self.after = v.ENDED
            return PhoneStep(v.after_dial(heard.dial_status, language, voice))
        if self.after in (v.EMERGENCY, v.EMERGENCY_AGAIN) and self.nurse_line:
            turn, self.after = v.after_emergency(
                heard.digits, heard.speech, advice=self.advice, asked_again=self.after == v.EMERGENCY_AGAIN,
                nurse_line=self.nurse_line, language=language, voice=voice,
            )  # fmt: skip
            return PhoneStep(turn)
        if self.after == "confirm":
            return self._confirmed(heard)
        node = self.pending_node()
        got = v.read_input(
            node,
            language,
            digits=heard.digits,
            speech=heard.speech,
            confidence=heard.confidence,
            threshold=self.threshold,
            intents=self.intents,
            guarded=self.state is not None and v.guards_opt_out(self._flow_of(self.state), node),
        )
        if got.kind == "opt_out":
            self.opted_out_of_calls = True
            self.state = replace(self.state, status="stopped", result="opted_out_of_calls", wake_at=None)
            self.after = "ended"
            return PhoneStep(v.simple_turn([v.opted_out_text(language)], language, voice))
        if got.kind == "silence":
            if not self.reprompted:
                self.reprompted = True
                return PhoneStep(self._ask_again([v.silence_text(language)]))
            self.reprompted = False
            return self._step(engine.Silence())
        if got.kind == "confirm":
            self.after = "confirm"
            self.confirm_text = got.text
            return PhoneStep(v.key_turn([], [v.confirm_text(got.display, language)], language, voice))
        self.reprompted = False
        return self._step(engine.Reply(got.text, got.mode))

    @property
    def waiting(self) -> bool:
        """The call ended at a wait (a snooze): :meth:`call_back` once it is over."""
        return self.state is not None and v.waits(self._flow_of(self.state), self.state)

    def call_back(self, now: dt.datetime) -> PhoneStep:
        """The wait is over at ``now``: the new call the patient gets (the engine's timeout at the wait),
        with "to stop these calls, press 9" and the question the wait leads to. Raises RuntimeError when
        the call waits on nothing."""
        if not self.waiting:
            raise RuntimeError("the call waits on nothing")
        self.now, self.after, self.reprompted, self.confirm_text = now, None, False, ""
        step = self._step(engine.Timeout())
        return PhoneStep(v.with_opt_out_offer(step.turn, self.language), step.events)

    def pending_node(self) -> Node | None:
        """The question the call waits on (None while "right now?" is asked, or none)."""
        state = self.state
        if state is None or state.confirming or state.node is None or state.status != "active":
            return None
        flow = self._flow_of(state)
        node = flow.node(state.node)
        if node.type == "wait" and node.next:
            node = flow.node(node.next[0].goto)
        return node if node.type == "question" else None

    # ----------------------------------------------------------------------------------- internals
    def _flow_of(self, state: engine.State) -> Flow:
        return self.flows.get(state.flow_id, self.flow) if state.flow_id != self.flow.id else self.flow

    def _confirmed(self, heard: Heard) -> PhoneStep:
        """The reply to "I heard …, press 1 if that is right": words are triaged first."""
        self.after = None
        text, self.confirm_text = self.confirm_text, ""
        if heard.speech and not heard.digits:
            verdict = self.intents.assess(heard.speech, self.language)
            if verdict.emergency or verdict.confirm:
                return self._step(engine.Reply(heard.speech, "speech"))
        if v.read_confirm(heard.digits, heard.speech):
            return self._step(engine.Reply(text, "speech"))
        return PhoneStep(self._ask_again([]))

    def _ask_again(self, lead: list[str]) -> v.Turn:
        language = self.language
        previous = self.last_question
        if previous is None:
            return v.question_turn([], self.pending_node(), language, self.voices(language), asking=True)
        return replace(previous, say=tuple(lead), prompt=v.without_apology(previous.prompt, language))

    def _step(self, given: engine.Input) -> PhoneStep:
        assert self.state is not None
        flow = self._flow_of(self.state)
        step = engine.resume(flow, self.state, self.ctx, given, self.now, self.intents)
        events = list(step.events)
        self.state = step.state
        return PhoneStep(self._turn_after(step, events), tuple(events))

    def _turn_after(self, step: engine.Step, events: list[engine.Event]) -> v.Turn:
        """The turn after an engine step (``events`` gets a chained flow's events too)."""
        assert self.state is not None
        said = [e for e in step.events if isinstance(e, engine.Say)]
        language = self.language
        voice = self.voices(language)
        if any(s.purpose == "emergency" for s in said):
            self.after = v.EMERGENCY if self.nurse_line else v.ENDED
            self.advice = tuple(s.text for s in said if s.purpose == "emergency")
            return v.emergency_turn([s.text for s in said], language, voice, self.nurse_line)
        if self.state.status != "active":
            chained = next((e.start_flow for e in step.events if isinstance(e, engine.Completed)), None)
            follow = self.flows.get(chained) if chained else None
            if follow is not None:
                nxt = engine.start(follow, replace(self.ctx, language=language), self.now, self.intents)
                events.extend(nxt.events)
                said.extend(e for e in nxt.events if isinstance(e, engine.Say))
                self.state = nxt.state
        # A wait (a snooze) asks nothing until it is over: its line, goodbye, and a call back after it.
        asking = self.state.status == "active" and not self.waiting
        turn = v.question_turn(said, self.pending_node() if asking else None, language, voice, asking=asking)
        if asking:
            self.last_question = turn
        else:
            self.after = "ended"
        return turn
