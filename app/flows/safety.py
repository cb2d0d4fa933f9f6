"""What the patient is told when triage finds something: the emergency text and the "right now?" question.

Pure (Babel strings only). Sources: DESIGN §4.3-4.4 (911 for an emergency, 988 for thoughts of suicide,
both said when both apply); 988 Suicide & Crisis Lifeline (988lifeline.org: call or text 988; in Spanish
press 2 on a call, or text AYUDA); Poison Control (poison.org: 1-800-222-1222, US, 24/7); National Domestic
Violence Hotline (thehotline.org: call 1-800-799-7233 or text START to 88788, 24/7, English and Spanish).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.i18n import gettext_for
from app.triage.verdict import Finding


def emergency_text(
    language: str,
    ctx: object | None = None,
    *,
    crisis_line: bool,
    poison_control: bool = False,
    violence_line: bool = False,
    physical: bool | None = None,
) -> str:
    """One text for every emergency found in a message.

    ``crisis_line``: 988 is said (thoughts of suicide or self-harm); ``physical``: an emergency that is not
    only a crisis-line one (chest pain, overdose…), so "Call 911 now" leads; default: not ``crisis_line``.
    ``poison_control``: Poison Control's number is added (overdose, swallowed something harmful). 911 is in
    every variant (DESIGN §4.4). ``violence_line``: the National Domestic Violence Hotline is added (hit,
    threatened or not safe at home); nothing of what the patient wrote is repeated (someone else may read it).
    """
    _ = gettext_for(language)
    if physical is None:
        physical = not crisis_line
    if not crisis_line and not poison_control and not violence_line:
        return _("This could be an emergency. Call 911 now. We have told your care team.")
    parts: list[str] = []
    if physical or not crisis_line:
        parts.append(_("This could be an emergency. Call 911 now."))
        if crisis_line:
            parts.append(
                _("For thoughts of suicide or hurting yourself, also call or text 988 (Suicide & Crisis Lifeline).")
            )
    else:
        parts.append(
            _(
                "Please call or text 988 now to talk with someone right away (Suicide & Crisis Lifeline). "
                "If you are in danger, call 911."
            )
        )
    if poison_control:
        parts.append(
            _(
                "If someone took too much medicine or swallowed something harmful, also call Poison Control "
                "at 1-800-222-1222."
            )
        )
    if violence_line:
        parts.append(_violence_line(_))
    parts.append(_("We have told your care team."))
    return " ".join(parts)


def _violence_line(_: Callable[[str], str]) -> str:
    return _(
        "If you are in danger now, call 911. For help with abuse or feeling unsafe at home, call the National "
        "Domestic Violence Hotline at 1-800-799-7233 or text START to 88788 (free, private, 24/7)."
    )


def _right_now_questions(_: Callable[[str], str]) -> dict[str, str]:
    """One plain "right now?" question per triage reason (codes: app/triage/verdict.py Finding.reason)."""
    chest = _("Do you have chest pain right now?")
    breathing = _("Are you having trouble breathing right now?")
    stroke = _("Do you have signs of a stroke right now (face drooping, arm weakness, trouble speaking)?")
    faint = _("Do you feel faint right now, or did you pass out today?")
    suicide = _("Are you having thoughts of ending your life right now?")
    return {
        "chest_pain": chest,
        "breathing": breathing,
        "cannot_breathe": breathing,
        "stroke": stroke,
        "stroke_signs": stroke,
        "fainting": faint,
        "suicide": suicide,
        "suicidal_thoughts": suicide,
        "self_harm": _("Are you thinking of hurting yourself right now?"),
        "interpersonal_violence": _("Are you in danger right now?"),
        "overdose": _("Did you take too much medicine or swallow something harmful today?"),
        "bleeding": _("Are you bleeding a lot right now?"),
        "allergic_reaction": _("Is your throat or tongue swelling right now?"),
        "unresponsive": _("Is someone not waking up or not responding right now?"),
        "seizure": _("Is someone having a seizure right now?"),
        "severe_hypoglycemia": _("Is your blood sugar very low right now, with confusion or trouble swallowing?"),
        "confusion": _("Is there new confusion right now?"),
        "coughing_blood": _("Are you coughing up blood right now?"),
        "blue_lips": _("Are your lips or face turning blue right now?"),
    }


def confirm_question(reasons: Sequence[str], language: str, channel: str = "sms") -> str:
    """The yes/no "right now?" question naming each symptom plainly (one line per reason), then how to reply
    on ``channel`` ("Reply YES or NO." on SMS; on a call "Press 1 for yes or 2 for no. You can also say yes
    or no.", app/flows/instructions.py).

    A reason without its own wording gets a generic question, never nothing.
    """
    _ = gettext_for(language)
    known = _right_now_questions(_)
    lines: list[str] = []
    for reason in reasons:
        line = known.get(reason, _("Is this happening right now?"))
        if line not in lines:
            lines.append(line)
    how = _("Press 1 for yes or 2 for no. You can also say yes or no.") if channel == "voice" else _("Reply YES or NO.")
    return " ".join([*lines, how])


def confirm_reprompt(reasons: Sequence[str], language: str, channel: str = "sms") -> str:
    _ = gettext_for(language)
    sorry = _("Sorry, I didn't understand.")
    return f"{sorry} {confirm_question(reasons, language, channel)}"


def not_now_safety_text(language: str, findings: Sequence[Finding]) -> str:
    """What to do if it happens, after NO (or no clear answer) to "right now?", by kind of reason.

    ``findings``: the reasons asked about; their ``crisis_line`` and ``poison_control`` flags decide the lines.
    A physical red flag: "if it comes back or gets worse, call 911"; thoughts of suicide or self-harm: 988
    (in Spanish: press 2, or text AYUDA) and 911 in danger; an overdose or something swallowed: Poison Control
    (1-800-222-1222) and 911 for the danger signs. One line per kind present, each once; never "if it comes
    back" for a dose. Sources: the module's (988lifeline.org, poison.org, DESIGN §4.4).
    """
    _ = gettext_for(language)
    crisis = any(f.crisis_line for f in findings)
    poison = any(f.poison_control for f in findings)
    violence = any(f.violence_line for f in findings)
    physical = not findings or any(not (f.crisis_line or f.poison_control or f.violence_line) for f in findings)
    parts: list[str] = []
    if physical:
        parts.append(_("If it comes back or gets worse, call 911."))
    if crisis:
        parts.append(
            _(
                "If you have thoughts of ending your life or hurting yourself, call or text 988 at any time "
                "(Suicide & Crisis Lifeline). If you are in danger, call 911."
            )
        )
    if violence:
        parts.append(_violence_line(_))
    if poison:
        parts.append(
            _(
                "If you or someone else took too much medicine or swallowed something harmful, call Poison "
                "Control at 1-800-222-1222 at any time. If someone is hard to wake up, has trouble breathing or "
                "has a seizure, call 911."
            )
        )
    return " ".join(parts)


def confirm_no_text(language: str, findings: Sequence[Finding] = ()) -> str:
    """After "no" to "right now?" inside a flow: the same-day item stays open; what to do if it happens
    (:func:`not_now_safety_text`, per kind of reason); the flow's question comes next."""
    _ = gettext_for(language)
    thanks = _("Thank you. A nurse will still call you today to check on you.")
    return f"{thanks} {not_now_safety_text(language, findings)}"


def nurse_today_text(language: str, program_name: str) -> str:
    """The URGENT promise: a same-day call (a second unclear "right now?" reply; symptoms outside a flow)."""
    _ = gettext_for(language)
    return _("A nurse from %(program)s will call you today. If you feel worse before then, call 911.") % {
        "program": program_name
    }


def not_watched_notice(language: str, program_phone: str) -> str:
    """Outside a conversation, at most once a day (issue 7 item 6)."""
    _ = gettext_for(language)
    return _("This number is not watched all the time. In an emergency call 911. Questions: %(phone)s") % {
        "phone": program_phone
    }
