"""Caregiver routing rules and input checks (issue 12 item 6), as plain functions over data."""

from __future__ import annotations

import pytest

from app.flows.keywords import Keyword
from app.flows.shared_phone import parse_choice, which_person_text
from app.messaging.caregivers import caregiver_keyword_text, emergency_copy_text, reminder_copy_text
from app.patients.caregivers import CaregiverRoute, InvalidCaregiver, caregiver_route, clean_caregiver

ANSWER = frozenset({"answer"})
REMIND = frozenset({"reminders"})


@pytest.mark.parametrize(
    ("caregivers", "conversations", "expected"),
    [
        ([], {}, None),
        ([(1, 10, ANSWER, False)], {10: True}, CaregiverRoute("answer", 1, 10)),
        ([(1, 10, ANSWER, False)], {10: False}, CaregiverRoute("inbox", 1, 10)),
        ([(1, 10, REMIND, False)], {10: True}, CaregiverRoute("inbox", 1, 10)),
        ([(1, 10, ANSWER, True)], {10: True}, CaregiverRoute("ignored", 1, 10)),
        # Caregiver of two patients: the one in a check-in that the scope lets them answer.
        ([(1, 10, REMIND, False), (2, 11, ANSWER, False)], {10: True, 11: True}, CaregiverRoute("answer", 2, 11)),
        ([(1, 10, ANSWER, False), (2, 11, ANSWER, False)], {10: False, 11: True}, CaregiverRoute("answer", 2, 11)),
    ],
)
def test_where_a_caregiver_text_goes(
    caregivers: list[tuple[int, int, frozenset[str], bool]], conversations: dict[int, bool], expected: object
) -> None:
    assert caregiver_route(caregivers, conversations) == expected


def test_clean_caregiver_normalises_and_names_each_bad_field() -> None:
    clean = clean_caregiver({"phone": "202-555-0999", "scopes": ["answer", "answer", "reminders"],
                             "consent_basis": "patient_text"})  # fmt: skip
    assert clean["phone"] == "+12025550999"
    assert clean["scopes"] == ["answer", "reminders"]
    with pytest.raises(InvalidCaregiver) as caught:
        clean_caregiver({"phone": "x", "scopes": [], "consent_basis": "maybe", "name": "a\x00b", "language": "fr"})
    assert set(caught.value.fields) == {"phone", "scopes", "consent_basis", "name", "language"}


@pytest.mark.parametrize("language", ["en", "es"])
def test_caregiver_texts_carry_no_health_detail_and_exist_in_both_languages(language: str) -> None:
    reminder = reminder_copy_text(language, "North Clinic", "Maria")
    assert "Maria" in reminder and ("STOP" in reminder or "PARAR" in reminder)
    plain = emergency_copy_text(language, "North Clinic", "Maria", crisis_line=False)
    crisis = emergency_copy_text(language, "North Clinic", "Maria", crisis_line=True)
    assert "911" in plain and "988" not in plain and "988" in crisis
    for keyword in Keyword:
        assert "North Clinic" in caregiver_keyword_text(keyword, language, "North Clinic", "555-0100")
    if language == "es":
        assert "Maria" in reminder and "recordatorio" in reminder


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 0), ("2", 1), (" 2. ", 1), ("3", None), ("0", None), ("Luis", 1), ("luis!", 1), ("MARÍA", 0),
     ("Soy Luis", None), ("182", None), ("", None)],
)  # fmt: skip
def test_which_person_by_number_or_first_name(text: str, expected: int | None) -> None:
    assert parse_choice(text, ["María", "Luis"]) == expected


def test_same_first_names_are_chosen_by_number_only() -> None:
    assert parse_choice("Ana", ["Ana", "Ana"]) is None
    assert parse_choice("2", ["Ana", "Ana"]) == 1


def test_which_person_question_in_each_language_of_the_two() -> None:
    english = which_person_text("North Clinic", ["Maria", "Luis"], ["en", "en"])
    assert english == "North Clinic: This phone is shared. Who is answering? Reply 1 for Maria, 2 for Luis."
    both = which_person_text("North Clinic", ["Maria", "Luis"], ["es", "en"])
    spanish, then = both.split("\n\n")
    assert "Responda 1 para Maria, 2 para Luis" in spanish and "Reply 1 for Maria" in then
