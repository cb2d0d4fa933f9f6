"""Reading level of education text, offline.

English: Flesch–Kincaid grade. Spanish: Fernández-Huerta reading ease (≥ 70 ≈ grade 6). Syllables come
from ``pyphen``'s hyphenation dictionaries, which ship with the package (textstat's English path needs
a corpus download at run time, which a closed network cannot do).
"""

from __future__ import annotations

import functools
import re

import pyphen

_SENTENCE_END = re.compile(r"[.!?¿¡]+(?:\s|$)")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_DICTIONARIES = {"en": "en_US", "es": "es"}


@functools.lru_cache(maxsize=4)
def _hyphenator(language: str) -> pyphen.Pyphen:
    return pyphen.Pyphen(lang=_DICTIONARIES[language])


def _syllables(word: str, language: str) -> int:
    count = len(_hyphenator(language).positions(word.lower())) + 1
    if language == "en":
        # Hyphenation undercounts vowel groups it will not split ("create"); count vowel groups too.
        groups = len(re.findall(r"[aeiouy]+", word.lower().rstrip("e"))) or 1
        count = max(count, groups)
    return count


def _counts(text: str, language: str) -> tuple[int, int, int]:
    words = _WORD.findall(text)
    sentences = max(1, len([s for s in _SENTENCE_END.split(text) if _WORD.search(s)]))
    syllables = sum(_syllables(w, language) for w in words)
    return len(words), sentences, syllables


def flesch_kincaid_grade(text: str) -> float:
    words, sentences, syllables = _counts(text, "en")
    if not words:
        return 0.0
    return round(0.39 * words / sentences + 11.8 * syllables / words - 15.59, 1)


def fernandez_huerta(text: str) -> float:
    words, sentences, syllables = _counts(text, "es")
    if not words:
        return 100.0
    # Fernández-Huerta with Law's (2011) correction: the sentence term is words per sentence.
    per_100_syllables = 100 * syllables / words
    words_per_sentence = words / sentences
    return round(206.84 - 0.60 * per_100_syllables - 1.02 * words_per_sentence, 1)
