"""The plausible ranges of per-patient thresholds (app/patients/thresholds.py)."""

from __future__ import annotations

from pathlib import Path

from app.content import load_content
from app.patients.service import ValidationFailed, clean_patient
from app.patients.thresholds import THRESHOLD_RANGES, threshold_problems

CONTENT = Path(__file__).resolve().parents[2] / "content"


def test_every_flow_threshold_has_a_range_holding_its_default() -> None:
    defaults = load_content(CONTENT).threshold_defaults()
    assert set(defaults) <= set(THRESHOLD_RANGES)
    for name, value in defaults.items():
        low, high = THRESHOLD_RANGES[name]
        assert low <= value <= high, name
    assert threshold_problems(defaults, defaults) == {}


def test_out_of_range_and_crossed_bands_are_named() -> None:
    defaults = {"glucose_very_low_mgdl": 54, "glucose_low_mgdl": 70, "glucose_high_mgdl": 240}
    assert set(threshold_problems({"glucose_very_low_mgdl": 0, "weight_gain_1_day_lb": 9999})) == {
        "glucose_very_low_mgdl",
        "weight_gain_1_day_lb",
    }
    crossed = threshold_problems({"glucose_low_mgdl": 100}, {**defaults, "glucose_high_mgdl": 100})
    assert "must be below" in crossed["glucose_low_mgdl"]
    assert threshold_problems({"glucose_low_mgdl": 60}, defaults) == {}  # 54 < 60 < 240


def test_the_csv_and_patient_payload_path_refuses_them_too() -> None:
    payload = {"mrn": "1", "given_name": "A", "family_name": "B", "phone": "+12025550100"}
    known = {"glucose_low_mgdl": 70.0, "glucose_high_mgdl": 240.0}
    try:
        clean_patient({**payload, "thresholds": {"glucose_low_mgdl": 400}}, known)
    except ValidationFailed as exc:
        assert "thresholds" in exc.fields
    else:
        raise AssertionError("accepted glucose_low_mgdl 400")
    assert clean_patient({**payload, "thresholds": {"glucose_low_mgdl": 80}}, known)["thresholds"] == {
        "glucose_low_mgdl": 80.0
    }
