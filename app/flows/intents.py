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

from app.flows.answers import ALL_NO, ALL_YES, parse_yes_no
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
#: Replies to "Do you have chest pain right now?" that are not a plain yes or no. Uncertainty, "still"
#: and "it came back" count as YES on this question: a red flag that may be happening gets the 911 advice
#: (safety first: a false 911 beats a missed one); a nurse sees the escalation either way. Folded phrases,
#: matched as whole words inside one clause ("No, se me quitó" is not "no sé").
CONFIRM_HEDGES: tuple[str, ...] = (
    "a little", "a bit", "kind of", "kinda", "sort of", "sorta", "sometimes", "maybe", "i think so",
    "not sure", "unsure", "idk", "dont know", "don't know", "dunno", "comes and goes", "on and off",
    "off and on", "un poco", "mas o menos", "a veces", "creo que si", "tal vez", "quizas", "quiza",
    "no se", "no estoy segur", "no estoy segura", "no estoy seguro", "va y viene",
)  # fmt: skip
#: "It is still there" / "it came back" / "it hurts": YES. A negator just before a recurrence word ("it
#: didn't come back", "no ha vuelto", "no me duele") makes it a NO.
CONFIRM_STILL: tuple[str, ...] = (
    "still", "todavia", "aun", "sigue", "siguen", "sigo", "continua", "persiste", "worse", "peor",
    "keeps", "keep",
)  # fmt: skip
CONFIRM_RECURS: tuple[str, ...] = (
    "came back", "come back", "comes back", "coming back", "back again", "its back", "it's back", "is back",
    "returned", "again", "volvio", "vuelve", "vuelto", "regreso", "regresa", "otra vez", "de nuevo",
    "hurt", "hurts", "hurting", "duele", "doliendo",
)  # fmt: skip
#: "It is gone": NO, unless negated ("it's not gone", "it won't go away", "no se me quita": YES).
CONFIRM_RESOLVED: tuple[str, ...] = (
    "gone", "go away", "goes away", "went away", "gone away", "going away", "over", "stopped", "stop",
    "passed", "better", "quito", "quita", "quitado", "quitar", "paso", "pasa", "pasado", "ido", "fue", "se va",
)  # fmt: skip
CONFIRM_NO: tuple[str, ...] = (
    "dont think so", "don't think so", "not anymore", "not now", "no longer", "gone", "went away", "over",
    "ya no", "no creo", "ahora no", "se me quito", "se quito", "ya paso", "ya se paso", "se me paso", "se fue",
    "se me fue", "ya se me quito", "ya se quito", "ya se me paso", "ya se fue", "ya se me fue",
)  # fmt: skip
#: English words that negate the word after them ("not gone", "hasn't gone away"); a lone "no" does not
#: ("no it's gone" is a NO).
_EN_NEGATORS = frozenset(
    [
        "not",
        "isnt",
        "isn't",
        "hasnt",
        "hasn't",
        "havent",
        "haven't",
        "didnt",
        "didn't",
        "doesnt",
        "doesn't",
        "wont",
        "won't",
        "cant",
        "can't",
        "aint",
        "ain't",
        "never",
        "nothing",
    ]
)
#: Spanish "no" / "nunca" negate a verb with only these between ("no se me ha quitado").
_ES_NEGATORS = frozenset({"no", "nunca"})
_ES_CLITICS = frozenset({"se", "me", "te", "le", "lo", "la", "nos", "ha", "han", "he", "a"})


def _phrase_spans(words: list[str], phrases: tuple[str, ...]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for phrase in phrases:
        wanted = tokens(phrase)
        size = len(wanted)
        for start in range(len(words) - size + 1):
            if words[start : start + size] == wanted:
                found.append((start, start + size))
    return found


def _negated(words: list[str], start: int) -> bool:
    """Whether the word at ``start`` is negated: an English negator up to two words before ("isn't really
    gone"), or a Spanish "no" with only clitics between ("no se me quita")."""
    for i in range(max(0, start - 3), start):
        if words[i] in _EN_NEGATORS and start - i <= 3:
            return True
    i = start - 1
    while i >= 0 and words[i] in _ES_CLITICS and words[i] not in _ES_NEGATORS:
        i -= 1
    return i >= 0 and words[i] in _ES_NEGATORS


def confirm_reply(text: str) -> Literal["yes", "no"] | None:
    """A reply to the "right now?" question: ``"yes"``, ``"no"``, or None (nothing either way: asked again).

    Read by kind, whole words only, each clause on its own (DESIGN §4.3, issue 7 tester findings):
    - YES: a yes; a hedge or uncertainty ("a little", "not sure", "no sé"); still there or back ("still",
      "it came back", "sigue", "volvió", "todavía me duele"); a negated resolved-word ("it's not gone",
      "it won't go away", "no se me quita", "no se ha ido").
    - NO: a no; resolved ("it's gone", "it's over", "ya se me quitó", "ya no"); a negated recurrence ("it
      didn't come back").
    - Both YES and NO signs ("yes and no", "it went away but came back") are YES: safety first.
    A lone 1 / 2 is YES / NO (keypad).
    """
    whole = tokens(text)
    if not whole:
        return None
    if len(whole) == 1 and whole[0] in {"1", "2"}:
        return "yes" if whole[0] == "1" else "no"
    saw_yes = saw_no = False
    for part in _CLAUSE_BREAK.split(text):
        words = tokens(part)
        if not words:
            continue
        covered: set[int] = set()

        def cover(span: tuple[int, int], covered: set[int] = covered) -> None:
            covered.update(range(*span))

        for span in _phrase_spans(words, CONFIRM_HEDGES + CONFIRM_STILL):
            saw_yes = True
            cover(span)
        for span in _phrase_spans(words, CONFIRM_RECURS):
            if _negated(words, span[0]):
                saw_no = True
            else:
                saw_yes = True
            cover(span)
        for span in _phrase_spans(words, CONFIRM_RESOLVED):
            if _negated(words, span[0]):
                saw_yes = True
                # The negator is part of the phrase: "not gone" says nothing else.
                cover((max(0, span[0] - 3), span[1]))
        for span in sorted(_phrase_spans(words, CONFIRM_NO), key=lambda sp: sp[0] - sp[1]):
            if not covered.intersection(range(*span)):
                saw_no = True
                cover(span)
        rest = [w for i, w in enumerate(words) if i not in covered]
        answer = parse_yes_no(" ".join(rest), digits=False) if rest else None
        if answer is None and rest:
            saw_yes = saw_yes or any(w in ALL_YES for w in rest)
            saw_no = saw_no or any(w in ALL_NO for w in rest)
        elif answer is not None:
            saw_yes = saw_yes or answer
            saw_no = saw_no or not answer
    if saw_yes:
        return "yes"
    return "no" if saw_no else None


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
