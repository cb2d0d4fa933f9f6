"""TEMPORARY ADAPTER (branch ``pipeline``): a phrase-list triage so the inbound pipeline can be built and
tested before the real triage component (branch ``triage``) lands. The lead replaces this module, and
``ContentLibrary.triage``, with ``app/triage``'s component at merge. Keep it tiny; do not build on it.

It reads the phrases of ``content/red-flags.yaml`` (reason = the flag id with ``_``: chest_pain, breathing,
stroke, fainting, suicide), denies a phrase after a nearby negator in the same clause (a clause ends at
punctuation, "but"/"pero", and an English "no" followed by "I"/"my" starts a new one: "No I want to die"),
asks to confirm a mention with a resolution word in its clause ("the chest pain is gone"), and finds a few
non-red-flag symptoms (swelling, dizziness, fever) as ``symptom`` findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.flows.text import tokens
from app.triage.verdict import Finding, Status, Verdict

_CLAUSE_BREAK = re.compile(r"[.,;:!?¡¿\n]+|\b(?:but|pero)\b", re.IGNORECASE)
_NEGATORS = frozenset({"no", "not", "without", "never", "denies", "sin", "nunca", "ni", "dont", "don't", "nor"})
_NEW_SUBJECT = frozenset({"i", "my", "im", "i'm"})
_RESOLVED = ("gone", "went away", "is better", "stopped", "se me quito", "se quito", "ya paso", "ya se paso")
_SYMPTOMS: dict[str, tuple[str, ...]] = {
    "swelling": ("swollen", "swelling", "hinchado", "hinchada", "hinchados", "hinchadas", "hinchazon"),
    "dizziness": ("dizzy", "dizziness", "mareado", "mareada", "mareos"),
    "fever": ("fever", "fiebre"),
}


@dataclass(frozen=True)
class _Concept:
    reason: str
    crisis_line: bool
    phrases: tuple[tuple[str, ...], ...]


class PhraseTriage:
    """``assess(text, language) -> Verdict`` over exact phrases (see the module docstring: temporary)."""

    def __init__(self, entries: list[dict[str, object]]):
        concepts = []
        for entry in entries:
            by_lang = entry.get("phrases") or {}
            assert isinstance(by_lang, dict)
            phrases = tuple(tuple(tokens(str(p))) for items in by_lang.values() for p in items)
            reason = str(entry["id"]).replace("-", "_")
            concepts.append(_Concept(reason, bool(entry.get("crisis_line", False)), phrases))
        self.concepts = tuple(concepts)

    def assess(self, text: str, language: str | None) -> Verdict:
        findings: list[Finding] = []
        for clause in _clauses(text):
            folded = " ".join(clause)
            resolved = any(re.search(rf"(?<!\w){re.escape(r)}(?!\w)", folded) for r in _RESOLVED)
            for concept in self.concepts:
                for phrase in concept.phrases:
                    if _affirmed(clause, phrase):
                        status: Status = "confirm" if resolved else "current"
                        findings.append(Finding(concept.reason, status, concept.crisis_line, False, " ".join(phrase)))
                        break
            for reason, words in _SYMPTOMS.items():
                hits = [w for w in words if _affirmed(clause, (w,))]
                if hits:
                    findings.append(Finding(reason, "symptom", evidence=hits[0]))
        return Verdict(tuple(findings))


def _clauses(text: str) -> list[list[str]]:
    clauses: list[list[str]] = []
    for part in _CLAUSE_BREAK.split(text):
        words = tokens(part or "")
        current: list[str] = []
        for word in words:
            if current in (["no"], ["nope"]) and word in _NEW_SUBJECT:
                clauses.append(current)
                current = []
            current.append(word)
        if current:
            clauses.append(current)
    return clauses


def _affirmed(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    for start in range(len(words) - size + 1):
        if tuple(words[start : start + size]) == phrase and not any(
            w in _NEGATORS for w in words[max(0, start - 3) : start]
        ):
            return True
    return False
