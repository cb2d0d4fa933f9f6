"""Global intents that run before any flow node: language switches, triage, an opt-out written as a sentence.

Why objects passed in (not read here): the engine stays pure, and clinicians review the red-flag concepts
and the opt-out phrases as content (``content/triage/`` and ``content/consent.yaml``).
The triage component arrives through :class:`Triage` (``assess(text, language) -> Verdict``); the engine
never loads content or does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from app.flows.answers import parse_yes_no
from app.flows.text import tokens
from app.triage.verdict import Verdict

LANGUAGE_WORDS: dict[str, str] = {
    "english": "en",
    "ingles": "en",
    "espanol": "es",
    "spanish": "es",
}

_CLAUSE_BREAK = re.compile(r"[.,;:!?¡¿\n]+")


class Triage(Protocol):
    """The pure red-flag triage (DESIGN §1): every matching reason, in context, for one message."""

    def assess(self, text: str, language: str | None) -> Verdict: ...


class NoTriage:
    """Finds nothing: for engines run without a content library (unit tests of flow mechanics)."""

    def assess(self, text: str, language: str | None) -> Verdict:
        return Verdict()


# ----------------------------------------------------------------------------- opt-out written as a sentence
@dataclass(frozen=True)
class OptOutPhrases:
    """Opt-out requests written as sentences ("please stop texting me", "no me manden más mensajes").

    ``phrases``: token patterns (folded); a token ending in ``*`` matches any word starting with it
    ("text*" → texting, texts), and up to ``gap`` other words may stand between two tokens.
    ``words``: opt-out keywords that count when they stand in a clause with only polite ``fillers``
    ("Stop. Thank you", "please stop"); a whole-message keyword never reaches here (app/flows/keywords.py).
    ``negators``: a word within two words before a match that cancels it ("please don't stop texting");
    neither a negator nor a clause word may stand in a gap.
    """

    phrases: tuple[tuple[str, ...], ...] = ()
    words: frozenset[str] = frozenset()
    #: Polite words that may stand beside a clause word ("please stop", "stop, thanks").
    fillers: frozenset[str] = frozenset()
    negators: frozenset[str] = frozenset()
    gap: int = 2

    @classmethod
    def from_content(cls, data: Mapping[str, object]) -> OptOutPhrases:
        """From ``content/consent.yaml``: ``opt_out_sentences: {phrases: {en: [...], es: [...]}, clause_words,
        fillers, negators (each per language), max_words_between}``."""
        section = data.get("opt_out_sentences") or {}
        assert isinstance(section, Mapping)

        def per_language(key: str) -> list[str]:
            found = section.get(key) or {}
            assert isinstance(found, Mapping)
            return [str(item) for items in found.values() for item in (items or [])]

        return cls(
            phrases=tuple(filter(None, (_pattern(p) for p in per_language("phrases")))),
            words=frozenset(w for item in per_language("clause_words") for w in tokens(item)),
            fillers=frozenset(w for item in per_language("fillers") for w in tokens(item)),
            negators=frozenset(w for item in per_language("negators") for w in tokens(item)),
            gap=int(str(section.get("max_words_between", 2))),
        )

    def matches(self, text: str) -> bool:
        clauses = [c for c in (tokens(part) for part in _CLAUSE_BREAK.split(text)) if c]
        for clause in clauses:
            # "Stop. Thank you", "please stop": a keyword standing alone in a clause, with only polite words.
            if any(w in self.words for w in clause) and all(w in self.words or w in self.fillers for w in clause):
                return True
        words = [w for c in clauses for w in c]
        return any(self._find(words, phrase) for phrase in self.phrases)

    def _find(self, words: Sequence[str], phrase: tuple[str, ...]) -> bool:
        for start, word in enumerate(words):
            if not _token_matches(word, phrase[0]):
                continue
            if any(w in self.negators for w in words[max(0, start - 2) : start]):
                continue
            position = start
            for part in phrase[1:]:
                found = -1
                for i in range(position + 1, min(len(words), position + 2 + self.gap)):
                    if _token_matches(words[i], part):
                        found = i
                        break
                    if words[i] in self.negators or words[i] in self.words:
                        break  # "please don't stop texting me" is not "don't ... texting me"
                position = found
                if position < 0:
                    break
            else:
                return True
        return False


def _pattern(phrase: str) -> tuple[str, ...]:
    """Folded tokens of a content phrase; a ``*`` at a word's end survives as a prefix marker."""
    parts: list[str] = []
    for piece in phrase.split():
        words = tokens(piece.rstrip("*"))
        if words and piece.endswith("*"):
            words[-1] += "*"
        parts.extend(words)
    return tuple(parts)


def _token_matches(word: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return word.startswith(pattern[:-1])
    return word == pattern


# ------------------------------------------------------------------------------- the "right now?" answer
#: Replies to "Do you have chest pain right now?" that are not a plain yes or no. Uncertainty counts as
#: YES on this question: a red flag that may be happening gets the 911 advice (safety first); a nurse
#: sees the escalation either way. Folded, matched on word boundaries.
CONFIRM_HEDGES: tuple[str, ...] = (
    "a little", "a bit", "kind of", "kinda", "sort of", "sometimes", "maybe", "i think so", "not sure",
    "unsure", "idk", "dont know", "don't know", "comes and goes", "on and off", "still",
    "un poco", "mas o menos", "a veces", "creo que si", "tal vez", "quizas", "quiza", "no se",
    "no estoy segur", "va y viene", "todavia", "aun",
)  # fmt: skip
CONFIRM_NO: tuple[str, ...] = (
    "dont think so", "don't think so", "not anymore", "not now", "no longer", "gone", "went away", "over",
    "ya no", "no creo", "ahora no", "se me quito", "se quito", "ya paso", "ya se paso",
)  # fmt: skip


def confirm_reply(text: str) -> Literal["yes", "no"] | None:
    """A reply to the "right now?" question: ``"yes"`` (hedges and "not sure" included), ``"no"``, or None."""
    folded = " ".join(tokens(text))
    if not folded:
        return None

    def has(phrases: tuple[str, ...]) -> bool:
        return any(re.search(rf"(?<!\w){re.escape(' '.join(tokens(p)))}", folded) for p in phrases)

    if has(CONFIRM_HEDGES):
        return "yes"
    if has(CONFIRM_NO):
        return "no"
    answer = parse_yes_no(text)
    return None if answer is None else ("yes" if answer else "no")


# ------------------------------------------------------------------------------------------ the intents
@dataclass(frozen=True)
class GlobalIntents:
    triage: Triage = field(default_factory=NoTriage)
    opt_out: OptOutPhrases = field(default_factory=OptOutPhrases)

    def language_switch(self, text: str) -> str | None:
        words = tokens(text)
        if len(words) == 1:
            return LANGUAGE_WORDS.get(words[0])
        return None

    def assess(self, text: str, language: str | None) -> Verdict:
        return self.triage.assess(text, language)

    def opt_out_request(self, text: str) -> bool:
        """An opt-out written as a sentence (not a whole-message keyword): staff follow up, STOP explained."""
        return self.opt_out.matches(text)
