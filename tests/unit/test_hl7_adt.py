"""Reading HL7 v2 ADT messages (the ``hl7`` parser) into plain data, and the ACKs: real-world shapes and
malformed ones, each refused with the field and reason (no value from the message in the reason)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.programs.hl7_adt import AdtProblem, ack_code_of, build_ack, language_code, localise, read_adt
from tests.support.hl7_messages import adt

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)


def test_a_real_world_discharge_is_read_field_by_field() -> None:
    event = read_adt(adt(diagnoses=("I50.23^Acute on chronic systolic HF^I10", "E11.9^Type 2 diabetes^I10")))
    assert event.event == "A03"
    assert event.control_id == "MSG00001"
    assert event.sender == "EPIC|GENERAL HOSP"
    assert event.mrn == "E1001"  # the MR repetition of PID-3, not the SSN
    assert (event.given_name, event.family_name) == ("Mary", "O&Brien")  # \T\ unescaped; first PID-5 repeat
    assert event.birth_date == dt.date(1950, 3, 1)
    assert event.phones[0] == "+16175550199"  # the cell (CP) first, built from its components
    assert event.phones[1] == "(617)555-0123"
    assert event.language == "en"
    assert (event.unit, event.visit_number) == ("4W-CARD", "V123456")
    assert event.discharged_at == dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert event.admitted_at == dt.datetime(2026, 11, 27, 10, 0)  # no offset: local to the program
    assert event.diagnoses == ("I50.23", "E11.9")


def test_missing_optional_fields_are_none_and_line_endings_do_not_matter() -> None:
    text = "\n".join(
        [
            "MSH|^~\\&|ADT1|MCM|||20261130||ADT^A08|CTRL-9|P|2.3",
            "PID|||55501||DOE^JOHN",
        ]
    )
    event = read_adt(text)
    assert (event.event, event.mrn, event.family_name, event.given_name) == ("A08", "55501", "DOE", "JOHN")
    assert event.phones == () and event.language is None and event.unit is None and event.diagnoses == ()


def test_the_event_may_come_from_evn_when_msh_9_has_only_the_type() -> None:
    text = "MSH|^~\\&|A|B|C|D|20261130||ADT|X1|P|2.3\rEVN|A01|20261130\rPID|||77^^^^MR||ROE^JANE\r"
    assert read_adt(text).event == "A01"


@pytest.mark.parametrize(
    ("text", "code", "reason"),
    [
        ("", "AR", "must start with an MSH segment"),
        ("hello there", "AR", "must start with an MSH segment"),
        ("PID|||1||DOE^JOHN\r", "AR", "must start with an MSH segment"),
        ("MSH|^~\\&|A|B|C|D|20261130||ADT^A03|||2.5\rPID|||1||DOE^JOHN", "AR", "MSH-10"),
        ("MSH|^~\\&|A|B|C|D|20261130||ORU^R01|C1|P|2.5\rPID|||1||DOE^JOHN", "AR", "MSH-9"),
        ("MSH|^~\\&|A|B|C|D|20261130||ADT^ZZZ|C1|P|2.5\rPID|||1", "AR", "MSH-9.2"),
        ("MSH|^~\\&|A|B|C|D|20261130||ADT^A03|C1|P|2.5\rEVN|A03|20261130", "AE", "PID: the patient"),
        ("MSH|^~\\&|A|B|C|D|20261130||ADT^A03|C1|P|2.5\rPID|1||^^^GH^MR||DOE^JOHN", "AE", "PID-3"),
    ],
)
def test_malformed_messages_are_refused_with_the_field_and_reason(text: str, code: str, reason: str) -> None:
    with pytest.raises(AdtProblem) as raised:
        read_adt(text)
    assert raised.value.ack_code == code
    assert reason in raised.value.reason


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("PID-7", adt().replace("19500301", "19501399")),
        ("PV1-45", adt(discharged="2026-11-30")),
        ("PV1-45", adt(discharged="20261130080000+2500")),
        ("PID-7", adt().replace("19500301", "17000101")),
    ],
)
def test_bad_dates_are_an_application_error_naming_the_field(field: str, message: str) -> None:
    with pytest.raises(AdtProblem) as raised:
        read_adt(message)
    assert raised.value.ack_code == "AE"
    assert raised.value.reason.startswith(field)
    assert raised.value.control_id == "MSG00001"


def test_other_adt_events_are_read_without_patient_checks() -> None:
    event = read_adt(adt("A02"))
    assert event.event == "A02" and event.mrn == ""


def test_languages() -> None:
    assert [language_code(v) for v in ("es", "SPA", "Spanish", "eng", "", "fr")] == ["es", "es", "es", "en", None, None]


def test_a_time_without_offset_is_the_programs_local_time() -> None:
    local = dt.datetime(2026, 7, 1, 9, 0)
    assert localise(local, "America/Chicago") == dt.datetime(2026, 7, 1, 14, 0, tzinfo=dt.UTC)


def test_acks_carry_the_code_the_control_id_and_the_reason() -> None:
    ack = build_ack(adt(), "AE", "PID-13: no phone number that can receive texts", now=NOW)
    segments = ack.rstrip("\r").split("\r")
    assert segments[0].startswith("MSH|^~\\&|OUTREACH|NORTH|EPIC|GENERAL HOSP|")
    assert "|ACK^A03^ACK|" in segments[0]
    assert segments[1] == "MSA|AE|MSG00001|PID-13: no phone number that can receive texts"
    assert segments[2].startswith("ERR|||207^")
    assert ack_code_of(ack) == "AE"
    accepted = build_ack(adt(), "AA", "ok", now=NOW)
    assert ack_code_of(accepted) == "AA" and "ERR" not in accepted


def test_an_ack_for_garbage_still_has_a_header_and_no_injected_delimiters() -> None:
    ack = build_ack("garbage", "AR", "not an HL7 v2 message|with^delims", now=NOW)
    assert ack.startswith("MSH|^~\\&|OUTREACH|")
    assert "MSA|AR||not an HL7 v2 message with delims\r" in ack
