"""The ADT mapping is content: checked with file, line and reason; discharges map to campaigns and
conditions by unit and ICD-10 prefix."""

from __future__ import annotations

import pytest

from app.config import CONTENT_DIR
from app.flows.loader import FlowError
from app.programs.mapping import load_mapping, parse_mapping

CAMPAIGNS = {
    "post-discharge-30d",
    "post-discharge-tcm",
    "hf-remote-monitoring",
    "diabetes-monitoring",
    "copd-monitoring",
    "medication-adherence",
}


def test_the_shipped_mapping_loads_and_maps_heart_failure_diabetes_and_copd() -> None:
    mapping = load_mapping(CONTENT_DIR, CAMPAIGNS)
    hf = mapping.for_discharge("5E-MED", ["I50.23"])
    assert hf.campaigns == ("post-discharge-30d", "hf-remote-monitoring")
    assert hf.conditions == ("heart_failure",)
    assert mapping.for_discharge(None, ["e11.9"]).conditions == ("diabetes",)
    assert mapping.for_discharge(None, ["e11.9"]).campaigns == ("post-discharge-30d", "diabetes-monitoring")
    assert mapping.for_discharge(None, ["J44.1"]).conditions == ("copd",)
    assert mapping.for_discharge(None, ["J44.1"]).campaigns == ("post-discharge-30d", "copd-monitoring")
    assert mapping.for_discharge(None, ["I10"]).campaigns == ("post-discharge-30d",)
    # The cardiac unit brings HF monitoring without a code; no duplicates when both apply.
    assert mapping.for_discharge("4w-card", ["I5022"]).campaigns == ("post-discharge-30d", "hf-remote-monitoring")


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("discharge:\n  campaigns: [nope]\n", 2, "unknown campaign 'nope'"),
        ("units:\n  - unit: 4W\n    campaigns: [post-discharge-tcm]\n  - unit: 4w\n", 4, "mapped twice"),
        ("diagnoses:\n  - codes: [I50]\n    conditions: [heart-failure]\n", 3, "unknown condition"),
        ("diagnoses:\n  - codes: [not-a-code]\n    conditions: [copd]\n", 2, "not an ICD-10 code"),
        ("diagnoses:\n  - codes: [J44]\n", 2, "give campaigns or conditions"),
        ("diagnoses:\n  - conditions: [copd]\n", 2, "'codes'"),
        ("units:\n  - campaigns: [post-discharge-tcm]\n", 2, "'unit'"),
        ("discharge:\n  campaign: [post-discharge-tcm]\n", 2, "unknown field 'campaign'"),
        ("wards: []\n", 1, "unknown section"),
        ("diagnoses: [\n", 2, "not valid YAML"),
    ],
)
def test_bad_mappings_name_file_line_and_reason(source: str, line: int, reason: str) -> None:
    with pytest.raises(FlowError) as raised:
        parse_mapping(source, "content/adt-mapping.yaml", CAMPAIGNS)
    assert raised.value.path == "content/adt-mapping.yaml"
    assert raised.value.line == line, str(raised.value)
    assert reason in raised.value.reason


def test_facilities_pick_a_program() -> None:
    mapping = parse_mapping("facilities:\n  General Hosp: north-clinic\n", "m.yaml", CAMPAIGNS)
    assert mapping.program_for("GENERAL HOSP") == "north-clinic"
    assert mapping.program_for("OTHER") is None
