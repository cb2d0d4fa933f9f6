"""One path for every way a patient's text comes in (issue 7, item 8): keyword? the conversation? outside?

Pure: no SQL, no Flask, no Twilio. ``route`` is the one decision the inbound webhook (app/messaging/inbound.py),
the browser simulator (through app/messaging/inbound.py), ``outreach simulate`` and the flow transcripts all make, in
the same order:

1. A whole-message consent keyword (app/flows/keywords.py) — unless it is not one Twilio enforces and the
   active conversation's pending question understands the whole message as a valid answer ("Alto" at the
   ketone question is "high"; app/messaging/consent.py says why HELP / INFO are in that group).
2. An active conversation (and a patient not opted out): the engine (app/flows/engine.py ``resume``), which
   runs triage first (every EMERGENCY reason fires; CONFIRM asks "right now?"), then an opt-out written as a
   sentence, then the answer.
   Then MORE / MÁS while an education lesson has parts left (and the pending question does not take it).
3. Otherwise, outside a conversation: triage and the opt-out sentence here; ``outside_plan`` says what to
   open and say. The caller stores the message in the inbox either way.

``play`` applies a route to an engine state without a database, for transcripts and ``outreach simulate``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Literal

from app.flows import engine
from app.flows.intents import GlobalIntents
from app.flows.keywords import Keyword, KeywordHit, classify, opt_out_sentence_text, reply_text
from app.flows.lessons import is_more
from app.flows.model import Flow
from app.flows.safety import not_watched_notice, nurse_today_text
from app.triage.verdict import Finding, Verdict

#: The built-in flow that asks "right now?" about a red flag mentioned outside any conversation
#: (content/flows/right-now-check.yaml: its only node is the closing after NO).
RIGHT_NOW_FLOW = "right-now-check"
#: The reason of the URGENT item for symptom words outside a conversation.
SYMPTOMS_REASON = "symptoms_reported"


@dataclass(frozen=True)
class ActiveFlow:
    flow: Flow
    state: engine.State


@dataclass(frozen=True)
class Route:
    kind: Literal["keyword", "conversation", "outside", "more"]
    keyword: KeywordHit | None = None
    #: ``outside``: what triage found.
    verdict: Verdict = field(default_factory=Verdict)
    #: ``outside``: the message asks to stop in words ("please stop texting me").
    opt_out_request: bool = False
    #: A keyword that gave way to an answer (for the timeline and transcripts).
    keyword_as_answer: KeywordHit | None = None


def route(
    text: str,
    *,
    intents: GlobalIntents,
    language: str | None,
    opted_out: bool = False,
    conversation: ActiveFlow | None = None,
    lesson_open: bool = False,
) -> Route:
    """Decide what one inbound text is. ``conversation``: the patient's active one, if any (ignored for an
    opted-out patient: nothing is asked of them). ``lesson_open``: the patient has an education lesson with
    parts left; then a whole-message MORE / MÁS (app/flows/lessons.py) asks for the next part (``more``),
    unless the pending question reads it as its answer. Returns a :class:`Route`; raises nothing."""
    if opted_out:
        conversation = None
    hit = classify(text, opted_out=opted_out)
    if hit is not None:
        yields = (
            not hit.enforced_by_twilio
            and conversation is not None
            and engine.understands(conversation.flow, conversation.state, text)
        )
        if not yields:
            return Route("keyword", keyword=hit)
    if (
        lesson_open
        and not opted_out
        and is_more(text)
        and not (conversation is not None and engine.understands(conversation.flow, conversation.state, text))
    ):
        return Route("more")
    if conversation is not None and conversation.state.status == "active":
        return Route("conversation", keyword_as_answer=hit)
    return Route("outside", verdict=intents.assess(text, language), opt_out_request=intents.opt_out_request(text))


@dataclass(frozen=True)
class OutsidePlan:
    """What to do with a text that reached no conversation."""

    #: Escalations to open (``Escalate``) and lines to say (``Say``; none when the patient cannot be texted).
    events: tuple[engine.Event, ...] = ()
    #: Red flags to ask "right now?" about: start :data:`RIGHT_NOW_FLOW` with these (reachable patients only;
    #: the engine opens their URGENT escalations as it asks).
    confirm: tuple[Finding, ...] = ()
    #: The "not watched all the time" notice is among the lines.
    notice: bool = False
    #: Codes for the stored message, for staff: ``red_flag:<reason>``, ``confirm:<reason>``,
    #: ``symptom:<reason>``, ``opt_out_request``.
    flags: tuple[str, ...] = ()

    @property
    def emergency(self) -> bool:
        return any(isinstance(e, engine.Say) and e.purpose == "emergency" for e in self.events)

    def said(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, engine.Say)]


def outside_plan(
    decided: Route,
    ctx: engine.PatientContext,
    *,
    reachable: bool,
    notice_due: bool,
) -> OutsidePlan:
    """Escalations and lines for a text outside any conversation (issue 7, items 1 and 6).

    EMERGENCY: every reason, one text (911 / 988 / Poison Control). CONFIRM: "right now?" through
    :data:`RIGHT_NOW_FLOW` (or, when the patient cannot be texted, URGENT items at once). Symptoms: one URGENT
    ``symptoms_reported`` item and the same-day promise. An opt-out sentence: the one "Reply STOP" line.
    Otherwise, at most once a day (``notice_due``), "This number is not watched all the time…".
    """
    verdict = decided.verdict
    language = ctx.language
    events: list[engine.Event] = []
    flags: list[str] = []
    confirm: tuple[Finding, ...] = ()
    detail = {"outside_conversation": True}
    pending = engine.pending_findings(verdict)
    if verdict.emergency:
        current = [f for f in verdict.findings if f.status == "current"]
        events.extend(engine.emergency_events(current, pending, language, ctx, detail))
        flags += [f"red_flag:{r}" for r in verdict.emergency]
        flags += [f"confirm:{f.reason}" for f in pending]
    elif pending:
        flags += [f"confirm:{f.reason}" for f in pending]
        if reachable:
            confirm = pending
        else:
            events.extend(engine.confirm_escalation(f, {**detail, "not_asked": "cannot_text"}) for f in pending)
    if verdict.symptoms:
        flags += [f"symptom:{r}" for r in verdict.symptoms]
    if verdict.symptoms and not verdict.emergency and not pending:
        # A red flag's own item already puts the message in front of a nurse: no second, lower item for the
        # symptom words in it ("chest pain" is also "pain").
        events.append(
            engine.Escalate(
                rule_id=SYMPTOMS_REASON,
                level="URGENT",
                reason=SYMPTOMS_REASON,
                detail={**detail, "symptoms": list(verdict.symptoms)},
            )
        )
        events.append(engine.Say(nurse_today_text(language, ctx.program_name), "escalation"))
    if decided.opt_out_request:
        flags.append("opt_out_request")
        events.append(engine.Say(opt_out_sentence_text(language), "info"))
    notice = notice_due and not verdict.emergency and not confirm and not decided.opt_out_request
    if notice:
        events.append(engine.Say(not_watched_notice(language, ctx.program_phone), "info"))
    if not reachable:
        events = [e for e in events if not isinstance(e, engine.Say)]
        notice = False
    return OutsidePlan(tuple(events), confirm, notice, tuple(dict.fromkeys(flags)))


# ------------------------------------------------------------------------- without a database: play
@dataclass(frozen=True)
class Played:
    route: Route
    step: engine.Step
    #: The patient is opted out after this reply (a STOP keyword).
    opted_out: bool


def play(
    flow: Flow,
    state: engine.State,
    ctx: engine.PatientContext,
    text: str,
    now: dt.datetime,
    intents: GlobalIntents,
    *,
    opted_out: bool = False,
) -> Played:
    """One reply through :func:`route` and its consequences on the conversation, as the webhook does them
    (STOP stops the conversation and is confirmed once; HELP answers with the program's help line; START
    opts back in). Outside a conversation the lines of :func:`outside_plan` are said (the notice as if due).
    """
    conversation = ActiveFlow(flow, state) if state.status == "active" else None
    decided = route(text, intents=intents, language=state.language, opted_out=opted_out, conversation=conversation)
    if decided.kind == "keyword":
        assert decided.keyword is not None
        language = decided.keyword.language or state.language
        said: list[engine.Event] = []
        if decided.keyword.keyword is Keyword.STOP:
            if not opted_out:
                said.append(engine.Say(reply_text(Keyword.STOP, language, ctx.program_name, ctx.program_phone), "info"))
            if state.status == "active":
                state = replace(state, status="stopped", result="opted_out", wake_at=None)
            return Played(decided, engine.Step(state, tuple(said)), True)
        if decided.keyword.keyword is Keyword.START:
            if opted_out:
                said.append(
                    engine.Say(reply_text(Keyword.START, language, ctx.program_name, ctx.program_phone), "info")
                )
            return Played(decided, engine.Step(state, tuple(said)), False)
        said.append(engine.Say(reply_text(Keyword.HELP, language, ctx.program_name, ctx.program_phone), "info"))
        return Played(decided, engine.Step(state, tuple(said)), opted_out)
    if decided.kind == "conversation":
        step = engine.resume(flow, state, ctx, engine.Reply(text), now, intents)
        return Played(decided, step, opted_out)
    plan = outside_plan(decided, ctx, reachable=not opted_out, notice_due=True)
    events: list[engine.Event] = list(plan.events)
    if plan.confirm:
        # What the "right now?" check opens and asks (its events do not depend on the flow it runs in).
        events.extend(engine.start(flow, ctx, now, intents, confirm=plan.confirm).events)
    return Played(decided, engine.Step(state, tuple(events)), opted_out)


def keyword_outcome(played: Played) -> str | None:
    """The transcript's view of a routed reply: ``stop`` / ``start`` / ``help`` for a keyword, ``answer`` for
    a keyword that gave way to an answer, ``opt_out_request`` for a sentence, else None."""
    if played.route.kind == "keyword" and played.route.keyword is not None:
        return str(played.route.keyword.keyword)
    if played.route.keyword_as_answer is not None:
        return "answer"
    if played.route.opt_out_request or any(isinstance(e, engine.OptOutRequested) for e in played.step.events):
        return "opt_out_request"
    return None
