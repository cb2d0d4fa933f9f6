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
    """Reasons that only triage names (app/triage, content/triage/concepts.yaml) are translated; reasons that
    flow files name (clinician-named codes, some shared with triage: chest_pain, swelling...) are shown
    readable, not translated per code."""
    _ = gettext_for(language)
    labels = {
        "breathing": _("Severe trouble breathing"),
        "stroke": _("Stroke signs"),
        "unresponsive": _("Unresponsive"),
        "seizure": _("Seizure"),
        "fainting": _("Fainting"),
        "overdose": _("Overdose or poisoning"),
        "suicide": _("Suicide risk or self-harm"),
        "bleeding": _("Severe bleeding"),
        "coughing_blood": _("Coughing up blood"),
        "allergic_reaction": _("Severe allergic reaction"),
        "severe_hypoglycemia": _("Severe low blood sugar"),
        "dizziness": _("Dizziness"),
        "fever": _("Fever or chills"),
        "vomiting": _("Nausea or vomiting"),
        "high_sugar": _("High blood sugar"),
        "low_sugar": _("Low blood sugar"),
        "cough": _("Cough"),
        "wound": _("Wound problem"),
        "pain": _("Pain"),
    }
    return labels.get(code, code.replace("_", " "))


def enrollment_status_label(code: str, language: str) -> str:
    """An enrollment's status or a change on its timeline (app/programs/enrollment.py)."""
    _ = gettext_for(language)
    labels = {
        "active": _("active"),
        "paused": _("paused"),
        "ended": _("ended"),
        "created": _("enrolled"),
        "moved": _("new start date"),
        "resumed": _("resumed"),
    }
    return labels.get(code, code.replace("_", " "))
