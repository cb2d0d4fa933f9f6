"""Issue 12 items 1-2 as plain rules: flow record effects (loader and engine), resource lists per domain,
program and ZIP prefix, the preferred time of day, and the consent gate."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from app.config import CONTENT_DIR
from app.content import ContentLibrary, load_content
from app.flows import engine
from app.flows.loader import FlowError, compile_flow
from app.flows.resources import parse_resources
from app.patients.consent import awaiting_consent
from app.scheduling.occurrences import touch_times

NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return load_content(CONTENT_DIR)


# ------------------------------------------------------------------------------------------- effects
FLOW = """\
id: welcome-test
title: {en: T, es: T}
languages: [en, es]
start: time
nodes:
  - id: time
    type: question
    answer: choice
    text: {en: "When?", es: "¿Cuándo?"}
    choices:
      - {id: morning, label: {en: Morning, es: Mañana}}
      - {id: evening, label: {en: Evening, es: Noche}}
    next: done
  - id: done
    type: end
effects:
  - id: prefers-morning
    when: {answer: time, is: morning}
    set: EFFECT_SET
"""


def _flow(effect_set: str) -> Any:
    return compile_flow(FLOW.replace("EFFECT_SET", effect_set), "content/flows/welcome-test.yaml")


@pytest.mark.parametrize(
    ("effect_set", "reason"),
    [
        ("{bedtime: morning}", "cannot set 'bedtime'"),
        ("{preferred_time: midnight}", "preferred_time cannot be 'midnight'"),
        ("{consent: maybe}", "consent cannot be 'maybe'"),
        ("{event: discharged}", "event cannot be 'discharged'"),
        ("{}", "set must be a mapping"),
    ],
)
def test_an_effect_that_sets_an_unknown_field_or_value_is_refused_with_its_line(effect_set: str, reason: str) -> None:
    with pytest.raises(FlowError) as caught:
        _flow(effect_set)
    assert reason in caught.value.reason
    assert caught.value.path == "content/flows/welcome-test.yaml"
    assert caught.value.line in (19, 20)  # the effect's `set:` line


def _run(flow: Any, *replies: str) -> list[engine.Event]:
    ctx = engine.PatientContext(first_name="Ana", language="en", program_name="P", program_phone="555")
    step = engine.start(flow, ctx, NOW)
    events: list[engine.Event] = list(step.events)
    state = step.state
    for reply in replies:
        step = engine.resume(flow, state, ctx, engine.Reply(reply), NOW)
        events.extend(step.events)
        state = step.state
    return events


def test_an_effect_is_emitted_once_when_its_condition_holds() -> None:
    flow = _flow("{preferred_time: morning}")
    updates = [e for e in _run(flow, "1") if isinstance(e, engine.UpdateRecord)]
    assert updates == [engine.UpdateRecord("prefers-morning", {"preferred_time": "morning"})]
    assert [e for e in _run(flow, "2") if isinstance(e, engine.UpdateRecord)] == []


def test_the_social_needs_follow_up_event_is_dated_once_however_many_needs(library: ContentLibrary) -> None:
    flow = library.flow("social-needs")
    events = _run(flow, "2", "1", "1", "yes", "3", "no")
    assert [e.effect_id for e in events if isinstance(e, engine.UpdateRecord)] == ["follow-up-in-two-weeks"]
    reasons = [e.reason for e in events if isinstance(e, engine.Escalate)]
    assert reasons == [
        "social_need_housing",
        "social_need_food",
        "social_need_transportation",
        "social_need_utilities",
        "safety_screen_by_call",
    ]


# ----------------------------------------------------------------------------------------- resources
RESOURCES = """\
resources:
  - domain: housing
    text: {en: Housing 211, es: Vivienda 211}
  - domain: food
    text: {en: Food 211, es: Comida 211}
  - domain: transportation
    text: {en: Rides 211, es: Transporte 211}
  - domain: utilities
    text: {en: Bills 211, es: Cuentas 211}
  - domain: food
    zip_prefixes: ["606"]
    text: {en: Chicago food, es: Comida Chicago}
  - domain: food
    program: north
    text: {en: North food, es: Comida North}
  - domain: food
    program: north
    zip_prefixes: ["6061", "606"]
    text: {en: North 6061 food, es: Comida North 6061}
"""


@pytest.mark.parametrize(
    ("program", "zip_code", "language", "expected"),
    [
        (None, None, "en", "Food 211"),
        ("south", "10001", "es", "Comida 211"),
        ("south", "60614", "en", "Chicago food"),
        ("north", "10001", "en", "North food"),
        ("north", "60614", "en", "North 6061 food"),
        ("north", "60601-1234", "es", "Comida North 6061"),
        ("north", "60701", "en", "North food"),
    ],
)
def test_the_most_specific_resource_list_wins(
    program: str | None, zip_code: str | None, language: str, expected: str
) -> None:
    lists = parse_resources(RESOURCES, "content/resources.yaml")
    assert lists.pick("food", language, program=program, zip_code=zip_code) == expected
    assert lists.pick("housing", language, program=program, zip_code=zip_code).endswith("211")


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (("domain: utilities", "domain: phone"), 8, "domain must be one of"),
        (('zip_prefixes: ["606"]', "zip_prefixes: [606]"), 11, "zip_prefixes must be quoted"),
        (("    text: {en: Bills 211, es: Cuentas 211}", "    text: {en: Bills 211}"), 9, "missing 'es' text"),
        (
            ("    program: north\n    text: {en: North food", "    program: North\n    text: {en: North food"),
            14,
            "slug",
        ),
        (
            ("  - domain: transportation\n    text: {en: Rides 211, es: Transporte 211}\n", ""),
            1,
            "'transportation' has no default",
        ),
    ],
)
def test_a_bad_resource_file_is_refused_with_the_line_and_reason(
    change: tuple[str, str], line: int, reason: str
) -> None:
    source = RESOURCES.replace(*change, 1)
    assert source != RESOURCES
    with pytest.raises(FlowError) as caught:
        parse_resources(source, "content/resources.yaml")
    assert reason in caught.value.reason
    assert caught.value.line == line


def test_the_shipped_resources_default_to_211_in_both_languages(library: ContentLibrary) -> None:
    for language in ("en", "es"):
        variables = library.resources.variables(language, program=None, zip_code=None)
        assert set(variables) == {
            "resources_housing",
            "resources_food",
            "resources_transportation",
            "resources_utilities",
        }
        assert all("211" in text for text in variables.values())


# ------------------------------------------------------------------------------------ preferred time
@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        (None, ((10, 0),)),
        ("morning", ((10, 0),)),
        ("afternoon", ((14, 0),)),
        ("evening", ((18, 0),)),
        ("any", ((10, 0),)),
    ],
)
def test_a_check_in_moves_into_the_preferred_time_of_day(
    library: ContentLibrary, preferred: str | None, expected: tuple[tuple[int, int], ...]
) -> None:
    campaign = library.campaign("care-assessment")
    assert campaign is not None
    touch = campaign.touch("social-needs")
    assert touch is not None
    assert touch_times(touch, {}, preferred) == expected


def test_dose_times_never_move_with_the_preferred_time(library: ContentLibrary) -> None:
    campaign = library.campaign("medication-adherence")
    assert campaign is not None
    dose = campaign.touch("dose")
    assert dose is not None
    assert touch_times(dose, {"dose_times": "08:00,20:00"}, "afternoon") == ((8, 0), (20, 0))


# --------------------------------------------------------------------------------------- consent gate
@pytest.mark.parametrize(
    ("gate", "basis", "flow", "held"),
    [
        (True, None, "social-needs", True),
        (True, "program_enrollment", "hf-daily-check", True),
        (True, "health_care_exemption", "falls", True),
        (True, None, "welcome", False),
        (True, "express_oral", "social-needs", False),
        (True, "express_written", "falls", False),
        (False, None, "social-needs", False),
    ],
)
def test_only_the_welcome_goes_out_before_consent_where_the_program_requires_it(
    gate: bool, basis: str | None, flow: str, held: bool
) -> None:
    patient: Any = SimpleNamespace(consent_basis=basis)
    program: Any = SimpleNamespace(consent_before_outreach=gate)
    assert awaiting_consent(patient, program, flow) is held


# ------------------------------------------------------------------------------------------- labels
ASSESSMENT_FLOWS = (
    "welcome",
    "social-needs",
    "social-needs-followup",
    "falls",
    "med-check",
    "hospital-use",
    "caregiver-strain",
)


def test_every_assessment_reason_has_plain_words_in_english_and_spanish(library: ContentLibrary) -> None:
    from app.web.labels import reason_label

    reasons = {rule.reason for flow_id in ASSESSMENT_FLOWS for rule in library.flow(flow_id).rules}
    assert len(reasons) >= 13
    for reason in sorted(reasons):
        english, spanish = reason_label(reason, "en"), reason_label(reason, "es")
        assert english != reason.replace("_", " ").capitalize(), reason  # not the fallback
        assert spanish != english, reason
