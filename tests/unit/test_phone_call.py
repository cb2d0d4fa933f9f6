"""A flow played as a call without a telephone (app/flows/phone.py): the voice webhooks' pure functions,
so keys, speech, low-confidence read-backs, 9 and EMERGENCY behave as on a real call."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from app.config import CONTENT_DIR
from app.content import ContentLibrary, load_content
from app.flows import engine
from app.flows.phone import Heard, PhoneCall, gather_note, parse_line
from app.flows.simulation import simulate_call

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def library() -> ContentLibrary:
    return load_content(CONTENT_DIR)


def _ctx(language: str = "en") -> engine.PatientContext:
    return engine.PatientContext(
        first_name="Ana", language=language, program_name="North Clinic", program_phone="555-0100"
    )


def _call(library: ContentLibrary, flow: str, language: str = "en", nurse: str | None = None) -> PhoneCall:
    return PhoneCall(library.flows[flow], _ctx(language), library.intents, NOW, nurse_line=nurse, flows=library.flows)


@pytest.mark.parametrize(
    ("line", "heard"),
    [
        ("", Heard()),
        ("183#", Heard(digits="183#")),
        ("1", Heard(digits="1")),
        ("say: no", Heard(speech="no")),
        ("SAY[0.4]: one eighty three", Heard(speech="one eighty three", confidence=0.4)),
        ("say:", Heard()),
        ("hello", None),
        ("say[1.5]: no", None),
    ],
)
def test_parse_line(line: str, heard: Heard | None) -> None:
    assert parse_line(line) == heard


def test_keys_answer_and_the_opening_offers_9(library: ContentLibrary) -> None:
    call = _call(library, "hf-daily-check")
    first = call.start()
    assert "press the pound key" in first.said()
    assert "To stop these calls, press 9." in first.said()
    assert gather_note(first.turn) == "[keys, # to end | speech en-US]"
    step = call.hear(Heard(digits="182#"))
    saved = [e for e in step.events if isinstance(e, engine.SaveAnswer)]
    assert [(e.question_id, e.value) for e in saved] == [("weight", 182.0)]
    assert "Press 1 for yes or 2 for no" in step.said()
    assert gather_note(step.turn) == "[keys, 1 digit | speech en-US]"


def test_low_confidence_speech_is_read_back_before_it_is_saved(library: ContentLibrary) -> None:
    call = _call(library, "hf-daily-check")
    call.start()
    step = call.hear(Heard(speech="183", confidence=0.3))
    assert step.events == ()
    assert "I heard 183. Press 1 if that is right" in step.said()
    again = call.hear(Heard(digits="2"))
    assert "weight today" in again.said() and again.events == ()
    call.hear(Heard(speech="183", confidence=0.3))
    done = call.hear(Heard(digits="1"))
    assert [(e.question_id, e.value) for e in done.events if isinstance(e, engine.SaveAnswer)] == [("weight", 183.0)]


def test_9_stops_calls_and_silence_asks_again_once(library: ContentLibrary) -> None:
    call = _call(library, "hf-daily-check")
    call.start()
    call.hear(Heard(digits="180#"))
    first = call.hear(Heard())
    assert "Sorry, I did not hear you." in first.said() and first.turn.gather is not None
    second = call.hear(Heard())
    assert [e.kind for e in second.events if isinstance(e, engine.SaveAnswer)] == ["unanswered"]
    stop = call.hear(Heard(digits="9"))
    assert "You will not get more calls" in stop.said() and stop.turn.ends
    assert call.ended and call.opted_out_of_calls
    assert call.state is not None and call.state.result == "opted_out_of_calls"


def test_a_spoken_emergency_says_911_and_offers_the_nurse_in_spanish(library: ContentLibrary) -> None:
    call = _call(library, "hf-daily-check", "es", nurse="+15550100")
    call.start()
    step = call.hear(Heard(speech="me duele el pecho ahora", confidence=0.2))
    assert "911" in step.said()
    assert any(isinstance(e, engine.Escalate) and e.level == "EMERGENCY" for e in step.events)
    assert "oprima 0" in step.said()
    dial = call.hear(Heard(digits="0"))
    assert dial.turn.dial == "+15550100" and call.dialing


def test_simulate_call_prints_what_the_caller_hears(library: ContentLibrary) -> None:
    lines: list[str] = []
    simulate_call(
        library.flows["hf-daily-check"], _ctx(), io.StringIO("183#\nsay: yes\n1\n"), lines.append, library.intents,
        now=NOW,
    )  # fmt: skip
    out = "\n".join(lines)
    assert "phone> " in out and "[keys, # to end | speech en-US]" in out
    assert "caller> [keys 183#]" in out and "[answer weight = 183.0 lb]" in out
    assert "ESCALATION EMERGENCY" in out and "911" in out
    assert "(call ended; conversation completed" in out


def _run(library: ContentLibrary, case: dict[str, object]) -> list[tuple[str, str, tuple[str, ...]]]:
    from app.flows.transcripts import TranscriptFile, run_file

    results = run_file(TranscriptFile("t.yaml", "hf-daily-check", [case]), library.flows, library.intents)
    return [(r.channel, r.language, r.failures) for r in results]


def test_a_transcript_case_runs_on_both_channels_with_the_voice_overrides(library: ContentLibrary) -> None:
    case = {
        "name": "both",
        "languages": ["en"],
        "channels": ["sms", "voice"],
        "steps": [
            {"say": ["Reply STOP"], "voice": {"say": ["press 9"], "not_say": ["Reply STOP"]}},
            {"reply": "183", "answers": {"weight": 183}, "voice": {"reply": "183#"}},
            {"reply": "no", "answers": {"breath": False}, "voice": {"reply": "say[0.9]: no"}},
        ],
    }
    assert _run(library, case) == [("sms", "en", ()), ("voice", "en", ())]


def test_a_voice_case_checks_what_the_caller_hears_and_cannot_wait(library: ContentLibrary) -> None:
    case = {
        "name": "voice",
        "languages": ["en"],
        "channels": ["voice"],
        "steps": [{"say": ["Reply STOP"]}, {"wait": "4h"}],
    }
    [(channel, _, failures)] = _run(library, case)
    assert channel == "voice"
    assert "expected the texts to contain 'Reply STOP'" in failures[0] and "press 9" in failures[0]
    assert "a call cannot 'wait'" in failures[1]
    [(_, _, bad)] = _run(library, {**case, "channels": ["fax"]})
    assert bad == ("channel 'fax' is not sms or voice",)


@pytest.mark.parametrize(
    ("language", "reply", "dials"),
    [
        ("en", Heard(speech="yes please"), True),
        ("en", Heard(speech="zero"), True),
        ("en", Heard(speech="nurse"), True),
        ("es", Heard(speech="sí, la enfermera"), True),
        ("es", Heard(speech="cero"), True),
        ("en", Heard(speech="no thanks"), False),
        ("en", Heard(digits="1"), False),
    ],
)
def test_after_an_emergency_the_nurse_can_be_asked_for_by_voice(
    library: ContentLibrary, language: str, reply: Heard, dials: bool
) -> None:
    """A caller in distress may say "yes" or "nurse" instead of pressing 0 (fresh-user review, 2026-11-30)."""
    call = _call(library, "hf-daily-check", language, nurse="+15550100")
    call.start()
    call.hear(Heard(speech="I have chest pain right now" if language == "en" else "me duele el pecho ahora"))
    after = call.hear(reply)
    assert (after.turn.dial == "+15550100") is dials


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "no more calls please"), ("en", "stop calling me"), ("es", "no me llamen más"), ("es", "parar")],
)
def test_asking_to_stop_calls_in_words_is_never_an_answer(library: ContentLibrary, language: str, words: str) -> None:
    """ "No more calls please" at "more short of breath?" was saved as NO (fresh-user review, 2026-11-30): it
    is an opt-out request, flagged for staff; the caller hears how to stop (9) and the question again."""
    call = _call(library, "hf-daily-check", language)
    call.start()
    call.hear(Heard(digits="183#"))
    step = call.hear(Heard(speech=words))
    assert not [e for e in step.events if isinstance(e, engine.SaveAnswer)]
    assert any(isinstance(e, engine.OptOutRequested) for e in step.events)
    said = step.said()
    assert ("press 9" if language == "en" else "oprima 9") in said
    assert ("short of breath" if language == "en" else "falta de aire") in said
    assert "Reply" not in said and "Responda" not in said


def test_key_9_at_the_self_harm_question_is_asked_again_not_an_opt_out(library: ContentLibrary) -> None:
    """PHQ-9 item 9 answered with 9 (the scale is 0-3) stopped every call and left the item unasked, with no
    escalation (fresh-user review, 2026-11-30). There 9 is re-asked; at other questions it still stops calls."""
    call = _call(library, "phq9")
    call.start()
    for _ in range(8):
        call.hear(Heard(digits="0"))
    step = call.hear(Heard(digits="9"))
    assert not call.ended and not call.opted_out_of_calls
    assert any(isinstance(e, engine.NotUnderstood) for e in step.events)
    positive = call.hear(Heard(digits="1"))
    assert any(isinstance(e, engine.Escalate) and e.level == "EMERGENCY" for e in positive.events)


@pytest.mark.parametrize(
    ("language", "snoozed", "again"),
    [("en", "remind you in 30", "Did you take it"), ("es", "le recuerdo en 30", "Oprima 1 si ya la tomó")],
)
def test_a_snooze_ends_the_call_and_the_call_back_asks_again(
    library: ContentLibrary, language: str, snoozed: str, again: str
) -> None:
    """Med-reminder's "2 = remind me in 30 minutes" kept the call listening and never came back: any wait
    reached on a call ends it politely, and after the wait the patient is called back once."""
    call = PhoneCall(
        library.flows["med-reminder"],
        engine.PatientContext(
            first_name="Ana", language=language, program_name="North Clinic", program_phone="555-0100",
            variables={"medication_name": "metoprolol", "dose_time": "8:00"},
        ),
        library.intents,
        NOW,
    )  # fmt: skip
    call.start()
    with pytest.raises(RuntimeError):
        call.call_back(NOW)  # waits on nothing yet
    step = call.hear(Heard(digits="2"))
    assert snoozed in step.said() and step.turn.ends and call.ended and call.waiting
    assert call.state is not None and call.state.status == "active"
    back = call.call_back(NOW + dt.timedelta(minutes=30))
    assert again in back.said() and ("press 9" in back.said() or "oprima 9" in back.said())
    assert back.turn.gather is not None and not call.waiting and not call.ended
    done = call.hear(Heard(digits="1"))
    assert [(e.question_id, e.value) for e in done.events if isinstance(e, engine.SaveAnswer)] == [
        ("dose_retry", "taken")
    ]
    assert call.state.status == "completed"


def test_a_simulated_call_asks_the_nurse_offer_again_and_tells_an_unanswered_nurse_line(
    library: ContentLibrary,
) -> None:
    call = _call(library, "hf-daily-check", "en", nurse="+15550100")
    call.start()
    call.hear(Heard(speech="I have chest pain right now"))
    again = call.hear(Heard(digits="5"))
    assert "911" in again.said() and "press 0" in again.said() and not call.ended
    dialled = call.hear(Heard(digits="0"))
    assert dialled.turn.dial == "+15550100"
    told = call.hear(Heard(dial_status="no-answer"))
    assert "did not answer" in told.said() and "911" in told.said() and call.ended


@pytest.mark.parametrize(("language", "sorry"), [("en", "sorry"), ("es", "disculpe")])
def test_silence_after_a_reply_not_understood_apologises_once(
    library: ContentLibrary, language: str, sorry: str
) -> None:
    call = _call(library, "hf-daily-check", language)
    call.start()
    call.hear(Heard(speech="banana"))
    again = call.hear(Heard())
    said = again.said().lower()
    assert said.count(sorry) + said.count("perdone") == 1, said
    assert ("weight" if language == "en" else "peso") in said
