"""Red-flag triage: a pure component (no Flask, SQL, Twilio or Redis) run on every inbound text.

``load_triage(directory)`` builds a :class:`Triage` from ``content/triage/``; ``Triage.assess(text)`` returns
a :class:`Verdict` (see ``verdict.py`` for the shapes callers rely on).
"""

from app.triage.loader import load_triage
from app.triage.matcher import Triage
from app.triage.verdict import Finding, Verdict

__all__ = ["Finding", "Triage", "Verdict", "load_triage"]
