"""Phone numbers: E.164 normalisation with ``phonenumbers``, and masking for logs."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    pass


def to_e164(raw: str, region: str = "US") -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(number: str | None) -> str:
    """Enough to tell numbers apart in a log, not enough to identify a patient: +1******0123."""
    if not number:
        return "-"
    return number[:2] + "*" * max(0, len(number) - 6) + number[-4:]
