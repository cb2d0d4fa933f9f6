"""Play a flow in a terminal: the same pure engine as production, one reply per input line.

Each reply goes through ``app/flows/routing.py`` exactly as a real text does (consent keywords, triage,
an opt-out sentence, the flow's answer), so a keyword collision or a missed red flag shows here too.
Lines starting with ``:`` are commands: ``:wait 4h`` lets time pass (reminder, expiry), ``:quit``.
:func:`simulate_call` plays a flow as a phone call instead (app/flows/phone.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping

from app.flows import engine, voice
from app.flows.intents import GlobalIntents
from app.flows.loader import FlowError, parse_duration_minutes
from app.flows.model import Flow
from app.flows.phone import PhoneCall, PhoneStep, gather_note, parse_line
from app.flows.routing import keyword_outcome, play


def simulate(
    flow: Flow,
    ctx: engine.PatientContext,
    lines: Iterable[str],
    out: Callable[[str], None],
    intents: GlobalIntents,
    now: dt.datetime | None = None,
) -> engine.State:
    clock = now or dt.datetime.now(dt.UTC)
    step = engine.start(flow, ctx, clock, intents)
    opted_out = False
    _show(step, out)
    for raw in lines:
        line = raw.rstrip("\n")
        if step.state.status != "active":
            break
        if line.strip() in {":quit", ":q"}:
            break
        if line.startswith(":wait"):
            try:
                minutes = parse_duration_minutes(line.split(maxsplit=1)[1], "simulate", 0)
            except (IndexError, FlowError):
                out("(usage: :wait 4h)")
                continue
            clock += dt.timedelta(minutes=minutes)
            out(f"(… {minutes} minutes later)")
            step = engine.resume(flow, step.state, ctx, engine.Timeout(), clock, intents)
        else:
            out(f"patient> {line}")
            played = play(flow, step.state, ctx, line, clock, intents, opted_out=opted_out)
            step, opted_out = played.step, played.opted_out
            outcome = keyword_outcome(played)
            if outcome == "opt_out_request":
                out("  [asks to stop in words: flagged for the care team]")
            elif outcome == "answer":
                out("  [a keyword read as this question's answer]")
            elif outcome is not None:
                out(f"  [keyword {outcome.upper()}]")
        _show(step, out)
    out(f"(conversation {step.state.status}" + (f": {step.state.result})" if step.state.result else ")"))
    return step.state


def _show(step: engine.Step, out: Callable[[str], None]) -> None:
    _show_events(step.events, out)


def _show_events(events: Iterable[engine.Event], out: Callable[[str], None]) -> None:
    for event in events:
        if isinstance(event, engine.Say):
            for line in event.text.splitlines():
                out(f"bot> {line}")
        elif isinstance(event, engine.SaveAnswer):
            shown = "unanswered" if event.kind == "unanswered" else repr(event.value)
            out(f"  [answer {event.question_id} = {shown}{' ' + event.unit if event.unit else ''}]")
        elif isinstance(event, engine.Escalate):
            out(f"  [ESCALATION {event.level}: {event.reason} ({event.rule_id})]")
        elif isinstance(event, engine.UpdateRecord):
            changes = ", ".join(f"{key} = {value}" for key, value in event.changes.items())
            out(f"  [RECORD {changes} ({event.effect_id})]")
        elif isinstance(event, engine.NotUnderstood):
            out("  [not understood: kept for the care team]")
        elif isinstance(event, engine.LanguageChanged):
            out(f"  [language is now {event.language}]")
        elif isinstance(event, engine.Completed) and event.start_flow:
            out(f"  [next flow: {event.start_flow}]")


def simulate_call(
    flow: Flow,
    ctx: engine.PatientContext,
    lines: Iterable[str],
    out: Callable[[str], None],
    intents: GlobalIntents,
    *,
    flows: Mapping[str, Flow] | None = None,
    nurse_line: str | None = None,
    threshold: float = voice.DEFAULT_CONFIDENCE_THRESHOLD,
    now: dt.datetime | None = None,
) -> PhoneCall:
    """Play ``flow`` as a phone call (app/flows/phone.py: the voice webhooks' functions, no telephone).

    Prints what the caller hears (``phone> …``) and how the call listens (``[keys, # to end | speech
    en-US]``); reads one line per turn: digits are keypresses (``183#``), ``say: …`` or ``say[0.4]: …`` is
    speech (with a confidence 0-1), an empty line is silence; ``:quit`` hangs up.
    """
    call = PhoneCall(
        flow, ctx, intents, now or dt.datetime.now(dt.UTC), nurse_line=nurse_line, threshold=threshold,
        flows=dict(flows or {}),
    )  # fmt: skip
    _show_call(call.start(), out)
    for raw in lines:
        line = raw.rstrip("\n")
        if call.ended or call.dialing:
            break
        if line.strip() in {":quit", ":q"}:
            break
        heard = parse_line(line)
        if heard is None:
            out("(type digits like 1 or 183#, 'say: words', 'say[0.4]: words', or an empty line for silence)")
            continue
        out(f"caller> {heard.shown()}")
        _show_call(call.hear(heard), out)
    state = call.state
    assert state is not None
    out(f"(call ended; conversation {state.status}" + (f": {state.result})" if state.result else ")"))
    return call


def _show_call(step: PhoneStep, out: Callable[[str], None]) -> None:
    for line in step.turn.lines():
        for part in line.splitlines():
            if part.strip():
                out(f"phone> {part}")
    out(f"  {gather_note(step.turn)}")
    _show_events((e for e in step.events if not isinstance(e, engine.Say)), out)
