"""The conversation engine: a pure step function over a compiled flow.

``start`` and ``resume`` take the flow, the conversation state, the patient's context, one input and
the time, and return the new state and the events that the service layer applies (save answers, queue
a text, open an escalation). No I/O happens here, so every flow can be tested as a transcript and
rendered to any channel.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.flows.answers import (
    CHOICE_MEANINGS,
    extra_words,
    parse_choice,
    parse_meter_flag,
    parse_number,
    parse_partial,
    parse_scale,
    parse_symptom_yes_no,
    parse_unknown,
    parse_yes_no,
)
from app.flows.instructions import instruction, join, opt_out_line, render_prompt, render_text
from app.flows.instructions import reprompt as reprompt_for
from app.flows.intents import GlobalIntents, confirm_reply
from app.flows.keywords import opt_out_sentence_text
from app.flows.model import LEVELS, Condition, Flow, Node, Rule, Score
from app.flows.safety import (
    confirm_no_text,
    confirm_question,
    confirm_reprompt,
    emergency_text,
    not_now_safety_text,
    nurse_today_text,
)
from app.flows.text import tokens
from app.i18n import gettext_for, normalise_language
from app.triage.verdict import Finding, Verdict

MAX_REPROMPTS = 2
MAX_STEPS = 200
#: The escalation opened at the end of a conversation that left assessment questions unanswered.
COULD_NOT_ASSESS = "could-not-assess"

Value = float | bool | str | None


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Reply:
    text: str
    mode: Literal["text", "digits", "speech"] = "text"


@dataclass(frozen=True)
class Timeout:
    pass


@dataclass(frozen=True)
class Silence:
    """Nothing heard at a question on a call, after its one re-prompt (app/flows/voice.py): the question is
    left unanswered (saved as ``unanswered``, never as "not sure") and the flow goes on by its
    ``on_unanswered`` path or its next question. Silence to "right now?" keeps the URGENT item open."""


Input = Reply | Timeout | Silence


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Say:
    text: str
    purpose: str = "prompt"  # prompt | reprompt | reminder | escalation | emergency | closing | info


@dataclass(frozen=True)
class SaveAnswer:
    question_id: str
    kind: str
    value: Value
    unit: str | None
    raw: str


@dataclass(frozen=True)
class Escalate:
    rule_id: str
    level: str
    reason: str
    detail: Mapping[str, Any]
    crisis_line: bool = False


@dataclass(frozen=True)
class NotUnderstood:
    question_id: str | None


@dataclass(frozen=True)
class Completed:
    result: str
    #: A flow to start next for this patient (PHQ-2 positive → PHQ-9), if any.
    start_flow: str | None = None


@dataclass(frozen=True)
class LanguageChanged:
    language: str


@dataclass(frozen=True)
class NeedsReview:
    """The reply was taken as an answer, and a person should read it too.

    ``why``: ``more_than_yes_no`` (a yes/no that says more: "no but my ankles are huge") or ``unknown``
    ("no sé"). The service marks the inbound message for review, as for :class:`NotUnderstood`.
    """

    question_id: str
    why: str


@dataclass(frozen=True)
class OptOutRequested:
    """An opt-out written as a sentence ("please stop texting me"): flag the message for staff."""


@dataclass(frozen=True)
class UpdateRecord:
    """A flow's ``effects:`` entry now holds: change the patient's record (``changes``: field → value, see
    ``model.RECORD_FIELDS``). Applied by the service layer (app/patients/record_updates.py)."""

    effect_id: str
    changes: Mapping[str, str | bool]


Event = (
    Say
    | SaveAnswer
    | Escalate
    | NotUnderstood
    | Completed
    | LanguageChanged
    | OptOutRequested
    | NeedsReview
    | UpdateRecord
)


# ----------------------------------------------------------------------------------------------- state
@dataclass(frozen=True)
class PastAnswer:
    question_id: str
    value: Value
    at: dt.datetime


@dataclass(frozen=True)
class PatientContext:
    first_name: str
    language: str
    program_name: str
    program_phone: str
    history: Sequence[PastAnswer] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    education: Mapping[str, str] = field(default_factory=dict)
    #: IANA time zone: "yesterday" in the rise/fall rules is the patient's calendar day.
    timezone: str = "UTC"
    #: "sms" (the console channel counts as SMS) or "voice": how answer instructions, re-prompts and the
    #: opt-out line are worded (app/flows/instructions.py).
    channel: str = "sms"


@dataclass(frozen=True)
class State:
    flow_id: str
    flow_version: str
    language: str
    node: str | None
    status: str = "active"  # active | completed | expired
    result: str | None = None
    attempts: int = 0
    answers: Mapping[str, Value] = field(default_factory=dict)
    fired: tuple[str, ...] = ()
    reminded: bool = False
    started_at: str = ""
    wake_at: str | None = None
    #: Grouped rule firings of this conversation (see ``Rule.group``): group, rule_id, reason, level.
    group_fires: tuple[Mapping[str, Any], ...] = ()
    #: The highest level each group has told the patient in this conversation.
    groups_told: Mapping[str, str] = field(default_factory=dict)
    #: Assessment questions left without an answer (unanswered or "I don't know").
    unassessed: tuple[str, ...] = ()
    #: Whether the patient replied at all in this conversation.
    replied: bool = False
    #: Questions the patient replied to but that stayed without a value: "not sure" / "no sé", or replies
    #: that could not be read after the re-prompts (never silence). Tested by ``{answer: q, unknown: true}``.
    unknown: tuple[str, ...] = ()
    #: Red flags waiting on the patient's answer to "right now?" (their URGENT escalations are open);
    #: ``node`` stays the question the flow was at (None: a check started outside any flow).
    confirming: tuple[Finding, ...] = ()
    #: How many times "right now?" has been asked for ``confirming``.
    confirm_asked: int = 0
    #: The reply that raised "right now?" when it also answers the pending question ("yes, for chest pain
    #: last week" to "have you gone to an ER?"): after "not now" (or an unclear reply) it is taken as the
    #: answer and the flow goes on, instead of asking the question again and losing the answer.
    held_reply: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "flow_version": self.flow_version,
            "language": self.language,
            "node": self.node,
            "status": self.status,
            "result": self.result,
            "attempts": self.attempts,
            "answers": dict(self.answers),
            "fired": list(self.fired),
            "reminded": self.reminded,
            "started_at": self.started_at,
            "wake_at": self.wake_at,
            "group_fires": [dict(p) for p in self.group_fires],
            "groups_told": dict(self.groups_told),
            "unassessed": list(self.unassessed),
            "replied": self.replied,
            "unknown": list(self.unknown),
            "confirming": [
                {
                    "reason": f.reason,
                    "status": f.status,
                    "crisis_line": f.crisis_line,
                    "poison_control": f.poison_control,
                    "violence_line": f.violence_line,
                    "evidence": f.evidence,
                }
                for f in self.confirming
            ],
            "confirm_asked": self.confirm_asked,
            "held_reply": self.held_reply,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State:
        return cls(
            flow_id=data["flow_id"],
            flow_version=data["flow_version"],
            language=data["language"],
            node=data.get("node"),
            status=data.get("status", "active"),
            result=data.get("result"),
            attempts=int(data.get("attempts", 0)),
            answers=dict(data.get("answers", {})),
            fired=tuple(data.get("fired", ())),
            reminded=bool(data.get("reminded", False)),
            started_at=data.get("started_at", ""),
            wake_at=data.get("wake_at"),
            group_fires=tuple(dict(p) for p in data.get("group_fires", ())),
            groups_told=dict(data.get("groups_told", {})),
            unassessed=tuple(data.get("unassessed", ())),
            replied=bool(data.get("replied", False)),
            unknown=tuple(data.get("unknown", ())),
            confirming=tuple(
                Finding(
                    reason=str(f["reason"]),
                    status=f.get("status", "confirm"),
                    crisis_line=bool(f.get("crisis_line", False)),
                    poison_control=bool(f.get("poison_control", False)),
                    violence_line=bool(f.get("violence_line", False)),
                    evidence=str(f.get("evidence", "")),
                )
                for f in data.get("confirming", ())
            ),
            confirm_asked=int(data.get("confirm_asked", 0)),
            held_reply=data.get("held_reply"),
        )

    @property
    def wake_time(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.wake_at) if self.wake_at else None


@dataclass(frozen=True)
class Step:
    state: State
    events: tuple[Event, ...]

    def said(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Say)]


class FlowRuntimeError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------- engine
def start(
    flow: Flow,
    ctx: PatientContext,
    now: dt.datetime,
    intents: GlobalIntents | None = None,
    *,
    confirm: tuple[Finding, ...] = (),
) -> Step:
    """Begin ``flow``; with ``confirm`` (red flags to ask about, found outside any flow), begin by asking
    "right now?" (URGENT escalations open at once) and enter the flow only after a NO or unclear replies.
    """
    language = normalise_language(ctx.language)
    if language not in flow.languages:
        language = flow.languages[0]
    state = State(flow_id=flow.id, flow_version=flow.version, language=language, node=None, started_at=now.isoformat())
    events: list[Event] = []
    if confirm:
        wake = now + dt.timedelta(minutes=flow.waits.reminder_after_minutes)
        state = _ask_confirm(replace(state, wake_at=wake.isoformat()), confirm, events, ctx.channel)
        return Step(state, tuple(events))
    state = _enter(flow, state, ctx, flow.start, events, now)
    if not flow.internal:
        _add_opt_out(events, ctx, state.language)
    return Step(state, tuple(events))


def _add_opt_out(events: list[Event], ctx: PatientContext, language: str) -> None:
    """The first message of a conversation ends with how to stop ("Reply STOP to end texts." / "To stop
    these calls, press 9."): content never writes it (app/flows/instructions.py)."""
    for index, event in enumerate(events):
        if isinstance(event, Say):
            events[index] = Say(join(event.text, opt_out_line(ctx.channel, language)), event.purpose)
            return


def resume(
    flow: Flow, state: State, ctx: PatientContext, given: Input, now: dt.datetime, intents: GlobalIntents | None = None
) -> Step:
    if state.flow_version != flow.version:
        raise FlowRuntimeError(f"state is pinned to {state.flow_id}@{state.flow_version}, not {flow.version}")
    if state.status != "active" or (state.node is None and not state.confirming):
        return Step(state, (NotUnderstood(None),))
    events: list[Event] = []
    if isinstance(given, Timeout):
        if state.confirming and state.node is None:
            return Step(_confirm_timeout(state, events, now, flow, ctx.channel), tuple(events))
        # Silence to "right now?" inside a flow: the URGENT stays open; the flow's own timing goes on (with
        # the reply that raised it taken as the answer, when it was one).
        held = state.held_reply
        state = replace(state, confirming=(), confirm_asked=0, held_reply=None)
        if held is not None and state.node is not None and flow.node(state.node).type == "question":
            return Step(_answer(flow, state, ctx, flow.node(state.node), held, events, now), tuple(events))
        return Step(_timeout(flow, state, ctx, events, now), tuple(events))
    if isinstance(given, Silence):
        return Step(_silence(flow, state, ctx, events, now), tuple(events))
    intents = intents or GlobalIntents()
    text = given.text
    switch = intents.language_switch(text)
    if switch and switch in flow.languages:
        state = replace(state, language=switch, attempts=0)
        events.append(LanguageChanged(switch))
        if state.confirming:
            events.append(Say(confirm_question(_reasons(state.confirming), state.language, ctx.channel), "confirm"))
        else:
            assert state.node is not None
            events.append(Say(render_prompt(flow.node(state.node), state.language, ctx), "prompt"))
        return Step(state, tuple(events))
    # Triage runs on every reply, before anything else reads it (DESIGN §4.3): every reason fires.
    verdict = intents.assess(text, state.language)
    said_yes = bool(state.confirming) and confirm_reply(text) == "yes"
    if verdict.emergency or said_yes:
        return Step(_emergency(state, ctx, verdict, events, confirmed=said_yes), tuple(events))
    if state.confirming:
        return Step(_confirm_answer(flow, state, ctx, text, verdict, events, now), tuple(events))
    if verdict.confirm:
        if state.node is not None and state.held_reply is None:
            pending = flow.node(state.node)
            if pending.type == "question" and understand(pending, Reply(text), state.language) is not None:
                state = replace(state, held_reply=text)
        return Step(_ask_confirm(state, pending_findings(verdict), events, ctx.channel), tuple(events))
    if intents.opt_out_request(text):
        # Not an answer and not a failed attempt: one line on how to stop, and a flag for staff.
        events.append(OptOutRequested())
        if ctx.channel != "voice":
            events.append(Say(opt_out_sentence_text(state.language), "info"))
            return Step(state, tuple(events))
        # On a call: how to stop calls (key 9), then the question again.
        events.append(Say(opt_out_line("voice", state.language), "info"))
        if state.node is not None and flow.node(state.node).type == "question":
            events.append(Say(render_prompt(flow.node(state.node), state.language, ctx), "prompt"))
        return Step(state, tuple(events))
    assert state.node is not None
    current = state.node
    node = flow.node(current)
    if node.type == "wait":
        # A reply while a reminder is snoozed answers the question the wait leads to.
        node = flow.node(_choose_next(node, state, ctx, flow, now))
        state = replace(state, node=node.id, attempts=0, reminded=False)
    if node.type != "question":
        raise FlowRuntimeError(f"conversation waits on non-question node '{node.id}'")
    return Step(_answer(flow, state, ctx, node, text, events, now), tuple(events))


def _answer(
    flow: Flow, state: State, ctx: PatientContext, node: Node, text: str, events: list[Event], now: dt.datetime
) -> State:
    """A reply to the question ``node``: save it (or re-prompt), run the rules, go on."""
    state = replace(state, replied=True)
    understood = understand(node, Reply(text), state.language)
    if understood is None:
        state = replace(state, attempts=state.attempts + 1)
        events.append(NotUnderstood(node.id))
        if state.attempts <= MAX_REPROMPTS:
            events.append(Say(reprompt_text(node, state.language, ctx), "reprompt"))
            return state
        events.append(SaveAnswer(node.answer_id, "unanswered", None, None, text))
        return _left_unanswered(flow, state, ctx, node, events, now)
    if understood.kind == "unknown":
        events.append(SaveAnswer(node.answer_id, "unknown", None, None, text))
        events.append(NeedsReview(node.answer_id, "unknown"))
        return _left_unanswered(flow, state, ctx, node, events, now)
    events.append(SaveAnswer(node.answer_id, understood.kind, understood.value, understood.unit, text))
    if understood.review:
        events.append(NeedsReview(node.answer_id, understood.review))
    state = replace(state, answers={**state.answers, node.answer_id: understood.value}, attempts=0)
    state = _apply_rules(flow, state, ctx, events, now)
    if state.status != "active":
        return state
    target = _choose_next(node, state, ctx, flow, now)
    return _enter(flow, state, ctx, target, events, now)


def end_at_wait(flow: Flow, state: State, ctx: PatientContext, now: dt.datetime, result: str) -> Step:
    """End a conversation waiting at a ``wait`` node whose end cannot reach the patient (a snooze by phone
    that would end outside calling hours, with no texts): the question the wait leads to is saved
    ``unanswered`` (the dose is "not confirmed", never assumed taken), the flow's rules run on it, and the
    conversation ends ``expired`` with ``result`` (not ``no_response``: the patient did answer, so it is
    no missed check-in). Nothing is said but a rule's text. Raises FlowRuntimeError when not at a wait."""
    if state.status != "active" or state.confirming or state.node is None or flow.node(state.node).type != "wait":
        raise FlowRuntimeError("the conversation does not wait")
    events: list[Event] = []
    wait = flow.node(state.node)
    target = flow.node(_choose_next(wait, state, ctx, flow, now))
    state = replace(state, node=target.id, attempts=0, reminded=True)
    if target.type == "question":
        events.append(SaveAnswer(target.answer_id, "unanswered", None, None, ""))
        state = _record_unanswered(state, target)
        state = _apply_rules(flow, state, ctx, events, now)
        if state.status != "active":
            return Step(state, tuple(events))
    state = _wrap_up(state, events)
    events.append(Completed(result))
    return Step(replace(state, status="expired", result=result, wake_at=None), tuple(events))


def _left_unanswered(
    flow: Flow, state: State, ctx: PatientContext, node: Node, events: list[Event], now: dt.datetime
) -> State:
    """The question ends without a value (after the re-prompts, or "I don't know"); the flow goes on."""
    state = _record_unanswered(state, node)
    if node.answer_id not in state.unknown:
        state = replace(state, unknown=(*state.unknown, node.answer_id))
    state = _apply_rules(flow, state, ctx, events, now)
    if state.status != "active":
        return state
    target = node.on_unanswered or _choose_next(node, state, ctx, flow, now)
    return _enter(flow, state, ctx, target, events, now)


def _silence(flow: Flow, state: State, ctx: PatientContext, events: list[Event], now: dt.datetime) -> State:
    """A call's silence at the pending question (see :class:`Silence`)."""
    if state.confirming:
        state = replace(state, confirming=(), confirm_asked=0)
        if state.node is None:
            events.append(Completed("no_response"))
            return replace(state, status="expired", result="no_response", wake_at=None)
    assert state.node is not None
    node = flow.node(state.node)
    if node.type == "wait":
        node = flow.node(_choose_next(node, state, ctx, flow, now))
        state = replace(state, node=node.id, attempts=0, reminded=False)
    if node.type != "question":
        raise FlowRuntimeError(f"conversation waits on non-question node '{node.id}'")
    events.append(SaveAnswer(node.answer_id, "unanswered", None, None, ""))
    state = _record_unanswered(state, node)
    state = _apply_rules(flow, state, ctx, events, now)
    if state.status != "active":
        return state
    target = node.on_unanswered or _choose_next(node, state, ctx, flow, now)
    return _enter(flow, state, ctx, target, events, now)


def _record_unanswered(state: State, node: Node) -> State:
    unassessed = state.unassessed
    if node.assess and node.answer_id not in unassessed:
        unassessed = (*unassessed, node.answer_id)
    return replace(state, answers={**state.answers, node.answer_id: None}, attempts=0, unassessed=unassessed)


@dataclass(frozen=True)
class Understood:
    """A reply read as an answer.

    ``kind``: the question's type, ``meter`` (a meter flag saved as text, "LO") or ``unknown``
    ("I don't know": value None). ``review``: why a person should also read the reply, if so.
    """

    value: Value
    unit: str | None
    kind: str
    review: str | None = None


def understand(node: Node, given: Reply, language: str) -> Understood | None:
    """The typed value of a reply to a question, or None when it is not a valid answer (re-prompt).

    Rules, in every supported language (app/flows/answers.py has the words):
    - yes/no: "not sure" / "no sé" is UNKNOWN; on a ``symptom`` question a hedge ("a little", "un poco")
      is YES; a yes or no that says more ("no but my ankles are huge") is kept and marked for review.
    - number: digits or number words ("ciento ochenta y tres"), converted to the question's unit and
      within [min, max]; a letter among the digits ("l83") is re-asked; with ``meter`` the flags
      ("LO", "low", "bajo", "HI", "alto") are saved as the meter's text; "not sure" is UNKNOWN.
    - scale and choice: a number or the choice's words (a longer phrase beats a word inside it, a
      negated word selects nothing); otherwise "not sure" is UNKNOWN. A scale number with more words
      ("0 but I think about it") is kept and marked for review (``more_than_scale``).
    - text: the reply, up to 1,600 characters.
    """
    text = given.text
    languages = (language, *(lang for lang in ("en", "es") if lang != language))
    if node.question_type == "yes_no":
        if parse_unknown(text):
            return Understood(None, None, "unknown")
        if node.partly is False and parse_partial(text):
            # "a little", "not much", "apenas": only partly is the worrying answer here (rescue inhaler).
            return Understood(False, None, "yes_no")
        answer = parse_symptom_yes_no(text) if node.symptom else parse_yes_no(text)
        if answer is None:
            return None
        more = extra_words(text, _question_words(node))
        return Understood(answer, None, "yes_no", "more_than_yes_no" if more else None)
    if node.question_type == "number":
        number = parse_number(text, unit=node.unit, languages=languages)
        if number is None:
            side = parse_meter_flag(text) if node.meter else None
            if side is not None and side in node.meter:
                return Understood(node.meter[side], node.unit, "meter")
            return Understood(None, None, "unknown") if parse_unknown(text) else None
        assert node.minimum is not None and node.maximum is not None
        if not node.minimum <= number.value <= node.maximum:
            return None
        return Understood(number.value, number.unit, "number")
    if node.question_type in {"scale", "choice"} and parse_unknown(text) and not _lists_unknown(node):
        # "No sé" at "1 Yes 2 No" is not a NO; a flow that lists such words (ketones: "I can't check")
        # takes them as its own choice.
        return Understood(None, None, "unknown")
    if node.question_type == "scale":
        assert node.minimum is not None and node.maximum is not None
        scaled = parse_scale(text, int(node.minimum), int(node.maximum), languages=languages)
        if scaled is not None:
            # "0 but I think about it": the point is kept, and a person reads what else was said.
            more = extra_words(text, _question_words(node) | _choice_word_set(node))
            return Understood(float(scaled), None, "scale", "more_than_scale" if more else None)
        if node.choices:
            # Only words here: on a 0-3 scale "4" is out of range, not the fourth label.
            named = parse_choice(text, _choice_words(node, language), by_number=False)
            point = node.choice_value(named) if named is not None else None
            if point is not None:
                return Understood(float(point), None, "scale")
        return Understood(None, None, "unknown") if parse_unknown(text) else None
    if node.question_type == "choice":
        chosen = parse_choice(text, _choice_words(node, language))
        if chosen is not None:
            return Understood(chosen, None, "choice")
        return Understood(None, None, "unknown") if parse_unknown(text) else None
    stripped = text.strip()
    return Understood(stripped[:1600], None, "text") if stripped else None


def _lists_unknown(node: Node) -> bool:
    """Whether a choice of the question lists an "I don't know" phrase among its words."""
    return any(parse_unknown(word) for choice in node.choices for words in choice.words.values() for word in words)


def _question_words(node: Node) -> set[str]:
    """The words of a question in every language, with its answer instructions on every channel: echoing
    them ("yes I am short of breath", "yes reply yes") says nothing more."""
    said = [*node.text.values()]
    said += [instruction(node, channel, language) for channel in ("sms", "voice") for language in node.text]
    return {w for text in said for w in tokens(text)}


def _choice_word_set(node: Node) -> set[str]:
    """Every word of a question's choices (labels and listed words) in every language."""
    return {
        w
        for c in node.choices
        for text in (*c.label.values(), *(x for ws in c.words.values() for x in ws))
        for w in tokens(text)
    }


def _choice_words(node: Node, language: str) -> list[tuple[str, list[str]]]:
    """Each choice's label and words in every language: a Spanish speaker's "better" still counts.

    A choice that ``means`` low, high or cancel also takes those words of app/flows/answers.py
    (CHOICE_MEANINGS: "bajo", "alto", "cancelar"): words that are also whole-message keywords are understood
    there, never listed in a flow.
    """
    return [
        (
            c.id,
            [
                c.label.get(language, ""),
                *c.label.values(),
                *(w for ws in c.words.values() for w in ws),
                *(CHOICE_MEANINGS.get(c.means, ()) if c.means else ()),
            ],
        )
        for c in node.choices
    ]


def pending_prompt(flow: Flow, state: State, ctx: PatientContext) -> Say | None:
    """The pending question as it was asked ("right now?" while a red flag waits), to ask it again on
    another channel (an inbound call that picks up a texted check-in); None when nothing is pending."""
    if state.status != "active":
        return None
    if state.confirming:
        return Say(confirm_question(_reasons(state.confirming), state.language, ctx.channel), "confirm")
    if state.node is None:
        return None
    node = flow.node(state.node)
    if node.type == "wait":
        node = flow.node(node.next[0].goto) if node.next else node
    if node.type != "question":
        return None
    return Say(render_prompt(node, state.language, ctx), "prompt")


def understands(flow: Flow, state: State, text: str) -> bool:
    """Whether the conversation's pending question reads the whole of ``text`` as a valid answer.

    Used before consent keywords (app/flows/routing.py): "Alto" at a question that offers it is an
    answer, not an opt-out. While "right now?" is pending, that question is the one asked.
    """
    if state.status != "active":
        return False
    if state.confirming:
        return confirm_reply(text) is not None
    if state.node is None:
        return False
    node = flow.node(state.node)
    candidates = [node] if node.type == "question" else [flow.node(b.goto) for b in node.next]
    return any(c.type == "question" and understand(c, Reply(text), state.language) is not None for c in candidates)


# ------------------------------------------------------------------------- triage: emergency and confirm
def _reasons(findings: Sequence[Finding]) -> list[str]:
    return list(dict.fromkeys(f.reason for f in findings))


def pending_findings(verdict: Verdict) -> tuple[Finding, ...]:
    """The findings behind ``verdict.to_confirm``, one per reason."""
    wanted = set(verdict.to_confirm)
    chosen: dict[str, Finding] = {}
    for finding in verdict.findings:
        if finding.status == "confirm" and finding.reason in wanted:
            chosen.setdefault(finding.reason, finding)
    return tuple(chosen.values())


def confirm_escalation(finding: Finding, detail: Mapping[str, Any]) -> Escalate:
    """The same-day (URGENT) item for a past, resolved or uncertain red flag (rule ``confirm:<reason>``),
    opened at once whether or not the "right now?" question can be asked (DESIGN §4.3)."""
    return Escalate(
        rule_id=f"confirm:{finding.reason}",
        level="URGENT",
        reason=finding.reason,
        detail={**detail, "evidence": finding.evidence},
        crisis_line=finding.crisis_line,
    )


def _ask_confirm(state: State, findings: Sequence[Finding], events: list[Event], channel: str = "sms") -> State:
    """A past, resolved or uncertain red flag: an URGENT item per reason at once, and "right now?"."""
    events.extend(confirm_escalation(f, {"question": state.node, "asked": "right_now"}) for f in findings)
    pending = tuple({f.reason: f for f in (*state.confirming, *findings)}.values())
    events.append(Say(confirm_question(_reasons(pending), state.language, channel), "confirm"))
    return replace(state, confirming=pending, confirm_asked=1)


def _emergency(state: State, ctx: PatientContext, verdict: Verdict, events: list[Event], *, confirmed: bool) -> State:
    """Every current red flag (and, after YES to "right now?", every pending one) → EMERGENCY; one text."""
    current = [f for f in verdict.findings if f.status == "current"]
    if confirmed:
        current += [replace(f, status="current") for f in state.confirming]
    pending = {p.reason for p in state.confirming}
    detail: dict[str, Any] = {"question": state.node}
    if confirmed:
        detail["confirmed_right_now"] = sorted(pending)
    to_confirm = [f for f in pending_findings(verdict) if f.reason not in pending]
    events.extend(emergency_events(current, to_confirm, state.language, ctx, detail))
    return _finish(replace(state, confirming=(), confirm_asked=0), "red_flag", events)


def emergency_events(
    current: Sequence[Finding],
    to_confirm: Sequence[Finding],
    language: str,
    ctx: PatientContext,
    detail: Mapping[str, Any],
) -> list[Event]:
    """One EMERGENCY ``Escalate`` per current reason (rule ``red-flag:<reason>``), an URGENT one per mention
    to confirm beside them (rule ``confirm:<reason>``), and ONE text: 911, plus 988 when any reason needs the
    crisis line, plus Poison Control when any needs it (DESIGN §4.3: every matching reason fires)."""
    events: list[Event] = []
    fired: dict[str, Finding] = {}
    for finding in current:
        if finding.reason in fired:
            continue
        fired[finding.reason] = finding
        events.append(
            Escalate(
                rule_id=f"red-flag:{finding.reason}",
                level="EMERGENCY",
                reason=finding.reason,
                detail={**detail, "evidence": finding.evidence},
                crisis_line=finding.crisis_line,
            )
        )
    events.extend(confirm_escalation(f, detail) for f in to_confirm if f.reason not in fired)
    told = list(fired.values())
    text = emergency_text(
        language,
        ctx,
        crisis_line=any(f.crisis_line for f in (*told, *to_confirm)),
        poison_control=any(f.poison_control for f in (*told, *to_confirm)),
        violence_line=any(f.violence_line for f in (*told, *to_confirm)),
        physical=any(not f.crisis_line for f in told),
    )
    events.append(Say(text, "emergency"))
    return events


def _confirm_answer(
    flow: Flow, state: State, ctx: PatientContext, text: str, verdict: Verdict, events: list[Event], now: dt.datetime
) -> State:
    """A reply to "right now?" that is not YES (YES is an emergency): NO, or unclear (asked once more)."""
    answer = confirm_reply(text)
    if answer is None and state.confirm_asked < 2:
        events.append(NotUnderstood(state.node))
        events.append(Say(confirm_reprompt(_reasons(state.confirming), state.language, ctx.channel), "confirm"))
        return replace(state, confirm_asked=state.confirm_asked + 1)
    if answer is None:
        events.append(NotUnderstood(state.node))
    asked = state.confirming
    state = replace(state, confirming=(), confirm_asked=0)
    new = tuple(f for f in pending_findings(verdict) if answer == "no")
    if new:
        # "No, but the chest pain went away an hour ago": another mention to ask about.
        return _ask_confirm(state, new, events, ctx.channel)
    if state.node is None:
        # A check started outside any flow: the flow is its closing (thanks, a nurse will call today), then
        # what to do if it happens, by kind of reason (988 for suicide, Poison Control for a dose).
        state = _enter(flow, state, ctx, flow.start, events, now)
        done = next((i for i, e in enumerate(events) if isinstance(e, Completed)), len(events))
        events.insert(done, Say(not_now_safety_text(state.language, asked), "closing"))
        return state
    if answer == "no":
        told = confirm_no_text(state.language, asked)
    else:
        told = nurse_today_text(state.language, ctx.program_name)
        lines = [f for f in asked if f.crisis_line or f.poison_control or f.violence_line]
        told = f"{told} {not_now_safety_text(state.language, lines)}".strip() if lines else told
    events.append(Say(told, "escalation"))
    node = flow.node(state.node)
    held, state = state.held_reply, replace(state, held_reply=None)
    if node.type == "question" and held is not None:
        # The reply that raised "right now?" answered the question too: save it and go on.
        return _answer(flow, state, ctx, node, held, events, now)
    if node.type == "question":
        events.append(Say(render_prompt(node, state.language, ctx), "prompt"))
    return state


def _confirm_timeout(state: State, events: list[Event], now: dt.datetime, flow: Flow, channel: str = "sms") -> State:
    """Silence to a "right now?" asked outside any flow: one reminder, then expire; the URGENT stays open."""
    if not state.reminded:
        _ = gettext_for(state.language)
        prefix = _("Reminder:")
        question = confirm_question(_reasons(state.confirming), state.language, channel)
        events.append(Say(f"{prefix} {question}", "reminder"))
        started = dt.datetime.fromisoformat(state.started_at)
        expire = max(started + dt.timedelta(minutes=flow.waits.expire_after_minutes), now + dt.timedelta(minutes=1))
        return replace(state, reminded=True, wake_at=expire.isoformat())
    events.append(Completed("no_response"))
    return replace(state, status="expired", result="no_response", wake_at=None, confirming=(), confirm_asked=0)


# ------------------------------------------------------------------------------------------- internals
def _enter(flow: Flow, state: State, ctx: PatientContext, node_id: str, events: list[Event], now: dt.datetime) -> State:
    for _ in range(MAX_STEPS):
        node = flow.node(node_id)
        if node.type in {"message", "education"}:
            text = node.text
            if node.type == "education" and node.education and node.education in ctx.education:
                events.append(Say(ctx.education[node.education], "info"))
            if text:
                events.append(Say(render_text(text, state.language, ctx), "info"))
            node_id = _choose_next(node, state, ctx, flow, now)
            continue
        if node.type == "question" and node.same_as is not None and node.same_as in state.answers:
            # A shared question of a combined check-in, asked already: go on from its branches.
            node_id = _choose_next(node, state, ctx, flow, now)
            continue
        if node.type == "question":
            events.append(Say(render_prompt(node, state.language, ctx), "prompt"))
            wake = now + dt.timedelta(minutes=flow.waits.reminder_after_minutes)
            return replace(state, node=node.id, attempts=0, reminded=False, wake_at=wake.isoformat())
        if node.type == "wait":
            if node.text:
                events.append(Say(render_text(node.text, state.language, ctx), "info"))
            wake = now + dt.timedelta(minutes=node.wait_minutes)
            return replace(state, node=node.id, attempts=0, reminded=True, wake_at=wake.isoformat())
        if node.text:
            events.append(Say(render_text(node.text, state.language, ctx), "closing"))
        return _finish(replace(state, node=node.id), node.result, events, node.start_flow)
    raise FlowRuntimeError(f"flow {flow.id} loops without asking anything")


def _finish(state: State, result: str, events: list[Event], start_flow: str | None = None) -> State:
    state = _wrap_up(state, events)
    events.append(Completed(result, start_flow))
    return replace(state, status="completed", result=result, wake_at=None)


def _wrap_up(state: State, events: list[Event]) -> State:
    """The end of a conversation, however it ends: assessment questions left without an answer open one
    ROUTINE ``could_not_assess`` (not when the patient never replied: two missed check-ins are the
    "unreachable" rule's job, DESIGN §4.3)."""
    if state.unassessed and state.replied and COULD_NOT_ASSESS not in state.fired:
        events.append(
            Escalate(
                rule_id=COULD_NOT_ASSESS,
                level="ROUTINE",
                reason="could_not_assess",
                detail={"questions": list(state.unassessed)},
            )
        )
        state = replace(state, fired=(*state.fired, COULD_NOT_ASSESS))
    return state


def _fire_grouped(
    rule: Rule, detail: Mapping[str, Any], state: State, ctx: PatientContext, events: list[Event]
) -> State:
    """A sign of a group (see ``Rule.group``): escalated at once, joined to the group's one task, told once.

    Why at once: a nurse must see an URGENT sign when it is found, not when the check-in ends (a patient who
    stops answering would otherwise hold it back). Why one task: every non-emergency sign of the group is
    escalated under the reason of the group's first such sign, so the service joins them (raising the level)
    into one escalation whose ``detail`` carries ``signs``, ``sign_rules`` and ``sign_count`` (distinct
    reasons so far), by which the queue ranks it. An EMERGENCY sign is its own escalation (911 is another
    action). The patient hears the group's text only when it is louder than what the group has already told,
    and never a lower one after an emergency text in the same step.
    """
    earlier = [f for f in state.group_fires if f["group"] == rule.group]
    fires = [*earlier, {"group": rule.group, "rule_id": rule.id, "reason": rule.reason, "level": rule.level}]
    signs = list(dict.fromkeys(str(f["reason"]) for f in fires))
    joined = [str(f["reason"]) for f in earlier if f["level"] != "EMERGENCY"]
    reason = rule.reason if rule.level == "EMERGENCY" or not joined else joined[0]
    events.append(
        Escalate(
            rule_id=rule.id,
            level=rule.level,
            reason=reason,
            detail={
                **detail,
                "group": rule.group,
                "sign": rule.reason,
                "signs": signs,
                "sign_rules": [str(f["rule_id"]) for f in fires],
                "sign_count": len(signs),
            },
            crisis_line=rule.crisis_line,
        )
    )
    group = str(rule.group)
    told = dict(state.groups_told)
    before = told.get(group)
    louder = before is None or LEVELS.index(rule.level) < LEVELS.index(before)
    emergency_said = any(isinstance(e, Say) and e.purpose == "emergency" for e in events)
    text = _rule_text(rule, state.language, ctx)
    if text and louder and not (emergency_said and rule.level != "EMERGENCY"):
        events.append(Say(text, "emergency" if rule.level == "EMERGENCY" else "escalation"))
        told[group] = rule.level
    return replace(state, fired=(*state.fired, rule.id), group_fires=(*state.group_fires, fires[-1]), groups_told=told)


def _timeout(flow: Flow, state: State, ctx: PatientContext, events: list[Event], now: dt.datetime) -> State:
    assert state.node is not None
    node = flow.node(state.node)
    if node.type == "wait":
        state = replace(state, started_at=now.isoformat())
        return _enter(flow, state, ctx, _choose_next(node, state, ctx, flow, now), events, now)
    if not state.reminded:
        _ = gettext_for(state.language)
        prefix = _("Reminder:")
        events.append(Say(f"{prefix} {render_prompt(node, state.language, ctx)}", "reminder"))
        started = dt.datetime.fromisoformat(state.started_at)
        expire = max(started + dt.timedelta(minutes=flow.waits.expire_after_minutes), now + dt.timedelta(minutes=1))
        return replace(state, reminded=True, wake_at=expire.isoformat())
    # No answer is an answer too: "missed" counts toward streak rules (three missed doses in a row).
    events.append(SaveAnswer(node.answer_id, "unanswered", None, None, ""))
    state = _record_unanswered(state, node)
    state = _apply_rules(flow, state, ctx, events, now)
    if state.status != "active":
        return state
    state = _wrap_up(state, events)
    events.append(Completed("no_response"))
    return replace(state, status="expired", result="no_response", wake_at=None)


def _choose_next(node: Node, state: State, ctx: PatientContext, flow: Flow, now: dt.datetime) -> str:
    for branch in node.next:
        if branch.when is None or evaluate(branch.when, state, ctx, flow, now)[0]:
            return branch.goto
    raise FlowRuntimeError(f"node '{node.id}' has no branch to take")


def _apply_rules(flow: Flow, state: State, ctx: PatientContext, events: list[Event], now: dt.datetime) -> State:
    """Fire each rule whose condition now holds, once per conversation.

    A rule fires an :class:`Escalate` and its text at once; a rule with a ``group`` joins its group's one
    task and is told once per level (:func:`_fire_grouped`). The flow's record effects are emitted first
    (:func:`_apply_effects`), so a rule that ends the conversation does not lose them.
    """
    state = _apply_effects(flow, state, ctx, events, now)
    for rule in flow.rules:
        if rule.id in state.fired:
            continue
        hit, detail = evaluate(rule.when, state, ctx, flow, now)
        if not hit:
            continue
        if rule.group:
            state = _fire_grouped(rule, detail, state, ctx, events)
            if rule.stop:
                return _finish(state, "escalated", events)
            continue
        told = _rule_text(rule, state.language, ctx)
        this_step = {e.rule_id for e in events if isinstance(e, Escalate)}
        # One text per reason: a rule of the same reason already told the same words in this
        # conversation, or fired in this same step (the patient is told once); new advice is said.
        already_told = any(
            r.reason == rule.reason and (r.id in this_step or _rule_text(r, state.language, ctx) == told)
            for r in flow.rules
            if r.id in state.fired and not r.group
        )
        state = replace(state, fired=(*state.fired, rule.id))
        events.append(
            Escalate(rule_id=rule.id, level=rule.level, reason=rule.reason, detail=detail, crisis_line=rule.crisis_line)
        )
        if already_told:
            told = ""
        if told:
            events.append(Say(told, "emergency" if rule.level == "EMERGENCY" else "escalation"))
        if rule.stop:
            return _finish(state, "escalated", events)
    return state


#: ``State.fired`` holds an applied effect as ``effect:<id>`` (beside the rule ids).
EFFECT_FIRED = "effect:"


def _apply_effects(flow: Flow, state: State, ctx: PatientContext, events: list[Event], now: dt.datetime) -> State:
    """Emit :class:`UpdateRecord` for each of the flow's effects whose condition now holds, once per
    conversation (the welcome's "texts and calls" answer records consent once)."""
    for effect in flow.effects:
        key = EFFECT_FIRED + effect.id
        if key in state.fired or not evaluate(effect.when, state, ctx, flow, now)[0]:
            continue
        events.append(UpdateRecord(effect.id, dict(effect.changes)))
        state = replace(state, fired=(*state.fired, key))
    return state


def _numeric(flow: Flow, question_id: str, value: Value) -> Value:
    node = flow.nodes.get(question_id)
    if node is not None and node.question_type == "choice":
        return node.choice_value(value)
    return value


@dataclass(frozen=True)
class ScoreState:
    """Where a score stands: ``total`` once it is final, ``partial`` (the answered parts) at any time.

    A part is answered (a number), missing (asked and left without a number) or pending (not asked
    yet). ``total`` is the sum when every part is answered; with ``prorate`` and at most
    ``max_missing`` parts missing (none pending) it is round(sum × parts / answered), half up; else None.
    """

    total: float | None
    partial: float
    answered: int
    missing: int
    pending: int
    prorated: bool = False


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def score_state(flow: Flow, score: Score, answers: Mapping[str, Value]) -> ScoreState:
    """The state of one score over this conversation's answers (see :class:`ScoreState`).

    Proration as the PHQ-9 / GAD-7 scoring instructions allow for up to 2 missing items
    (Kroenke 2001; Spitzer 2006; Arrieta et al., J Clin Epidemiol 2017, on prorating missing items).
    """
    total_sum = 0.0
    answered = missing = pending = 0
    for part in score.parts:
        values = [_numeric(flow, q, answers.get(q)) for q in part if q in answers]
        number = next((v for v in values if _is_number(v)), None)
        if number is not None:
            total_sum += float(number)
            answered += 1
        elif all(q in answers for q in part):
            missing += 1
        else:
            pending += 1
    total: float | None = None
    prorated = False
    if pending == 0:
        if missing == 0:
            total = total_sum
        elif score.prorate_max_missing is not None and missing <= score.prorate_max_missing and answered:
            total = float(math.floor(total_sum * len(score.parts) / answered + 0.5))
            prorated = True
    return ScoreState(total, total_sum, answered, missing, pending, prorated)


def scores(flow: Flow, answers: Mapping[str, Value]) -> dict[str, float]:
    """Each score that is final (a PHQ-9 total, say; prorated when allowed); choices count by their value."""
    result: dict[str, float] = {}
    for score in flow.scores:
        total = score_state(flow, score, answers).total
        if total is not None:
            result[score.id] = total
    return result


def _threshold(value: Any, ctx: PatientContext, flow: Flow) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        name = value[1:]
        return ctx.thresholds.get(name, flow.thresholds.get(name))
    if isinstance(value, list):
        return [_threshold(v, ctx, flow) for v in value]
    return value


def _compare(value: Value, comparator: str, operand: Any) -> bool:
    if comparator == "answered":
        return (value is not None) == bool(operand)
    if value is None:
        return False
    if comparator == "is":
        return bool(value == operand)
    if comparator == "is_not":
        return bool(value != operand)
    if comparator == "in":
        return bool(value in operand)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if comparator == "at_least":
        return bool(value >= operand)
    if comparator == "at_most":
        return bool(value <= operand)
    if comparator == "above":
        return bool(value > operand)
    if comparator == "below":
        return bool(value < operand)
    if comparator == "between":
        low, high = operand
        return bool(low <= value <= high)
    raise FlowRuntimeError(f"unknown comparator {comparator}")


def evaluate(
    condition: Condition, state: State, ctx: PatientContext, flow: Flow, now: dt.datetime
) -> tuple[bool, dict[str, Any]]:
    """Whether a condition holds now, and the figures that made it so (kept on the escalation)."""
    if condition.kind == "all":
        detail: dict[str, Any] = {}
        for child in condition.children:
            hit, part = evaluate(child, state, ctx, flow, now)
            if not hit:
                return False, {}
            detail.update(part)
        return True, detail
    if condition.kind == "any":
        for child in condition.children:
            hit, part = evaluate(child, state, ctx, flow, now)
            if hit:
                return True, part
        return False, {}
    operand = _threshold(condition.operand, ctx, flow)
    subject = condition.subject
    if condition.kind == "score":
        return _score_condition(condition, operand, state, flow)
    current: Value = state.answers.get(subject)
    if condition.kind == "answer":
        if subject not in state.answers:
            return False, {}
        if condition.comparator == "unknown":
            # Replied "not sure" (or unreadable after the re-prompts), never silence: {answer: chest, unknown: true}.
            return (subject in state.unknown) == bool(operand), {
                subject: "unknown" if subject in state.unknown else current
            }
        return _compare(current, condition.comparator, operand), {subject: current}
    if condition.kind in {"rise", "fall"}:
        if not _is_number(current):
            return False, {}
        assert isinstance(current, int | float)
        earlier = _earlier_readings(subject, condition.within_days, ctx, now)
        if not earlier:
            return False, {}
        values = [value for _, value in earlier]
        if condition.baseline == "last":
            baseline = earlier[-1][1]
        elif condition.baseline == "lowest" or (not condition.baseline and condition.kind == "rise"):
            baseline = min(values)
        else:
            baseline = max(values)
        change = current - baseline if condition.kind == "rise" else baseline - current
        hit = _compare(round(change, 2), condition.comparator, operand)
        return hit, {
            subject: current,
            f"{subject}_baseline": baseline,
            f"{subject}_{condition.kind}": round(change, 2),
            "within_days": condition.within_days,
        }
    if condition.kind == "consecutive":
        if subject not in state.answers:
            return False, {}
        earlier_values = [
            h.value
            for h in sorted(ctx.history, key=lambda h: h.at, reverse=True)
            if h.question_id == subject and h.at < now
        ][: condition.count - 1]
        if len(earlier_values) < condition.count - 1:
            return False, {}
        series = [current, *earlier_values]
        hit = all(_compare(v, condition.comparator, operand) for v in series)
        return hit, {subject: current, f"{subject}_series": series}
    raise FlowRuntimeError(f"unknown condition kind {condition.kind}")


def _score_condition(condition: Condition, operand: Any, state: State, flow: Flow) -> tuple[bool, dict[str, Any]]:
    """A test on a score. ``at_least`` / ``above`` hold as soon as the answered items reach the cut
    point (a partial sum only grows: 21 after seven PHQ-9 items is already >= 20); every other test
    waits for the final total (a band with an upper bound is only known at the end)."""
    score = next((s for s in flow.scores if s.id == condition.subject), None)
    if score is None:
        return False, {}
    where = score_state(flow, score, state.answers)
    value: float | None = where.total
    if value is None and condition.comparator in {"at_least", "above"} and where.answered:
        value = where.partial
    detail: dict[str, Any] = {
        score.id: value,
        f"{score.id}_answered": where.answered,
        f"{score.id}_missing": where.missing,
        f"{score.id}_final": where.total is not None,
    }
    if where.prorated:
        detail[f"{score.id}_prorated_from"] = where.partial
    return _compare(value, condition.comparator, operand), detail


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _earlier_readings(
    subject: str, within_days: float, ctx: PatientContext, now: dt.datetime
) -> list[tuple[dt.datetime, float]]:
    """Readings of ``subject`` on the previous ``within_days`` calendar days in the patient's zone, oldest first.

    Calendar days, not hours: "179 yesterday at 09:05, 183 today at 16:30" is a one-day rise whatever
    the hours (issue 7 item 5, content review 2026-11). Today's earlier readings are not a baseline.
    """
    zone = _zone(ctx.timezone)
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=max(1, math.ceil(within_days)))
    found = [
        (h.at, float(h.value))  # type: ignore[arg-type]
        for h in ctx.history
        if h.question_id == subject and _is_number(h.value) and first <= h.at.astimezone(zone).date() < today
    ]
    return sorted(found, key=lambda item: item[0])


# ------------------------------------------------------------------------------------------------ text
def reprompt_text(node: Node, language: str, ctx: PatientContext) -> str:
    """ "Sorry, I didn't understand." and how to answer, worded for ``ctx.channel`` (SMS: the node's hint,
    or "Please reply YES or NO." and the question; voice: "press / say", app/flows/instructions.py)."""
    return reprompt_for(node, language, ctx)


def level_text(level: str, language: str, ctx: PatientContext) -> str:
    _ = gettext_for(language)
    if level == "URGENT":
        return _("A nurse from %(program)s will call you today. If you feel worse before then, call 911.") % {
            "program": ctx.program_name
        }
    if level == "ROUTINE":
        return _("Your care team at %(program)s will contact you within one business day.") % {
            "program": ctx.program_name
        }
    return ""


def _rule_text(rule: Rule, language: str, ctx: PatientContext) -> str:
    if rule.tell:
        return render_text(rule.tell, language, ctx)
    if rule.level == "EMERGENCY":
        return emergency_text(language, ctx, crisis_line=rule.crisis_line)
    return level_text(rule.level, language, ctx)
