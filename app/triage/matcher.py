"""The red-flag matcher: concept patterns and ConText-style modifiers over one normalised message.

Why this machinery (and not medspaCy / negspacy / simplemma):

* medspaCy's ConText is the reference algorithm, but it pulls in spaCy and a language pipeline (tens of MB,
  hundreds of ms to load) and ships English rules only; negspacy is negation only. The algorithm itself is
  small: triggers with a category, a direction and a scope, cut at clause breaks and terminator words
  (Chapman et al., NegEx 2001; Harkema et al., ConText 2009). It is implemented here in ~200 lines so the
  trigger lists stay plain, reviewable data per language (``content/triage/context.yaml``).
* Word forms ("hurt / hurts / hurting", "duele / dolía") are written in the content as stems (``hurt*``,
  ``dol*``); a lemmatiser such as simplemma would need a lemma table per language in memory and still miss
  texting spellings, while stems cover both languages with one rule.
* Typos ("pian", "brethe", "dizzyness") go through ``rapidfuzz`` (C implementation of the optimal string
  alignment distance: a transposition counts as one edit). Only words of 4+ letters whose first letter is
  right are fuzzy-matched, at distance 1 (2 from 8 letters), and each distinct word is looked up once per
  process (cached), so a typical message costs a few dictionary look-ups.

Matching is deliberately bilingual on every message: patients write Spanglish, so the ``language`` hint
never narrows the phrases.

Pure: no I/O, no Flask/SQL/Twilio/Redis.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import OSA

from app.triage.verdict import Finding, Status, Verdict

#: Modifier categories a context rule may have (content/triage/context.yaml).
CATEGORIES = (
    "negated",  # "no chest pain", "sin dolor de pecho"; an even number of negations affirms
    "pseudo",  # looks like a trigger but is not one ("no I want to die", "not only"): consumes its words
    "hypothetical",  # "what should I do if I get chest pain", "si me da dolor de pecho"
    "uncertain",  # "maybe", "I think", "no sé si" → confirm
    "historical",  # yesterday, last week, "had a stroke" → confirm
    "historical_recent",  # this morning, last night, an hour ago → confirm (current for recent_is_current)
    "historical_remote",  # years ago, as a child, died of → not a finding
    "resolved",  # "is gone", "se me quitó" → confirm
    "present",  # right now, still, ahorita, since → overrides historical/uncertain
    "other_person",  # my wife, mi esposo: only matters with the past (family history)
    "object",  # heart attack *pills*, *pastillas para* el corazón: a thing, not a symptom
    "figure",  # "dying to see", "me muero de risa": applies only when it overlaps the finding's own words
    "joking",  # "lol", "jaja", "jk" in the clause: a current finding is asked about (confirm), never dropped
    "routine",  # a daily dose taken as prescribed ("today", "de hoy", ✅): drops only concepts listing it in dropped_by
)
#: ``question``: forward, but only inside a clause that ends with "?" ("si me duele el pecho llamo al 911?":
#: Spanish "si" is "if" there; "si me duele el pecho" without the question is the answer "yes").
DIRECTIONS = ("forward", "backward", "both", "answer", "question")
#: Triggers that modify a finding even from inside its gap ("my chest is *not* hurting", "took pills *last year*
#: on purpose"). Of the times only the remote past: nearer ones ("desde el pecho", "since the") are too often a
#: place or a cause inside the phrase, and leaving them out errs towards asking.
_GAP_CATEGORIES = frozenset(("negated", "resolved", "uncertain", "hypothetical", "historical_remote", "routine"))
#: "sí" (yes) written with its accent, before accents are dropped: it must not read as "si" (if).
_YES_ACCENTED = re.compile(r"(?<![^\W_])s[íÍ](?![^\W_])")

_BREAK = "\n"
_RAW_TOKEN = re.compile(
    r"\d+(?:[.,]\d+)?|[^\W_]+(?:'[^\W_]+)*|[\U0001F300-\U0001FAFF\u2600-\u27BF]|[.;:!?¡¿\n,]+",
    re.UNICODE,
)
_REPEATS = re.compile(r"([^\d])\1{2,}")
_SLASHES = (
    (re.compile(r"\bw/o\b"), " without "),
    (re.compile(r"\bw/"), " with "),
    (re.compile(r"\bb/c\b"), " because "),
)


_SOUNDS = (
    (re.compile(r"qu(?=[ei])"), "k"),
    (re.compile(r"c(?=[ei])"), "s"),
    (re.compile(r"c(?!h)"), "k"),
    (re.compile(r"z"), "s"),
    (re.compile(r"ll"), "y"),
    (re.compile(r"v"), "b"),
    (re.compile(r"(?<![cstpw])h"), ""),
    (re.compile(r"y$"), "i"),
    (re.compile(r"(.)\1"), r"\1"),
)


def sound(word: str) -> str:
    """How a word sounds in US Spanish texting, so spellings by ear meet: "kiero" / "quiero", "desmalle" /
    "desmaye", "convulcion" / "convulsion", "aogo" / "ahogo", "bomito" / "vomito". Only used when a word
    matched nothing as written and no typo of a known word within one or two edits."""
    for pattern, replacement in _SOUNDS:
        word = pattern.sub(replacement, word)
    return word


def fold(text: str) -> str:
    """Case-fold and strip accents ("DOLÍA" → "dolia")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Atom:
    """One word of a pattern: a literal (``pain``), a stem (``hurt*``) or a number range (``#<70``)."""

    kind: str  # "word" | "stem" | "num"
    text: str = ""
    low: float = float("-inf")
    high: float = float("inf")
    #: What a message word's key set must hold: "pain", "hurt*" (numbers are checked by value).
    key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.text + "*" if self.kind == "stem" else self.text)


_Trie = dict[str, "_Trie"]
_END = "$"


@dataclass(frozen=True)
class Element:
    """A position in a pattern: any of the alternatives (each a run of adjacent atoms); maybe optional."""

    alternatives: tuple[tuple[Atom, ...], ...]
    optional: bool = False
    #: The alternatives by the key of their first atom, so a word only tries the alternatives it can start
    #: (only those with a number inside; the others are in ``trie``).
    by_first: dict[str, tuple[tuple[Atom, ...], ...]] = field(init=False, compare=False, repr=False)
    numeric: tuple[tuple[Atom, ...], ...] = field(init=False, compare=False, repr=False)
    #: Word alternatives as a trie of atom keys (``_END`` marks a complete alternative): a class of dozens of
    #: phrases starting with "no" is walked once per message word, not phrase by phrase.
    trie: _Trie = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_first: dict[str, list[tuple[Atom, ...]]] = {}
        numeric = []
        trie: _Trie = {}
        for alternative in self.alternatives:
            if alternative[0].kind == "num":
                numeric.append(alternative)
            elif any(atom.kind == "num" for atom in alternative):
                by_first.setdefault(alternative[0].key, []).append(alternative)
            else:
                node = trie
                for atom in alternative:
                    node = node.setdefault(atom.key, {})
                node[_END] = {}
        object.__setattr__(self, "by_first", {key: tuple(alts) for key, alts in by_first.items()})
        object.__setattr__(self, "numeric", tuple(numeric))
        object.__setattr__(self, "trie", trie)


@dataclass(frozen=True)
class Pattern:
    elements: tuple[Element, ...]
    #: Words allowed between two elements ("chest is really hurting": 2).
    gap: int
    source: str
    #: Per required element, the keys one of which the message must hold somewhere ("#": any number);
    #: checked before walking, so most patterns are ruled out with a set lookup.
    needs: tuple[frozenset[str], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        needs = []
        for element in self.elements:
            if element.optional:
                continue
            keys = {alt[0].key for alt in element.alternatives if alt[0].kind != "num"}
            if element.numeric:
                keys.add("#")
            needs.append(frozenset(keys))
        object.__setattr__(self, "needs", tuple(needs))


@dataclass(frozen=True)
class Concept:
    """A red flag (or an unreported sign used by a composite) and how to find it."""

    id: str
    #: Finding.reason; None for an internal sign only used through ``all_of``.
    reason: str | None
    status: Status
    patterns: tuple[Pattern, ...]
    #: Every group must hold at least one matched concept (ids): "low sugar" and "confused".
    all_of: tuple[tuple[str, ...], ...] = ()
    crisis_line: bool = False
    poison_control: bool = False
    #: Say the National Domestic Violence Hotline (interpersonal violence).
    violence_line: bool = False
    #: Signs that still mean "call 911" when they happened earlier today (BE FAST: call even if they went away).
    recent_is_current: bool = False
    #: Asked about (confirm) rather than dropped when it is remote history ("last month I tried to kill myself"):
    #: a past suicide attempt or intent is a reason to ask about now (988; C-SSRS asks about the past 3 months).
    remote_is_confirm: bool = False
    #: Modifier categories that do not apply ("took too many *pills*" is not an object name).
    immune: frozenset[str] = frozenset()
    #: Opt-in categories that drop this concept ("routine": "took all my pills *today* ✅" is adherence).
    dropped_by: frozenset[str] = frozenset()
    #: Concept ids whose presence anywhere in the message drops this one ("can't breathe *when I lie down*" is
    #: orthopnoea, "*through my nose*" a blocked nose: not a 911 breathing sign).
    unless: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContextRule:
    category: str
    direction: str
    scope: int
    pattern: Pattern
    #: Words that end this rule's scope besides the terminators ("heart pain *with* the new pill": "pill"
    #: names the cause, not an object such as "heart pills").
    stops: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Match:
    owner: int  # index of the concept or the context rule
    start: int
    end: int  # exclusive
    #: Words inside the match that no pattern word took (the gap: "chest *is not* hurting").
    skipped: frozenset[int] = frozenset()


@dataclass
class _Message:
    tokens: list[str]
    clause: list[int]
    #: Per clause: did it end with a question mark ("chest pain? no").
    asked: list[bool]
    keys: list[frozenset[str]] = field(default_factory=list)


class _Index:
    """Patterns indexed by the keys of their first element: only plausible patterns are tried per word."""

    def __init__(self, patterns: Sequence[tuple[int, Pattern]]):
        self.by_key: dict[str, list[tuple[int, Pattern]]] = {}
        self.numeric: list[tuple[int, Pattern]] = []
        for owner, pattern in patterns:
            for alternative in pattern.elements[0].alternatives:
                atom = alternative[0]
                if atom.kind == "num":
                    self.numeric.append((owner, pattern))
                else:
                    self.by_key.setdefault(atom.key, []).append((owner, pattern))

    def candidates(self, keys: frozenset[str], numeric: bool) -> list[tuple[int, Pattern]]:
        found: list[tuple[int, Pattern]] = []
        for key in keys:
            found.extend(self.by_key.get(key, ()))
        if numeric:
            found.extend(self.numeric)
        return found


def _number(token: str) -> float | None:
    try:
        return float(token.replace(",", "."))
    except ValueError:
        return None


class Triage:
    """Classifies inbound messages. Build it with :func:`app.triage.loader.load_triage`."""

    def __init__(
        self,
        concepts: Sequence[Concept],
        rules: Sequence[ContextRule],
        terminators: Iterable[str],
        abbreviations: dict[str, tuple[str, ...]],
        masks: Sequence[Pattern] = (),
        no_fuzzy: Iterable[str] = (),
    ):
        self.concepts = tuple(concepts)
        self.rules = tuple(rules)
        #: Terminator phrases as word tuples ("asi que" is one terminator, "que" alone is none).
        self.terminators = frozenset(tuple(t.split()) for t in terminators if t.split())
        self.abbreviations = dict(abbreviations)
        self.masks = tuple(masks)
        self.no_fuzzy = frozenset(no_fuzzy)
        self._by_id = {c.id: i for i, c in enumerate(self.concepts)}
        self._concept_index = _Index([(i, p) for i, c in enumerate(self.concepts) for p in c.patterns])
        self._rule_index = _Index([(i, r.pattern) for i, r in enumerate(self.rules)])
        self._mask_index = _Index([(i, p) for i, p in enumerate(self.masks)])
        atoms = [
            atom
            for pattern in [*(p for c in self.concepts for p in c.patterns), *(r.pattern for r in self.rules), *masks]
            for element in pattern.elements
            for alternative in element.alternatives
            for atom in alternative
        ]
        self._words = frozenset(a.text for a in atoms if a.kind == "word") | {w for t in self.terminators for w in t}
        self._stems = tuple(sorted({a.text for a in atoms if a.kind == "stem"}))
        self._fuzzy_words = tuple(sorted(w for w in self._words if len(w) >= 4 and w not in self.no_fuzzy))
        self._fuzzy_stems = tuple(s for s in self._stems if len(s) >= 4)
        self._sound_words: dict[str, set[str]] = {}
        for word in self._fuzzy_words:
            if len(sound(word)) >= 4:
                self._sound_words.setdefault(sound(word), set()).add(word)
        # A stem must still sound like 4+ letters ("haha" sounds like "a": it would start every word).
        self._sound_stems = tuple((sound(stem), stem) for stem in self._fuzzy_stems if len(sound(stem)) >= 4)
        self._cache: dict[str, frozenset[str]] = {}

    # -- normalising -------------------------------------------------------------------------------------------

    def _tokenize(self, text: str) -> _Message:
        folded = fold(_YES_ACCENTED.sub("yes", text.replace("\u2019", "'").replace("\u2018", "'")))
        for pattern, replacement in _SLASHES:
            folded = pattern.sub(replacement, folded)
        tokens: list[str] = []
        clause: list[int] = []
        asked: list[bool] = [False]
        current = 0
        for raw in _RAW_TOKEN.findall(folded):
            if raw[0] in ".;:!?¡¿\n,":
                if tokens and clause[-1] == current:
                    asked[current] = "?" in raw
                    current += 1
                    asked.append(False)
                continue
            word = _REPEATS.sub(r"\1\1", raw.replace("'", "")) if not raw[0].isdigit() else raw
            for piece in self.abbreviations.get(word, (word,)):
                tokens.append(piece)
                clause.append(current)
        return _Message(tokens=tokens, clause=clause, asked=asked)

    def _keys(self, token: str) -> frozenset[str]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        keys: set[str] = set()
        if token in self._words:
            keys.add(token)
        keys.update(stem + "*" for stem in self._stems if token.startswith(stem))
        if not keys and len(token) >= 4 and token not in self.no_fuzzy and not token[0].isdigit():
            limit = 1 if len(token) < 10 else 2
            first = token[0]
            for word in self._fuzzy_words:
                if (
                    word[0] == first
                    and abs(len(word) - len(token)) <= limit
                    and OSA.distance(token, word, score_cutoff=limit) <= limit
                    # Four letters: only a swap ("pian"), never another word ("some" / "sore").
                    and (len(token) > 4 or sorted(token) == sorted(word))
                ):
                    keys.add(word)
            for stem in self._fuzzy_stems:
                if stem[0] != first:
                    continue
                if len(stem) == 4:
                    if sorted(token[:4]) == sorted(stem) and OSA.distance(token[:4], stem) <= 1:
                        keys.add(stem + "*")
                elif any(
                    OSA.distance(token[:size], stem, score_cutoff=1) <= 1
                    for size in (len(stem) - 1, len(stem), len(stem) + 1)
                    if size <= len(token)
                ):
                    keys.add(stem + "*")
        if not keys and len(token) >= 4 and token not in self.no_fuzzy and token.isalpha():
            heard = sound(token)
            keys.update(self._sound_words.get(heard, ()))
            keys.update(stem + "*" for heard_stem, stem in self._sound_stems if heard.startswith(heard_stem))
        result = frozenset(keys)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[token] = result
        return result

    # -- pattern matching --------------------------------------------------------------------------------------

    @staticmethod
    def _atom_matches(atom: Atom, token: str, keys: frozenset[str]) -> bool:
        if atom.kind == "num":
            value = _number(token)
            return value is not None and atom.low <= value <= atom.high
        return atom.key in keys

    def _element_ends(self, element: Element, message: _Message, start: int) -> list[int]:
        ends = []
        n = len(message.tokens)
        keys = message.keys[start]
        clause = message.clause[start]
        frontier = [element.trie]
        pos = start
        while frontier and pos < n and message.clause[pos] == clause:
            following = [
                child for node in frontier for key in message.keys[pos] if (child := node.get(key)) is not None
            ]
            pos += 1
            for node in following:
                if _END in node:
                    ends.append(pos)
            frontier = [node for node in following if len(node) > (_END in node)]
        candidates: list[tuple[Atom, ...]] = []
        for key in keys:
            candidates.extend(element.by_first.get(key, ()))
        if element.numeric and message.tokens[start][0].isdigit():
            candidates.extend(element.numeric)
        for alternative in candidates:
            end = start + len(alternative)
            if end > n or message.clause[end - 1] != message.clause[start]:
                continue
            if all(
                self._atom_matches(atom, message.tokens[start + k], message.keys[start + k])
                for k, atom in enumerate(alternative)
            ):
                ends.append(end)
        return ends

    def _walk(
        self, pattern: Pattern, message: _Message, index: int, pos: int, clause: int, first: bool
    ) -> tuple[int, tuple[int, ...]] | None:
        """End of the match and the positions skipped as gap words, or None."""
        if index == len(pattern.elements):
            return (pos, ())
        element = pattern.elements[index]
        last = pos if first else min(pos + pattern.gap, len(message.tokens) - 1)
        for start in range(pos, last + 1):
            if start >= len(message.tokens) or message.clause[start] != clause:
                break
            for end in self._element_ends(element, message, start):
                found = self._walk(pattern, message, index + 1, end, clause, False)
                if found is not None:
                    return (found[0], (*range(pos, start), *found[1]))
        if element.optional and not first:
            return self._walk(pattern, message, index + 1, pos, clause, False)
        return None

    def _find(self, index: _Index, message: _Message) -> list[_Match]:
        matches: list[_Match] = []
        present = frozenset().union(*message.keys) | ({"#"} if any(t[0].isdigit() for t in message.tokens) else set())
        possible: dict[int, bool] = {}
        for start, token in enumerate(message.tokens):
            numeric = token[0].isdigit()
            for owner, pattern in index.candidates(message.keys[start], numeric):
                ok = possible.get(id(pattern))
                if ok is None:
                    ok = possible[id(pattern)] = all(not need.isdisjoint(present) for need in pattern.needs)
                if not ok:
                    continue
                found = self._walk(pattern, message, 0, start, message.clause[start], True)
                if found is not None:
                    matches.append(_Match(owner, start, found[0], frozenset(found[1])))
        return matches

    # -- context -----------------------------------------------------------------------------------------------

    def _scope(
        self, rule: ContextRule, message: _Message, match: _Match, starts: set[int], ends: set[int]
    ) -> tuple[int, int]:
        """Token range [lo, hi) a trigger modifies: within its clause, cut at terminator words and at another
        trigger of the same category (ConText: "no dizziness no fainting" is two negations, not a double one)."""
        tokens, clause = message.tokens, message.clause
        own = clause[match.start]
        if rule.direction == "answer":
            if (match.start > 0 and clause[match.start - 1] == own) or (
                match.end < len(tokens) and clause[match.end] == own
            ):
                return (0, 0)  # only a reply standing alone as its own clause
            if own == 0 or not message.asked[own - 1]:
                return (0, 0)
            lo = match.start
            while lo > 0 and clause[lo - 1] == own - 1:
                lo -= 1
            return (lo, match.start)
        lo, hi = match.start, match.end
        if rule.direction == "question" and not message.asked[own]:
            return (0, 0)
        if rule.direction in ("forward", "both", "question"):
            while hi < len(tokens) and hi - match.end < rule.scope and clause[hi] == own:
                if self._terminator_at(tokens, hi, forward=True) or hi in starts or tokens[hi] in rule.stops:
                    break
                hi += 1
        if rule.direction in ("backward", "both"):
            while lo > 0 and match.start - lo < rule.scope and clause[lo - 1] == own:
                if self._terminator_at(tokens, lo - 1, forward=False) or lo in ends or tokens[lo - 1] in rule.stops:
                    break
                lo -= 1
        return (lo, hi)

    def _terminator_at(self, tokens: list[str], index: int, forward: bool) -> bool:
        """Does a terminator phrase start (``forward``) or end (backward) at ``tokens[index]``?"""
        for phrase in self.terminators:
            lo = index if forward else index - len(phrase) + 1
            if lo >= 0 and tuple(tokens[lo : lo + len(phrase)]) == phrase:
                return True
        return False

    def _status(self, concept: Concept, modifiers: list[str]) -> Status | None:
        status = self._plain_status(concept, modifiers)
        if status == "current" and "joking" in modifiers and "joking" not in concept.immune:
            return "confirm"  # "can't breathe lol": ask "right now?" rather than decide it was a joke
        return status

    def _plain_status(self, concept: Concept, modifiers: list[str]) -> Status | None:
        modifiers = [m for m in modifiers if m not in concept.immune]
        found = set(modifiers)
        if found & concept.dropped_by:
            return None
        if found & {"figure", "object"}:
            return None
        if modifiers.count("negated") % 2 == 1:
            return None
        if "hypothetical" in found:
            return None
        if "historical_remote" in found and "present" not in found:
            return "confirm" if concept.remote_is_confirm else None
        if concept.status == "symptom":
            return "symptom"
        if concept.recent_is_current and "historical_recent" in found and not found & {"historical", "uncertain"}:
            return concept.status  # BE FAST: signs from earlier today still mean 911, even when gone
        if "resolved" in found:
            return "confirm"
        if "present" in found:
            return concept.status
        if "historical_recent" in found:
            return concept.status if concept.recent_is_current else "confirm"
        if found & {"historical", "uncertain"}:
            return "confirm"
        return concept.status

    def assess(self, text: str, language: str | None = None) -> Verdict:
        """Every red flag and symptom in ``text``, each with its status (current / confirm / symptom).

        ``language`` ("en" / "es") is a hint only: en and es phrases are always both matched (Spanglish).
        Rules: ``content/triage/concepts.yaml`` and ``context.yaml`` (AHA, BE FAST, ALA, ADA level 3
        hypoglycemia, 988 Lifeline, Poison Control; see their ``sources``). Never raises on any text.
        """
        message = self._tokenize(text)
        message.keys = [self._keys(token) for token in message.tokens]
        for mask in self._find(self._mask_index, message):
            for position in range(mask.start, mask.end):
                message.keys[position] = frozenset()
        concept_matches = self._find(self._concept_index, message)
        if not concept_matches:
            return Verdict()
        seen: set[tuple[str, str, int, int]] = set()
        triggers = []
        for trigger in self._resolve(self._find(self._rule_index, message)):
            rule = self.rules[trigger.owner]
            key = (rule.category, rule.direction, trigger.start, trigger.end)
            if key not in seen:  # "no" is in the en and the es list: one negation
                seen.add(key)
                triggers.append(trigger)
        starts: dict[str, set[int]] = {}
        ends: dict[str, set[int]] = {}
        for trigger in triggers:
            category = self.rules[trigger.owner].category
            starts.setdefault(category, set()).add(trigger.start)
            ends.setdefault(category, set()).add(trigger.end)
        scoped = []
        for trigger in triggers:
            rule = self.rules[trigger.owner]
            scope = self._scope(rule, message, trigger, starts[rule.category], ends[rule.category])
            scoped.append((rule, trigger, scope))

        best: dict[int, tuple[Status, str]] = {}
        rank = {"current": 3, "confirm": 2, "symptom": 1}
        for match in concept_matches:
            concept = self.concepts[match.owner]
            modifiers = []
            # The phrase carries its own negation ("no me entra aire"): another one in the gap is Spanish
            # negative concord ("no me entra *nada de* aire"), not a second negation.
            own_negation = any(
                self.rules[t.owner].category == "negated"
                and any(match.start <= p < match.end and p not in match.skipped for p in range(t.start, t.end))
                for _, t, _ in scoped
            )
            for rule, trigger, (lo, hi) in scoped:
                overlaps = trigger.start < match.end and match.start < trigger.end
                if rule.category == "figure":
                    # A figure of speech made of the finding's own words ("dying to see", "me muero de risa").
                    if overlaps:
                        modifiers.append("figure")
                elif rule.category != "pseudo" and not overlaps and lo < match.end and match.start < hi:
                    modifiers.append(rule.category)
                elif (
                    rule.category in _GAP_CATEGORIES
                    and rule.direction != "answer"
                    and all(p in match.skipped for p in range(trigger.start, trigger.end))
                    and not (rule.category == "negated" and own_negation)
                ):
                    # A trigger in the gap modifies what follows it: "my chest is not hurting", "ya no me duele"
                    modifiers.append(rule.category)
            status = self._status(concept, modifiers)
            if status is None:
                continue
            evidence = " ".join(message.tokens[match.start : match.end])
            previous = best.get(match.owner)
            if previous is None or rank[status] > rank[previous[0]]:
                best[match.owner] = (status, evidence)
        self._composites(best)
        for owner in sorted(o for o in best if self.concepts[o].unless):  # in file order: "unless" names earlier ones
            if any(self._by_id[name] in best for name in self.concepts[owner].unless):
                del best[owner]
        findings = []
        for owner, (status, evidence) in sorted(best.items(), key=lambda item: (-rank[item[1][0]], item[0])):
            concept = self.concepts[owner]
            if concept.reason is None:
                continue
            findings.append(
                Finding(
                    reason=concept.reason,
                    status=status,
                    crisis_line=concept.crisis_line,
                    poison_control=concept.poison_control,
                    violence_line=concept.violence_line,
                    evidence=evidence,
                )
            )
        return Verdict(findings=tuple(findings))

    def _composites(self, best: dict[int, tuple[Status, str]]) -> None:
        """A concept made of others ("low sugar" and "confused"): its own status when every part holds at its
        default status, confirm when a part is past, resolved or uncertain."""
        for owner, concept in enumerate(self.concepts):
            if not concept.all_of or owner in best:
                continue
            parts: list[tuple[bool, str]] = []
            for group in concept.all_of:
                # (held at its own default status, evidence); a part made past or uncertain weakens the whole
                held = [
                    (best[i][0] == self.concepts[i].status, best[i][1])
                    for i in (self._by_id[name] for name in group)
                    if i in best
                ]
                if not held:
                    break
                parts.append(max(held, key=lambda item: item[0]))
            else:
                full = all(at_default for at_default, _ in parts)
                status: Status = concept.status if full or concept.status == "symptom" else "confirm"
                best[owner] = (status, " / ".join(evidence for _, evidence in parts))

    @staticmethod
    def _resolve(matches: list[_Match]) -> list[_Match]:
        """Longest triggers win, and a word belongs to one trigger ("not sure" is uncertain, not "not")."""
        chosen: list[_Match] = []
        taken: set[int] = set()
        spans: set[tuple[int, int]] = set()
        for match in sorted(matches, key=lambda m: (-(m.end - m.start), m.start)):
            span = set(range(match.start, match.end))
            if span & taken and (match.start, match.end) not in spans:
                continue  # the same words in two rules ("no": forward, and a reply on its own) both count
            spans.add((match.start, match.end))
            taken |= span
            chosen.append(match)
        return chosen
