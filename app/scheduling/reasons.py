"""Why a touch was skipped or deferred, an enrollment refused or stopped, in plain words for staff (en, es).

Every skipped or deferred touch writes a timeline row with one of these codes (issue 10 item 3: never a
silent skip); the patient page and ``GET /api/v1/patients/<id>/timeline`` show the text.
"""

from __future__ import annotations

from app.i18n import gettext_for


def reason_text(code: str, language: str) -> str:
    """The plain-language text of a reason code; an unknown code is shown readable."""
    _ = gettext_for(language)
    texts = {
        "stale": _("Skipped: it was too late to send it (never sent late)."),
        "daily_cap": _("Skipped: only 1 text a day is allowed without express consent."),
        "weekly_cap": _("Skipped: only 3 texts a week are allowed without express consent."),
        "program_daily_cap": _("Skipped: the program's daily limit of check-ins for this patient was reached."),
        "program_weekly_cap": _("Skipped: the program's weekly limit of check-ins for this patient was reached."),
        "quiet_hours": _("Moved to the next morning: outside texting hours in the patient's time zone."),
        "conversation_active": _("Waiting: the patient is answering another check-in."),
        "already_reached": _("Skipped: the patient was already reached."),
        "opted_out": _("Cancelled: the patient opted out."),
        "unreachable": _("Cancelled: the patient cannot be reached."),
        "enrollment_stopped": _("Cancelled: the enrollment has stopped."),
        "busy": _("Skipped: another conversation started at the same moment."),
        "closed_unanswered": _("An unanswered check-in was closed so the next one could go out."),
        "consent_required": _("Not enrolled: this campaign sends more than the limit without express consent."),
        "condition_not_met": _("Nothing scheduled: the patient does not have a condition this campaign is for."),
        "readmitted": _("Stopped: the patient was readmitted."),
        "goal_met": _("Stopped: the goal was met."),
        "unenrolled": _("Stopped: the patient was unenrolled."),
        "nothing_to_monitor": _("Skipped: the care plan names no monitoring this check-in covers."),
        "combined_check_in": _("Stopped: replaced by one combined daily check-in."),
        "care_plan_changed": _("Rescheduled: the care plan changed."),
        "schedule_changed": _("Rescheduled: the time zone, times, anchor date or campaign changed."),
        "express_written": _("Consent recorded: express written consent."),
        "express_oral": _("Consent recorded: express oral consent."),
        "health_care_exemption": _("Consent recorded: health-care exemption (1 a day, 3 a week)."),
        "awaiting_consent": _("Skipped: the program waits for the patient's consent, asked in the welcome."),
        "welcome_first": _("The welcome went first: the program waits for the patient's consent."),
        "consent_declined": _("The patient said no to texts and calls in the welcome."),
        "preferred_time": _("Preferred time of day changed; check-ins move to it."),
        "interpreter_needed": _("Interpreter answer recorded."),
        "caregiver_may_receive": _("Caregiver messages answer recorded."),
        "social_needs_referred": _("Social-needs follow-up scheduled in two weeks."),
        "education_daily_cap": _("Moved to tomorrow: today's 1 text is used; a lesson is never urgent."),
        "education_weekly_cap": _("Moved to tomorrow: this week's 3 texts are used; a lesson is never urgent."),
        "education_yields": _("Moved to tomorrow: today's 1 text is kept for a check-in; a lesson is never urgent."),
        "lesson_sent": _("Lesson sent."),
        "permission_granted": _("Caregiver permission recorded (scope and consent)."),
        "permission_revoked": _("Caregiver permission withdrawn."),
        "caregiver_opted_out": _("The caregiver replied STOP: no more texts to the caregiver."),
        "caregiver_opted_in": _("The caregiver replied START: caregiver texts again."),
        "answered_for_patient": _("The caregiver answered the check-in for the patient."),
        "cannot_text": _("Skipped: the patient cannot get texts."),
        "education_sent": _("Lesson part sent."),
        "education_read": _("The patient replied MORE: lesson part read, next part sent."),
        "wait_after_calling_hours": _(
            "Not confirmed: on a call the patient asked to be reminded later, but that time is outside calling "
            "hours and the patient cannot get texts, so no reminder was made."
        ),
    }
    return texts.get(code, code.replace("_", " "))
