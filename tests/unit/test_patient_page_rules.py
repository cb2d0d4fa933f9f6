"""Pure rules behind the patient page: chart scaling, CCM minute totals, which discharge a logged call
feeds (TCM), when a one-off text may go, and answers in words."""

from __future__ import annotations

import datetime as dt

import pytest

from app.flows.model import Choice, Node
from app.messaging.staff_text import refusal
from app.programs.care_calls import (
    DischargeWindow,
    ccm_month,
    check_call,
    discharge_to_feed,
    monthly_minutes,
)
from app.programs.tcm import Attempt, tcm_status
from app.web.charts import PAD_BOTTOM, PAD_LEFT, PAD_RIGHT, PAD_TOP, Threshold, nice_step, scale_chart, value_range
from app.web.patient_page import answer_text, question_text, weight_alert_lines

UTC = dt.UTC


def day(n: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 11, 1, hour, tzinfo=UTC) + dt.timedelta(days=n)


# --- chart scaling -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("span", "step"), [(10, 5), (7, 2), (40, 10), (0.3, 0.1), (250, 100), (18, 5)])
def test_nice_steps_are_1_2_or_5_times_a_power_of_ten(span: float, step: float) -> None:
    assert nice_step(span) == pytest.approx(step)


def test_the_range_covers_readings_and_thresholds_rounded_out() -> None:
    assert value_range([180, 184], [187]) == (180, 188)
    assert value_range([95, 120], [70, 240, 300]) == (0, 300)
    low, high = value_range([182], [])  # flat: a band around the value, never a zero-height range
    assert low < 182 < high
    with pytest.raises(ValueError):
        value_range([], [])


def test_points_span_the_plot_left_to_right_and_high_values_are_higher() -> None:
    chart = scale_chart([(day(2), 184.0), (day(0), 180.0), (day(1), 181.0)], [Threshold("gain", 187.0)])
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs)  # sorted by time
    assert xs[0] == pytest.approx(PAD_LEFT) and xs[-1] == pytest.approx(640 - PAD_RIGHT)
    assert xs[1] == pytest.approx((PAD_LEFT + 640 - PAD_RIGHT) / 2)
    ys = {p.value: p.y for p in chart.points}
    assert ys[184] < ys[181] < ys[180]  # SVG y grows downwards
    [line] = chart.lines
    assert line.y < ys[184]  # the threshold is above every reading, inside the plot
    assert PAD_TOP <= line.y <= 220 - PAD_BOTTOM
    # The extremes of the range sit on the plot's edges.
    assert chart.low == 180 and chart.high == 188
    assert ys[180] == pytest.approx(220 - PAD_BOTTOM)
    assert chart.polyline.split(" ")[0] == f"{PAD_LEFT:.1f},{220 - PAD_BOTTOM:.1f}"


def test_a_single_reading_is_centred_and_alerts_are_marked() -> None:
    chart = scale_chart([(day(0), 190.0)], [Threshold("gain", 187.0)], alert_at=187.0)
    [point] = chart.points
    assert point.x == pytest.approx((PAD_LEFT + 640 - PAD_RIGHT) / 2) and point.alert
    assert chart.y_ticks[0].label == f"{chart.low:g}"
    assert len(chart.x_ticks) == 1


def test_weight_alert_lines_follow_the_hf_rules() -> None:
    readings = [(day(0), 182.0), (day(3), 179.0), (day(8), 181.0), (day(9), 183.0)]
    one_day, one_week = weight_alert_lines(readings, 3, 5, ("day", "week"))
    assert one_day.value == 186  # the latest reading + 3 lb (tomorrow's 1-day baseline)
    assert one_week.value == 184  # the lowest of the last 7 days (179 is 6 days before the latest) + 5
    assert weight_alert_lines([], 3, 5, ("day", "week")) == []


# --- CCM minutes -------------------------------------------------------------------------------------


def test_minutes_add_up_per_calendar_month_in_the_programs_zone() -> None:
    entries = [
        (dt.datetime(2026, 11, 30, 12, tzinfo=UTC), 10),
        # 02:30 UTC on Dec 1 is still Nov 30 in New York: November's minutes.
        (dt.datetime(2026, 12, 1, 2, 30, tzinfo=UTC), 12),
        (dt.datetime(2026, 12, 1, 15, tzinfo=UTC), 5),
        (dt.datetime(2026, 10, 3, 15, tzinfo=UTC), -3),
    ]
    assert monthly_minutes(entries, "America/New_York") == {"2026-12": 5, "2026-11": 22, "2026-10": 0}
    assert monthly_minutes(entries, "UTC") == {"2026-12": 17, "2026-11": 10, "2026-10": 0}


@pytest.mark.parametrize(
    ("minutes", "met", "remaining"), [(0, False, 20), (19, False, 1), (20, True, 0), (45, True, 0)]
)
def test_cpt_99490_needs_20_minutes_a_month(minutes: int, met: bool, remaining: int) -> None:
    month = ccm_month("2026-11", minutes)
    assert (month.met, month.remaining) == (met, remaining)


def test_a_call_needs_a_known_outcome_sane_minutes_and_no_future() -> None:
    now = day(5)
    assert check_call("reached", 10, now, now) == {}
    assert check_call("texted", 10, now, now) == {"outcome": "unknown"}
    assert check_call("voicemail", None, now, now) == {"minutes": "range"}
    assert check_call("voicemail", 241, now, now) == {"minutes": "range"}
    assert check_call("no_answer", 0, now + dt.timedelta(hours=1), now) == {"at": "future"}


# --- the TCM feed ------------------------------------------------------------------------------------


def test_a_call_feeds_the_latest_open_discharge_within_30_days() -> None:
    older = DischargeWindow(1, day(0), "open")
    newer = DischargeWindow(2, day(10), "open")
    cancelled = DischargeWindow(3, day(12), "cancelled")
    assert discharge_to_feed([older, newer, cancelled], day(13)) == 2
    assert discharge_to_feed([older], day(5)) == 1
    assert discharge_to_feed([older], day(31)) is None  # past the 30-day TCM period
    assert discharge_to_feed([newer], day(9)) is None  # before that discharge
    assert discharge_to_feed([cancelled], day(13)) is None
    assert discharge_to_feed([], day(1)) is None


def test_two_logged_unsuccessful_calls_in_time_meet_the_tcm_clock() -> None:
    discharged, deadline = day(0, 9), day(2, 23)
    attempts = [Attempt("voicemail", "phone", day(1, 10)), Attempt("wrong_number", "phone", day(1, 15))]
    assert tcm_status(discharged, deadline, attempts[:1], day(1, 11), cancelled=False).status == "due"
    met = tcm_status(discharged, deadline, attempts, day(1, 16), cancelled=False)
    assert (met.status, met.met_by) == ("met", "two_attempts")


# --- one-off texts -----------------------------------------------------------------------------------

NY = "America/New_York"
AFTERNOON = dt.datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 14:00 in New York
NIGHT = dt.datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 03:00 in New York


def may(**overrides: object) -> str | None:
    values: dict[str, object] = {
        "opted_out": False,
        "can_text": True,
        "body": "Please call us.",
        "is_reply": False,
        "now": AFTERNOON,
        "tz": NY,
        "start_hour": 8,
        "end_hour": 21,
    }
    values.update(overrides)
    return refusal(**values)  # type: ignore[arg-type]


def test_a_one_off_text_respects_opt_out_number_length_and_quiet_hours() -> None:
    assert may() is None
    assert may(opted_out=True) == "opted_out"
    assert may(opted_out=True, is_reply=True) == "opted_out"  # STOP binds a reply too
    assert may(can_text=False) == "cannot_text"
    assert may(body="   ") == "empty"
    assert may(body="x" * 641) == "too_long"
    assert may(now=NIGHT) == "quiet_hours"
    assert may(now=NIGHT, is_reply=True) is None  # a reply in an open conversation goes out
    assert may(now=NIGHT, tz="Asia/Tokyo") is None  # 17:00 where the patient lives
    # A program's window narrower than 8-21 is kept; a wider one is clipped to 8-21.
    assert may(start_hour=15) == "quiet_hours"
    assert may(now=dt.datetime(2026, 11, 24, 12, 30, tzinfo=UTC), start_hour=6) == "quiet_hours"  # 07:30


# --- answers in words --------------------------------------------------------------------------------


def test_answers_read_as_words_in_english_and_spanish() -> None:
    scale = Node(
        id="phq9_1",
        type="question",
        text={"en": "{first_name}, little interest?", "es": "{first_name}, ¿poco interés?"},
        choices=(
            Choice(id="not_at_all", label={"en": "Not at all", "es": "Ningún día"}, value=0),
            Choice(id="several_days", label={"en": "Several days", "es": "Varios días"}, value=1),
        ),
    )
    assert answer_text(scale, "scale", 1.0, None, "en") == "Several days (1)"
    assert answer_text(scale, "scale", 1.0, None, "es") == "Varios días (1)"
    assert answer_text(None, "yes_no", True, None, "es") == "sí"
    assert answer_text(None, "yes_no", False, None, "en") == "no"
    assert answer_text(None, "number", 183.0, "lb", "en") == "183 lb"
    assert answer_text(None, "unknown", None, None, "es") == "no está seguro"
    assert answer_text(None, "unanswered", None, None, "en") == "no answer"
    from app.flows.model import Flow

    flow = Flow(id="f", version="1", title={"en": "F"}, languages=("en", "es"), start="phq9_1", nodes={"phq9_1": scale})
    assert question_text(flow, "phq9_1", "es", {"first_name": "Rosa"}) == "Rosa, ¿poco interés?"
    assert question_text(flow, "phq9_1", "en", {}) == "…, little interest?"
    assert question_text(flow, "gone", "en", {}) == "gone"
    greeting = Node(id="w", type="question", text={"en": "{program_name}: Hi {first_name}. What is your weight?"})
    flow = Flow(id="f", version="1", title={"en": "F"}, languages=("en",), start="w", nodes={"w": greeting})
    assert question_text(flow, "w", "en", {"first_name": "Rosa", "program_name": "North"}) == "What is your weight?"
