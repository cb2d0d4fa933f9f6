"""A conversation addressed to a caregiver rather than the patient (issue 12 item 2: caregiver strain).

Its texts go to that caregiver's phone, only that caregiver's replies answer it (app/messaging/caregivers.py)
and its answers are recorded as given by the caregiver; the patient's own texts meanwhile are not answers to
it (app/messaging/inbound.py). A leaf module (models only) so messaging and scheduling can read it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Caregiver, Conversation

#: A conversation's variable naming the caregiver it is addressed to (a flow about the caregiver, such as
#: caregiver-strain): its texts go to that caregiver's phone and only that caregiver's replies answer it.
ADDRESSED_TO = "caregiver_id"


def addressed_caregiver(session: Session, conversation: Conversation) -> Caregiver | None:
    """The active caregiver (not revoked, not opted out) ``conversation`` is addressed to, or None."""
    raw = (conversation.variables or {}).get(ADDRESSED_TO)
    if raw is None or not str(raw).isdigit():
        return None
    caregiver = session.get(Caregiver, int(raw))
    if caregiver is None or caregiver.patient_id != conversation.patient_id or not caregiver.active:
        return None
    return caregiver
