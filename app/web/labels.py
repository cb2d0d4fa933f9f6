"""Words for codes that staff read: escalation outcomes (a fixed list) and reasons (named by content)."""

from __future__ import annotations

from app.i18n import gettext_for


def outcome_label(code: str, language: str) -> str:
    _ = gettext_for(language)
    labels = {
        "reached_patient": _("Reached the patient"),
        "advised_911": _("Advised to call 911"),
        "appointment_made": _("Appointment made"),
        "medication_adjusted": _("Medication adjusted"),
        "no_action_needed": _("No action needed"),
        "unable_to_reach": _("Unable to reach"),
        "duplicate": _("Duplicate"),
    }
    return labels.get(code, code.replace("_", " "))


def reason_label(code: str, language: str) -> str:
    """Reasons come from flow files (clinician-named codes); shown readable, not translated per code."""
    return code.replace("_", " ")
