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


#: Below this length (a short code, a typo, a truncated number) four shown digits would be too many.
FULL_MASK_BELOW = 10


def mask(number: str | None) -> str:
    """Enough to tell numbers apart in a log, not enough to identify a patient: ``+1******0123``.

    Same length as the input. A number shorter than ``FULL_MASK_BELOW`` characters shows only its last
    quarter (rounded down: ``12345`` → ``****5``, ``+44`` → ``***``), so no input is ever printed whole.
    """
    if not number:
        return "-"
    if len(number) < FULL_MASK_BELOW:
        shown = len(number) // 4
        return "*" * (len(number) - shown) + number[len(number) - shown :]
    return number[:2] + "*" * (len(number) - 6) + number[-4:]
