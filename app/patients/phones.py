"""Phone numbers: E.164 normalisation with ``phonenumbers``, and masking for logs."""

from __future__ import annotations

import re

import phonenumbers

#: The shapes a US/Canada (NANP, +1) number is usually written in, whose national number is the 10 digits
#: shown (area code first digit 2-9): ``2025550123``, ``12025550123``, ``+12025550123``, ``(202) 555-0123``,
#: ``202-555-0123``, ``202.555.0123``, ``+1 202 555 0123``. ``phonenumbers.parse`` reads every one of them
#: as country code 1 and those 10 digits; only the validity check is left to do.
_PLAIN_NANP = re.compile(
    r"(?:\+?1[ .-]?)?"
    r"(?:\(([2-9]\d\d)\) ?|([2-9]\d\d)[ .-]?)"
    r"(\d{3})[ .-]?(\d{4})",
    re.ASCII,  # ASCII digits only: other scripts' digits go the full way
)


#: ``is_valid_number`` tries the regions of +1 in this order and takes the first that fits; the US is first
#: and has no leading-digits shortcut, so "valid for the US" means "valid" (checked once here).
_US_FIRST = (
    phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1][0] == "US"
    and phonenumbers.PhoneMetadata.metadata_for_region("US").leading_digits is None  # type: ignore[union-attr]
)


def _valid_nanp(number: phonenumbers.PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number`` for a +1 number: one pass over the US patterns for a US number
    (``is_valid_number`` makes two), the full check for any other."""
    if _US_FIRST and phonenumbers.is_valid_number_for_region(number, "US"):
        return True
    return bool(phonenumbers.is_valid_number(number))


class InvalidPhone(ValueError):
    pass


def to_e164(raw: str, region: str = "US") -> str:
    """``raw`` as E.164 (``+12025550123``), read as ``phonenumbers`` reads it with ``region`` the default.

    A plain US/Canada number (``_PLAIN_NANP``) skips ``phonenumbers.parse`` (about half the cost; the bulk
    import checks 100,000 of them) and is checked with ``phonenumbers.is_valid_number`` as parsed numbers
    are; anything else, and any plain number found invalid, takes the full path, so the result and the
    error are the same either way (tests/unit/test_phones.py checks this on generated inputs).
    Raises InvalidPhone (the reason) when it is not a valid number.
    """
    if region == "US" and (plain := _PLAIN_NANP.fullmatch(raw.strip())) is not None:
        area, area_bare, exchange, line = plain.groups()
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int((area or area_bare) + exchange + line))
        if _valid_nanp(number):
            return f"+1{area or area_bare}{exchange}{line}"
    return _to_e164_parsed(raw, region)


def _to_e164_parsed(raw: str, region: str) -> str:
    """The full path: any input ``phonenumbers.parse`` accepts (international, vanity letters, extensions)."""
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
