"""Red-flag triage: a pure component (no Flask, SQL, Twilio or Redis) run on every inbound text."""
