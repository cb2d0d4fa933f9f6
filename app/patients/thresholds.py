"""Clinically plausible ranges for the per-patient threshold overrides (the care plan's ``thresholds``).

A care plan may move a flow's threshold for one patient (``weight_gain_1_day_lb: 2``), but never to a value
that switches the alert off (a glucose "very low" of 0 mg/dL, a weight gain of 9,999 lb) nor so that the
bands cross (a "low" above the "high"). Every override goes through ``threshold_problems`` wherever it is
set: ``PUT /patients/<id>/care-plan``, ``POST /patients`` and the CSV import.

Sources:
- Glucose (mg/dL): ADA Standards of Care, section 6 (Glycemic goals and hypoglycemia): level 1
  hypoglycemia below 70 mg/dL, level 2 below 54 mg/dL; ketone checks from about 240 mg/dL (ADA, "Checking
  for ketones"); home meters read HI above about 500-600 mg/dL, so a "very high" above 500 would never fire.
- Weight (lb): 2022 AHA/ACC/HFSA heart failure guideline and the HFSA patient education ("call if you gain
  more than 2-3 pounds in a day or 5 pounds in a week"); a 1-day band above 5 lb or a 7-day band above 10 lb
  would miss decompensation.
- Questionnaire cut-offs (score points): PHQ-2 0-6 (positive at 3, Kroenke 2003), PHQ-9 0-27 (moderate 10,
  severe 20, Kroenke 2001), GAD-7 0-21 (severe 15, Spitzer 2006), HITS 4-20 (positive above 10, Sherin 1998).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

# name -> (lowest, highest) allowed, inclusive, in the threshold's unit (the suffix: mgdl = mg/dL, lb).
THRESHOLD_RANGES: dict[str, tuple[float, float]] = {
    "gad7_routine_at": (5, 21),
    "glucose_high_mgdl": (140, 400),
    "glucose_low_mgdl": (54, 100),
    "glucose_very_high_mgdl": (180, 500),
    "glucose_very_low_mgdl": (40, 70),
    "hits_positive_at": (5, 20),
    "phq2_positive_at": (1, 6),
    "phq9_routine_at": (5, 27),
    "phq9_urgent_at": (10, 27),
    "weight_gain_1_day_lb": (1, 5),
    "weight_gain_7_days_lb": (2, 10),
    "weight_loss_1_day_lb": (1, 10),
    "weight_loss_7_days_lb": (2, 15),
}

# Each chain must be strictly increasing once the overrides are laid over the flows' defaults.
THRESHOLD_ORDER: tuple[tuple[str, ...], ...] = (
    ("glucose_very_low_mgdl", "glucose_low_mgdl", "glucose_high_mgdl", "glucose_very_high_mgdl"),
    ("phq9_routine_at", "phq9_urgent_at"),
)


def threshold_problems(values: Mapping[str, float], defaults: Mapping[str, float] | None = None) -> dict[str, str]:
    """Problems with threshold overrides, by threshold name (empty: all fine).

    ``values``: name -> number (the threshold's unit); names are assumed known (the caller refuses unknown
    ones). ``defaults``: the flows' values the overrides replace; the ordering of each ``THRESHOLD_ORDER``
    chain is checked on ``{**defaults, **values}`` and reported on the overridden names. A name without a
    range (a new flow's threshold) is refused: its plausible range must be added here first."""
    problems: dict[str, str] = {}
    for name in sorted(values):
        value = float(values[name])
        bounds = THRESHOLD_RANGES.get(name)
        if bounds is None:
            problems[name] = "no plausible range is known for this threshold"
        elif not bounds[0] <= value <= bounds[1]:
            problems[name] = f"must be between {bounds[0]:g} and {bounds[1]:g}"
    effective = {**(defaults or {}), **{k: float(v) for k, v in values.items()}}
    for chain in THRESHOLD_ORDER:
        present = [name for name in chain if name in effective]
        for lower, upper in itertools.pairwise(present):
            if effective[lower] >= effective[upper] and (lower in values or upper in values):
                name = upper if upper in values else lower
                shown = f"{effective[lower]:g} >= {effective[upper]:g}"
                order = f"{lower} must be below {upper} ({shown})"
                problems[name] = f"{problems[name]}, and {order}" if name in problems else order
    return problems
