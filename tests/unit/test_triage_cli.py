"""``outreach triage`` and ``outreach triage-eval`` through the Flask CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask

from app.cli import main as cli

HELDOUT = Path(__file__).with_name("triage_heldout.tsv")


def test_triage_prints_one_verdict_per_line(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        cli, ["triage", "--lang", "es"], input="me duele el pecho\nya no quiero vivir y no puedo respirar\nsi\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines[0] == {"level": "EMERGENCY", "reasons": ["chest_pain", "pain"], "confirm": False, "crisis_line": False}
    assert lines[1]["level"] == "EMERGENCY" and set(lines[1]["reasons"]) >= {"suicide", "breathing"}
    assert lines[1]["crisis_line"] is True
    assert lines[2] == {"level": None, "reasons": [], "confirm": False, "crisis_line": False}


def test_triage_eval_summarises_in_the_last_six_lines(app: Flask, tmp_path: Path) -> None:
    labeled = tmp_path / "mini.tsv"
    labeled.write_text(
        "lang\texpect\treason\ttext\n"
        "en\tEMERGENCY\tchest_pain\tmy chest hurts\n"
        "en\tEMERGENCY\tstroke\tall good here\n"
        "en\tCONFIRM\tchest_pain\tchest pain last night, gone now\n"
        "en\tNONE\tnone\tweight 180\n"
        "en\tNONE\tchest_pain\ti have chest pain\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(cli, ["triage-eval", str(labeled), "--misses"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "recall chest_pain" in result.output and "1/1" in result.output
    assert sum(line.startswith("miss mini.tsv:") for line in lines) == 2
    assert lines[-6:] == [
        "rows: 5",
        "EMERGENCY recall: 1/2 = 50.0%",
        "EMERGENCY on NONE rows (false alarms): 1/2 = 50.0%",
        "CONFIRM rows at least confirmed: 1/1 = 100.0%",
        "failing rows: 2",
        "targets (recall >= 98%, false alarms <= 5%, every CONFIRM confirmed): NOT met",
    ]


def test_triage_eval_on_the_held_out_file_meets_the_targets(app: Flask) -> None:
    result = app.test_cli_runner().invoke(cli, ["triage-eval", str(HELDOUT)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith(": met")


def test_triage_eval_rejects_a_file_without_the_header(app: Flask, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\nhello\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(cli, ["triage-eval", str(bad)])
    assert result.exit_code != 0 and "header" in result.output
