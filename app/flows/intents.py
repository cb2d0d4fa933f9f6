"""Global intents that run before any flow node: language switches and red-flag phrases.

Why a lexicon object passed in (not read here): the engine stays pure, and clinicians review the
phrases as content (``content/red-flags.yaml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.flows.text import tokens

LANGUAGE_WORDS: dict[str, str] = {
    "english": "en",
    "ingles": "en",
    "espanol": "es",
    "spanish": "es",
}

_CLAUSE_BREAK = re.compile(r"[.,;:!?¡¿\n]+")

#: Words that, just before a phrase, mean the patient is denying it ("no chest pain").
NEGATORS = frozenset({"no", "not", "without", "never", "denies", "sin", "nunca", "ni", "dont", "don't", "nor"})


@dataclass(frozen=True)
class RedFlag:
    id: str
    reason: str
    #: 988 (Suicide & Crisis Lifeline) instead of 911 in the patient's instructions.
    crisis_line: bool
    phrases: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class GlobalIntents:
    red_flags: tuple[RedFlag, ...] = field(default_factory=tuple)

    def language_switch(self, text: str) -> str | None:
        words = tokens(text)
        if len(words) == 1:
            return LANGUAGE_WORDS.get(words[0])
        return None

    def red_flag(self, text: str) -> RedFlag | None:
        # A denial only reaches within its own clause: "No. I want to die" is not denied by the "No".
        clauses = [tokens(part) for part in _CLAUSE_BREAK.split(text)]
        for flag in self.red_flags:
            for phrase in flag.phrases:
                if any(_contains_affirmed(words, phrase) for words in clauses):
                    return flag
        return None


def _contains_affirmed(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    for start in range(len(words) - size + 1):
        if tuple(words[start : start + size]) == phrase:
            before = words[max(0, start - 3) : start]
            if not any(w in NEGATORS for w in before):
                return True
    return False


def compile_red_flags(entries: list[dict[str, object]]) -> tuple[RedFlag, ...]:
    flags = []
    for entry in entries:
        phrases: list[tuple[str, ...]] = []
        by_lang = entry.get("phrases") or {}
        assert isinstance(by_lang, dict)
        for items in by_lang.values():
            for phrase in items:
                phrases.append(tuple(tokens(str(phrase))))
        flags.append(
            RedFlag(
                id=str(entry["id"]),
                reason=str(entry["reason"]),
                crisis_line=bool(entry.get("crisis_line", False)),
                phrases=tuple(phrases),
            )
        )
    return tuple(flags)
