"""Conversation transcripts: flows tested as data, with a stepped clock, in every language.

Why pure: a transcript runs the engine exactly as production does (same compiled flow, same intents),
without a database, so content editors run `outreach test-flows` in a second and CI runs it on every
change. See docs/flow-format.md for the file format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.flows import engine
from app.flows.intents import GlobalIntents
from app.flows.loader import FlowError, LineDict, load_yaml_with_lines, parse_duration_minutes
from app.flows.model import LEVELS, Flow
from app.flows.phone import Heard, PhoneCall, parse_line
from app.flows.routing import keyword_outcome, play
from app.flows.text import fold
from app.triage.verdict import Finding

DEFAULT_START = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
#: The patient's zone when a case does not set ``patient: {timezone: ...}`` (09:00 at DEFAULT_START).
DEFAULT_TIMEZONE = "America/Chicago"


@dataclass(frozen=True)
class CaseResult:
    flow_id: str
    case: str
    language: str
    failures: tuple[str, ...]
    fired: tuple[str, ...]
    #: What fired on each step that ran, by the step's 1-based index: ``((rule_id, level), ...)``.
    fired_by_step: Mapping[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: ``sms`` (texts) or ``voice`` (the case played as a call, app/flows/phone.py).
    channel: str = "sms"

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class TranscriptFile:
    path: str
    flow_id: str
    cases: list[LineDict] = field(default_factory=list)


def load_transcripts(directory: Path, display_root: Path | None = None) -> list[TranscriptFile]:
    files = []
    for path in sorted(directory.glob("*.yaml")):
        shown = str(path.relative_to(display_root)) if display_root else str(path)
        data = load_yaml_with_lines(path.read_text(encoding="utf-8"), shown)
        if not isinstance(data, LineDict) or "flow" not in data or not isinstance(data.get("cases"), list):
            raise FlowError(shown, 1, "a transcript file needs 'flow' and a list of 'cases'")
        cases = list(data["cases"])
        for case in cases:
            _check_escalate_form(case, shown)
        files.append(TranscriptFile(path=shown, flow_id=str(data["flow"]), cases=cases))
    return files


def _check_escalate_form(case: Any, path: str) -> None:
    """Refuse an ``escalate`` that is not ``{rule-id: LEVEL}`` (the old list form compared ids only).

    ``escalate: []`` is accepted and means the same as ``escalate: {}`` or no key: nothing fires.
    Raises ``FlowError`` with the file, the line and the reason.
    """
    if not isinstance(case, Mapping):
        raise FlowError(path, getattr(case, "line", 0), "a case must be a mapping")
    for raw in case.get("steps") or []:
        if not isinstance(raw, LineDict) or "escalate" not in raw:
            continue
        line = raw.key_lines.get("escalate", raw.line)
        value = raw["escalate"]
        if value is None or (isinstance(value, list) and not value):
            continue
        if isinstance(value, list):
            raise FlowError(
                path,
                line,
                "'escalate' must map each rule to its level, e.g. {weight-gain-1-day: URGENT}; the list form "
                "checks ids only (scripts/transcripts_levels.py converts it)",
            )
        if not isinstance(value, Mapping):
            raise FlowError(path, line, "'escalate' must be a mapping of rule id to level")
        for rule_id, level in value.items():
            if level not in LEVELS:
                raise FlowError(
                    path, line, f"'escalate': level {level!r} of '{rule_id}' is not one of {', '.join(LEVELS)}"
                )


def expected_escalations(raw: Mapping[str, Any]) -> dict[str, str]:
    """A step's ``escalate`` as ``{rule_id: level}``; no key (or ``{}`` / ``[]``) expects nothing to fire."""
    value = raw.get("escalate")
    if not isinstance(value, Mapping):
        return {}
    return {str(rule_id): str(level) for rule_id, level in value.items()}


def _per_language(value: Any, language: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = value.get(language, [])
    if isinstance(value, str | int | float):
        return [str(value)]
    return [str(v) for v in value]


def _reply_text(value: Any, language: str) -> str | None:
    if isinstance(value, Mapping):
        chosen = value.get(language)
        return None if chosen is None else str(chosen)
    return str(value)


def _history(entries: Sequence[Mapping[str, Any]], start: dt.datetime) -> list[engine.PastAnswer]:
    history = []
    for entry in entries:
        ago = dt.timedelta(days=float(entry.get("days_ago", 0)), hours=float(entry.get("hours_ago", 0)))
        value = entry.get("value")
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        history.append(engine.PastAnswer(str(entry["question"]), value, start - ago))
    return history


def _same(expected: Any, actual: Any) -> bool:
    if expected == "unanswered":
        return actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return bool(expected == actual)
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return abs(float(expected) - float(actual)) < 1e-6
    return str(expected) == str(actual)


def _start_and_context(
    case: Mapping[str, Any],
    language: str,
    education: Mapping[str, str] | None,
    channel: str,
    defaults: Mapping[str, str] | None = None,
) -> tuple[dt.datetime, engine.PatientContext]:
    """``defaults``: variables every case has unless its ``patient.variables`` say otherwise (the
    program's default resource lists, ``{resources_food}``...)."""
    start_value = case.get("start")
    now = dt.datetime.fromisoformat(str(start_value)).astimezone(dt.UTC) if start_value else DEFAULT_START
    patient = dict(case.get("patient") or {})
    return now, engine.PatientContext(
        first_name=str(patient.get("first_name", "Ana")),
        language=language,
        program_name=str(patient.get("program_name", "North Clinic")),
        program_phone=str(patient.get("program_phone", "555-0100")),
        history=_history(case.get("history") or [], now),
        thresholds={str(k): float(v) for k, v in (patient.get("thresholds") or {}).items()},
        variables={
            **(defaults or {}),
            **{str(k): str(v) for k, v in (patient.get("variables") or {}).items()},
        },
        education=education or {},
        timezone=str(patient.get("timezone", DEFAULT_TIMEZONE)),
        channel=channel,
    )


def run_case(
    flow: Flow,
    case: Mapping[str, Any],
    language: str,
    intents: GlobalIntents,
    education: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> CaseResult:
    name = str(case.get("name", "unnamed"))
    failures: list[str] = []
    fired_all: list[str] = []
    fired_by_step: dict[int, tuple[tuple[str, str], ...]] = {}
    now, ctx = _start_and_context(case, language, education, "sms", defaults)
    # ``confirm: [chest_pain, {reason: suicide, crisis_line: true}]``: begin with "right now?" about these red
    # flags, as the inbound path does for a mention outside any conversation (app/flows/routing.py).
    confirm = tuple(
        Finding(
            str(item["reason"]),
            "confirm",
            crisis_line=bool(item.get("crisis_line", False)),
            poison_control=bool(item.get("poison_control", False)),
            violence_line=bool(item.get("violence_line", False)),
        )
        if isinstance(item, Mapping)
        else Finding(str(item), "confirm")
        for item in (case.get("confirm") or [])
    )
    step = engine.start(flow, ctx, now, intents, confirm=confirm)
    steps = list(case.get("steps") or [])
    opening_checked = False
    opted_out = False
    for index, raw in enumerate(steps, start=1):
        where = f"step {index}" + (f" (line {raw.line})" if isinstance(raw, LineDict) else "")
        if "reply" in raw:
            text = _reply_text(raw["reply"], language)
            if text is None:
                continue
            # Every reply goes the way a real text goes (keywords, triage, the flow): app/flows/routing.py.
            played = play(flow, step.state, ctx, text, now, intents, opted_out=opted_out)
            step, opted_out = played.step, played.opted_out
            if "keyword" in raw:
                expected = raw["keyword"]
                actual = keyword_outcome(played)
                if (None if expected in (None, "none") else str(expected)) != actual:
                    failures.append(f"{where}: keyword outcome is {actual!r}, expected {expected!r}")
        elif "wait" in raw:
            now = now + dt.timedelta(minutes=parse_duration_minutes(raw["wait"], name, index))
            step = engine.resume(flow, step.state, ctx, engine.Timeout(), now, intents)
        elif opening_checked:
            failures.append(f"{where}: a step needs 'reply' or 'wait' (only the first may check the opening)")
            continue
        opening_checked = True
        failures.extend(_check_step(step, raw, language, where))
        fired_all.extend(e.rule_id for e in step.events if isinstance(e, engine.Escalate))
        fired_all.extend(_effects_applied(step.events))
        fired_by_step[index] = tuple((e.rule_id, e.level) for e in step.events if isinstance(e, engine.Escalate))
    end = case.get("end")
    if isinstance(end, Mapping):
        for key in ("status", "result"):
            if key in end and getattr(step.state, key) != end[key]:
                failures.append(f"end: {key} is {getattr(step.state, key)!r}, expected {end[key]!r}")
    return CaseResult(flow.id, name, language, tuple(failures), tuple(fired_all), fired_by_step)


def _voice_step(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """A step as played on a call: its ``voice:`` mapping (``reply``, ``say``, ``not_say``, ``answers``,
    ``escalate``, ``review``) overrides the step's own keys."""
    override = raw.get("voice")
    if not isinstance(override, Mapping):
        return raw
    merged = {k: v for k, v in raw.items() if k != "voice"}
    merged.update(override)
    return merged


def _heard(text: str) -> Heard:
    """A transcript reply on a call: digits are keys, ``say: …`` / ``say[0.4]: …`` speech, "" silence;
    any other text is speech heard with full confidence."""
    parsed = parse_line(text)
    return parsed if parsed is not None else Heard(speech=text.strip())


def run_voice_case(
    flow: Flow,
    case: Mapping[str, Any],
    language: str,
    intents: GlobalIntents,
    education: Mapping[str, str] | None = None,
    flows: Mapping[str, Flow] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> CaseResult:
    """The case played as a call (app/flows/phone.py, the voice webhooks' functions): each ``reply`` is a
    Gather result, ``say`` / ``not_say`` are checked against what the caller hears; a step's ``voice:``
    mapping overrides its keys on the call. A call cannot ``wait`` hours, nor begin with ``confirm``; a
    ``wait`` after the call ended at a wait node (a snooze) is the call back after it."""
    name = str(case.get("name", "unnamed"))
    failures: list[str] = []
    fired_all: list[str] = []
    fired_by_step: dict[int, tuple[tuple[str, str], ...]] = {}
    now, ctx = _start_and_context(case, language, education, "voice", defaults)
    nurse = (case.get("patient") or {}).get("nurse_line")
    call = PhoneCall(flow, ctx, intents, now, nurse_line=str(nurse) if nurse else None, flows=dict(flows or {}))
    if case.get("confirm"):
        return CaseResult(flow.id, name, language, ("a voice case cannot begin with 'confirm'",), (), {}, "voice")
    phone = call.start()
    opening_checked = False
    for index, original in enumerate(case.get("steps") or [], start=1):
        where = f"step {index}" + (f" (line {original.line})" if isinstance(original, LineDict) else "")
        raw = _voice_step(original)
        if "reply" in raw:
            text = _reply_text(raw["reply"], language)
            if text is None:
                continue
            phone = call.hear(_heard(text))
        elif "wait" in raw and call.waiting:
            # The call ended at a wait node (a snooze): after it the patient is called again.
            now = now + dt.timedelta(minutes=parse_duration_minutes(raw["wait"], name, index))
            phone = call.call_back(now)
        elif "wait" in raw:
            failures.append(f"{where}: a call cannot 'wait' but at a wait node (run this case on sms only)")
            continue
        elif opening_checked:
            failures.append(f"{where}: a step needs 'reply' (only the first may check the opening)")
            continue
        opening_checked = True
        step = engine.Step(call.state or engine.State(flow.id, flow.version, language, None), phone.events)
        failures.extend(_check_step(step, raw, language, where, said=phone.turn.lines()))
        fired_all.extend(e.rule_id for e in phone.events if isinstance(e, engine.Escalate))
        fired_all.extend(_effects_applied(phone.events))
        fired_by_step[index] = tuple((e.rule_id, e.level) for e in phone.events if isinstance(e, engine.Escalate))
    end = case.get("end")
    if isinstance(end, Mapping) and call.state is not None:
        for key in ("status", "result"):
            if key in end and getattr(call.state, key) != end[key]:
                failures.append(f"end: {key} is {getattr(call.state, key)!r}, expected {end[key]!r}")
    return CaseResult(flow.id, name, language, tuple(failures), tuple(fired_all), fired_by_step, "voice")


def _check_step(
    step: engine.Step, raw: Mapping[str, Any], language: str, where: str, said: Sequence[str] | None = None
) -> list[str]:
    """``said``: what to check ``say`` / ``not_say`` against (default: the step's texts)."""
    failures: list[str] = []
    heard = "\n".join(step.said() if said is None else said)
    folded = fold(heard)
    for fragment in _per_language(raw.get("say"), language):
        if fold(fragment) not in folded:
            failures.append(f"{where}: expected the texts to contain {fragment!r}, got {heard!r}")
    for fragment in _per_language(raw.get("not_say"), language):
        if fold(fragment) in folded:
            failures.append(f"{where}: expected the texts not to contain {fragment!r}, got {heard!r}")
    if "answers" in raw:
        saved = {e.question_id: e.value for e in step.events if isinstance(e, engine.SaveAnswer)}
        expected = dict(raw["answers"] or {})
        for question, value in expected.items():
            if question not in saved:
                failures.append(f"{where}: expected an answer to {question!r}, saved {sorted(saved)}")
            elif not _same(value, saved[question]):
                failures.append(f"{where}: {question} saved as {saved[question]!r}, expected {value!r}")
        extra = sorted(set(saved) - set(expected))
        if extra:
            failures.append(f"{where}: unexpected answers saved: {extra}")
    if "review" in raw:
        # ``review: true``: the reply goes to a person to read (NeedsReview or NotUnderstood); false: it does not.
        flagged = any(isinstance(e, engine.NeedsReview) for e in step.events)
        if flagged != bool(raw["review"]):
            failures.append(f"{where}: marked for review is {flagged}, expected {bool(raw['review'])}")
    if "record" in raw:
        # ``record: [effect-id, ...]``: exactly the flow's record effects this step applied.
        applied = sorted(e.effect_id for e in step.events if isinstance(e, engine.UpdateRecord))
        expected_record = sorted(str(x) for x in (raw["record"] or []))
        if applied != expected_record:
            failures.append(f"{where}: record effects {applied}, expected {expected_record}")
    # Every step asserts what fired and at which level: a step without `escalate` expects nothing.
    fired = sorted((e.rule_id, e.level) for e in step.events if isinstance(e, engine.Escalate))
    expected_fired = sorted(expected_escalations(raw).items())
    if fired != expected_fired:
        failures.append(f"{where}: fired {_shown(fired)}, expected {_shown(expected_fired)}")
    return failures


def _shown(pairs: Sequence[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{rule}: {level}" for rule, level in pairs) + "}"


def run_file(
    transcripts: TranscriptFile,
    flows: Mapping[str, Flow],
    intents: GlobalIntents,
    education_by_language: Mapping[str, Mapping[str, str]] | None = None,
    variables_by_language: Mapping[str, Mapping[str, str]] | None = None,
) -> list[CaseResult]:
    """Run every case of one transcript file; ``variables_by_language``: default variables per language
    (the program's default resource lists, ``ResourceLists.variables``)."""
    flow = flows.get(transcripts.flow_id)
    if flow is None:
        raise FlowError(transcripts.path, 1, f"transcripts for unknown flow '{transcripts.flow_id}'")
    results = []
    for case in transcripts.cases:
        languages = case.get("languages") or list(flow.languages)
        for language in languages:
            if language not in flow.languages:
                results.append(
                    CaseResult(
                        flow.id, str(case.get("name")), language, (f"language {language!r} is not in the flow",), ()
                    )
                )
                continue
            education = (education_by_language or {}).get(language, {})
            defaults = (variables_by_language or {}).get(language, {})
            for channel in case.get("channels") or ["sms"]:
                if channel == "voice":
                    results.append(run_voice_case(flow, case, language, intents, education, flows, defaults))
                elif channel == "sms":
                    results.append(run_case(flow, case, language, intents, education, defaults))
                else:
                    results.append(
                        CaseResult(
                            flow.id, str(case.get("name")), language, (f"channel {channel!r} is not sms or voice",),
                            (), {}, str(channel),
                        )
                    )  # fmt: skip
    return results


def _effects_applied(events: Sequence[engine.Event]) -> list[str]:
    return [engine.EFFECT_FIRED + e.effect_id for e in events if isinstance(e, engine.UpdateRecord)]


def coverage_gaps(flow: Flow, results: Sequence[CaseResult]) -> list[str]:
    """Rules that, in some language, no case triggers, or that every case triggers; record effects that,
    in some language, no case applies. A combined check-in (``flow.composed_of``) has none of its own: its
    rules are its modules', covered by their transcripts."""
    gaps: list[str] = []
    if flow.composed_of:
        return gaps
    for effect in flow.effects:
        for language in flow.languages:
            mine = [r for r in results if r.flow_id == flow.id and r.language == language]
            if not any(engine.EFFECT_FIRED + effect.id in r.fired for r in mine):
                gaps.append(f"{flow.id}: effect '{effect.id}' is never applied in '{language}'")
    for rule in flow.rules:
        for language in flow.languages:
            mine = [r for r in results if r.flow_id == flow.id and r.language == language]
            if not any(rule.id in r.fired for r in mine):
                gaps.append(f"{flow.id}: rule '{rule.id}' is never triggered in '{language}'")
            if not any(rule.id not in r.fired for r in mine):
                gaps.append(f"{flow.id}: rule '{rule.id}' has no '{language}' case where it does not fire")
    return gaps
