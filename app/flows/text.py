"""Text normalisation shared by answer understanding, keywords and red-flag matching."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[\U0001F300-\U0001FAFF\u2600-\u27BF]", re.UNICODE)


def fold(text: str) -> str:
    """Case-fold and strip accents so 'SÍ', 'si' and 'Sí' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Words (with inner apostrophes) and single emoji, folded; punctuation dropped."""
    folded = fold(text.replace("\u2019", "'"))
    return _WORD.findall(folded)


def squash(text: str) -> str:
    """The whole message as one keyword: folded, with spaces and punctuation removed."""
    return "".join(ch for ch in fold(text) if ch.isalnum())


def collapse_spaces(text: str) -> str:
    return _SPACE.sub(" ", text).strip()
