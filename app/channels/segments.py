"""SMS segment counting: GSM-7 fits 160 characters (153 a part), anything else is UCS-2 at 70 (67).

A character that takes two units (a GSM-7 escape pair such as ``[`` or ``€``, a UTF-16 surrogate pair
such as an emoji) is never split between two parts: carriers move it whole to the next part, so a long
text can need one part more than ``ceil(units / units_per_part)``. Cost, pacing (the rate limiter
reserves segments) and the content linter all read this count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")
#: (units in a single-part text, units in each part of a concatenated text), per encoding.
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # GSM-7 | UCS-2
    segments: int
    #: Units: GSM-7 septets (an escape pair is two) or UTF-16 code units (an emoji is two).
    characters: int


def _units(body: str) -> tuple[str, list[int]]:
    """The encoding carriers pick and each character's size in that encoding's units."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in body):
        return "GSM-7", [2 if ch in GSM7_EXTENDED else 1 for ch in body]
    return "UCS-2", [2 if ord(ch) > 0xFFFF else 1 for ch in body]


def _parts(units: Iterable[int], per_part: int) -> int:
    """Parts needed when each character goes whole into the current part or opens the next one."""
    parts, used = 1, 0
    for size in units:
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return parts


def segment_info(body: str) -> SegmentInfo:
    """Encoding, segment count and unit count of an SMS body (``segments`` ≥ 1, an empty body is 1)."""
    encoding, units = _units(body)
    total = sum(units)
    single, per_part = LIMITS[encoding]
    segments = 1 if total <= single else _parts(units, per_part)
    return SegmentInfo(encoding=encoding, segments=segments, characters=total)
