"""Build a :class:`~app.triage.matcher.Triage` from ``content/triage/concepts.yaml`` and ``context.yaml``.

Why a loader with lines: clinicians edit these lists; a typo must fail ``outreach lint-content`` with the
file, the line and the reason, not surface as a missed red flag.

Pattern syntax (both files): words separated by spaces, each a position in the phrase.
``hurt*`` is a stem (hurt, hurts, hurting), ``a|b`` alternatives, ``@pain`` a class from ``classes``,
``#<70`` / ``#>=300`` / ``#1900-2099`` a number in a range, a trailing ``?`` an optional word. Between two
positions of a concept pattern up to ``gap`` other words may stand ("chest is really hurting"); trigger
phrases in context.yaml match word for word. Accents and case are ignored; abbreviations in
``context.yaml`` (``cant`` → ``can not``) apply to the content as they do to messages.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from app.flows.loader import FlowError, LineDict, load_yaml_with_lines
from app.triage.matcher import CATEGORIES, DIRECTIONS, Atom, Concept, ContextRule, Element, Pattern, Triage, fold

LANGUAGES = ("en", "es")
STATUSES = ("current", "confirm", "symptom")
_NUMBER = re.compile(r"^#(?:(<=|>=|<|>)(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?))?$")
_WORD = re.compile(r"^[a-z0-9ñ']+\*?$")
_REASON = re.compile(r"^[a-z][a-z_]*$")
_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


def _line(mapping: Any, key: str | None = None) -> int:
    if isinstance(mapping, LineDict):
        if key is not None and key in mapping.key_lines:
            return mapping.key_lines[key]
        return mapping.line
    return int(getattr(mapping, "line", 0))


class _Builder:
    def __init__(self, shown: str, abbreviations: dict[str, tuple[str, ...]]):
        self.shown = shown
        self.abbreviations = abbreviations
        self.classes: dict[str, tuple[tuple[Atom, ...], ...]] = {}

    def fail(self, line: int, reason: str) -> FlowError:
        return FlowError(self.shown, line, reason)

    def atoms(self, word: str, line: int, what: str) -> tuple[Atom, ...]:
        number = _NUMBER.match(word)
        if number:
            op, value, low, high = number.groups()
            if low is not None:
                return (Atom("num", word, float(low), float(high)),)
            if op is None:
                return (Atom("num", word),)
            bound = float(value)
            ranges = {
                "<": (float("-inf"), bound - 1e-9),
                "<=": (float("-inf"), bound),
                ">": (bound + 1e-9, float("inf")),
                ">=": (bound, float("inf")),
            }
            return (Atom("num", word, *ranges[op]),)
        text = fold(word)
        if not _WORD.match(text):
            raise self.fail(line, f"{what}: '{word}' is not a word, a stem (word*) or a number (#<70)")
        if text.endswith("*"):
            if len(text) < 3:
                raise self.fail(line, f"{what}: stem '{word}' is too short (2 letters at least)")
            return (Atom("stem", text[:-1].replace("'", "")),)
        plain = text.replace("'", "")
        return tuple(Atom("word", piece) for piece in self.abbreviations.get(plain, (plain,)))

    def run(self, phrase: str, line: int, what: str) -> tuple[Atom, ...]:
        return tuple(atom for word in phrase.split() for atom in self.atoms(word, line, what))

    def pattern(self, source: Any, gap: int, line: int, what: str) -> Pattern:
        if not isinstance(source, str) or not source.strip():
            raise self.fail(line, f"{what}: a pattern must be non-empty text")
        elements = []
        for position, word in enumerate(source.split()):
            optional = word.endswith("?") and len(word) > 1
            word = word.rstrip("?") if optional else word
            if optional and position == 0:
                raise self.fail(line, f"{what}: '{source}': the first word cannot be optional")
            if word.startswith("@"):
                name = word[1:]
                if name not in self.classes:
                    raise self.fail(line, f"{what}: '{source}': unknown class '@{name}'")
                alternatives = self.classes[name]
            else:
                alternatives = tuple(self.atoms(alt, line, what) for alt in word.split("|") if alt)
                if not alternatives:
                    raise self.fail(line, f"{what}: '{source}': empty alternative")
            elements.append(Element(alternatives=alternatives, optional=optional))
        return Pattern(elements=tuple(elements), gap=gap, source=source)

    def phrases(self, raw: Any, line: int, what: str) -> list[tuple[Any, int]]:
        """A list, or a mapping en/es → list; returns (phrase, line) pairs."""
        if isinstance(raw, dict):
            unknown = set(raw) - set(LANGUAGES)
            if unknown:
                language = sorted(unknown)[0]
                raise self.fail(_line(raw, language), f"{what}: unknown language '{language}' (use en, es)")
            items: list[tuple[Any, int]] = []
            for language in LANGUAGES:
                items += self.phrases(raw.get(language) or [], _line(raw, language), f"{what} ({language})")
            return items
        if not isinstance(raw, list):
            raise self.fail(line, f"{what}: expected a list of phrases")
        start = _line(raw) or line
        # YAML 1.1 reads a bare `no` / `yes` as a boolean; in a phrase list it is the word (as the flow loader does).
        return [("yes" if item else "no", start) if isinstance(item, bool) else (item, start) for item in raw]


def _header(data: Any, shown: str) -> LineDict:
    if not isinstance(data, LineDict):
        raise FlowError(shown, 1, "expected a mapping at the top")
    reviewed = data.get("reviewed")
    # YAML 1.1 reads the key `on` as true, which the line loader names "yes".
    if not isinstance(reviewed, dict) or "by" not in reviewed or not {"on", "yes"} & set(reviewed):
        raise FlowError(shown, _line(data, "reviewed"), "needs 'reviewed: {by: ..., on: ...}'")
    if not isinstance(data.get("sources"), list) or not data["sources"]:
        raise FlowError(shown, _line(data, "sources"), "needs a non-empty 'sources' list")
    return data


def _read(path: Path, shown: str) -> LineDict:
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowError(shown, 0, "file is missing") from None
    return _header(load_yaml_with_lines(source, shown), shown)


def _context(data: LineDict, shown: str) -> tuple[_Builder, list[ContextRule], list[str], list[str]]:
    abbreviations: dict[str, tuple[str, ...]] = {}
    raw_abbr = data.get("abbreviations") or {}
    if not isinstance(raw_abbr, dict):
        raise FlowError(shown, _line(data, "abbreviations"), "'abbreviations' must map a word to its long form")
    for short, long in raw_abbr.items():
        words = fold(str(long)).split()
        if not words:
            raise FlowError(shown, _line(raw_abbr, short), f"abbreviation '{short}' has no long form")
        abbreviations[fold(short).replace("'", "")] = tuple(words)
    builder = _Builder(shown, abbreviations)
    # A terminator may be several words ("asi que"): kept as a phrase, so "que" alone never ends a scope.
    terminators = [
        " ".join(atom.text for atom in builder.run(str(phrase), line, "terminators"))
        for phrase, line in builder.phrases(data.get("terminators") or [], _line(data, "terminators"), "terminators")
    ]
    no_fuzzy = [fold(str(w)) for w, _ in builder.phrases(data.get("no_fuzzy") or [], _line(data), "no_fuzzy")]
    rules: list[ContextRule] = []
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise FlowError(shown, _line(data, "rules"), "needs a non-empty 'rules' list")
    for raw in raw_rules:
        if not isinstance(raw, LineDict):
            raise FlowError(shown, _line(raw_rules), "each rule is a mapping")
        allowed = {"category", "direction", "scope", "stops", "en", "es", "note"}
        for key in raw:
            if key not in allowed:
                raise FlowError(shown, _line(raw, key), f"rule: unknown key '{key}'")
        category = raw.get("category")
        if category not in CATEGORIES:
            raise FlowError(shown, _line(raw, "category"), f"rule: category must be one of {', '.join(CATEGORIES)}")
        direction = raw.get("direction", "forward")
        if direction not in DIRECTIONS:
            raise FlowError(shown, _line(raw, "direction"), f"rule: direction must be one of {', '.join(DIRECTIONS)}")
        scope = raw.get("scope", 5)
        if not isinstance(scope, int) or isinstance(scope, bool) or not 0 <= scope <= 20:
            raise FlowError(shown, _line(raw, "scope"), "rule: scope is a number of words from 0 to 20")
        phrases = builder.phrases({k: raw[k] for k in LANGUAGES if k in raw}, raw.line, f"{category} rule")
        if not phrases:
            raise FlowError(shown, raw.line, f"{category} rule: needs en and/or es phrases")
        stops = frozenset(
            atom.text
            for word, line in builder.phrases(raw.get("stops") or [], _line(raw, "stops"), f"{category} rule stops")
            for atom in builder.run(str(word), line, f"{category} rule stops")
        )
        for phrase, line in phrases:
            pattern = builder.pattern(phrase, 0, line, f"{category} rule")
            rules.append(ContextRule(category, direction, scope, pattern, stops))
    return builder, rules, terminators, no_fuzzy


def _variants(member: str) -> list[str]:
    """A class member with alternatives or optional words, spelled out: "keep my|his eyes open?" gives
    "keep my eyes open", "keep my eyes", "keep his eyes open", "keep his eyes"."""
    choices: list[list[str]] = []
    for word in member.split():
        optional = word.endswith("?") and len(word) > 1
        options = [alt for alt in (word[:-1] if optional else word).split("|") if alt]
        choices.append([*options, ""] if optional else options or [word])
    return [" ".join(w for w in combo if w) for combo in itertools.product(*choices) if any(combo)]


def _concepts(data: LineDict, builder: _Builder) -> tuple[list[Concept], list[Pattern]]:
    shown = builder.shown
    raw_classes = data.get("classes") or {}
    if not isinstance(raw_classes, dict):
        raise FlowError(shown, _line(data, "classes"), "'classes' maps a name to its words")
    for name, members in raw_classes.items():
        if not _ID.match(name):
            raise FlowError(shown, _line(raw_classes, name), f"class name '{name}' must be lowercase letters")
        what = f"class '{name}'"
        runs = [
            builder.run(variant, line, what)
            for m, line in builder.phrases(members, _line(raw_classes, name), what)
            for variant in _variants(str(m))
        ]
        if not runs:
            raise FlowError(shown, _line(raw_classes, name), f"class '{name}' is empty")
        builder.classes[name] = tuple(runs)
    masks = [
        builder.pattern(phrase, 0, line, "masks")
        for phrase, line in builder.phrases(data.get("masks") or [], _line(data, "masks"), "masks")
    ]
    raw_concepts = data.get("concepts")
    if not isinstance(raw_concepts, list) or not raw_concepts:
        raise FlowError(shown, _line(data, "concepts"), "needs a non-empty 'concepts' list")
    concepts: list[Concept] = []
    seen: set[str] = set()
    allowed = {
        "id", "reason", "status", "gap", "patterns", "all_of", "crisis_line", "poison_control", "violence_line",
        "recent_is_current", "remote_is_confirm", "immune", "dropped_by", "unless", "note",
    }  # fmt: skip
    for raw in raw_concepts:
        if not isinstance(raw, LineDict):
            raise FlowError(shown, _line(raw_concepts), "each concept is a mapping")
        for key in raw:
            if key not in allowed:
                raise FlowError(shown, _line(raw, key), f"concept: unknown key '{key}'")
        concept_id = raw.get("id")
        if not isinstance(concept_id, str) or not _ID.match(concept_id):
            raise FlowError(shown, raw.line, "concept: 'id' is required (lowercase, digits, -)")
        if concept_id in seen:
            raise FlowError(shown, _line(raw, "id"), f"concept '{concept_id}' is defined twice")
        seen.add(concept_id)
        what = f"concept '{concept_id}'"
        reason = raw.get("reason")
        if reason is not None and (not isinstance(reason, str) or not _REASON.match(reason)):
            raise FlowError(shown, _line(raw, "reason"), f"{what}: reason is a code like chest_pain (or omitted)")
        status = raw.get("status", "current")
        if status not in STATUSES:
            raise FlowError(shown, _line(raw, "status"), f"{what}: status must be one of {', '.join(STATUSES)}")
        gap = raw.get("gap", 2)
        if not isinstance(gap, int) or isinstance(gap, bool) or not 0 <= gap <= 6:
            raise FlowError(shown, _line(raw, "gap"), f"{what}: gap is a number of words from 0 to 6")
        patterns = [
            builder.pattern(phrase, gap, line, what)
            for phrase, line in builder.phrases(raw.get("patterns") or [], _line(raw, "patterns"), what)
        ]
        all_of: list[tuple[str, ...]] = []
        for group in raw.get("all_of") or []:
            ids = tuple(group) if isinstance(group, list) else (group,)
            for part in ids:
                if part not in seen or part == concept_id:
                    raise FlowError(
                        shown, _line(raw, "all_of"), f"{what}: all_of names '{part}', not a concept defined above"
                    )
            all_of.append(tuple(str(i) for i in ids))
        if not patterns and not all_of:
            raise FlowError(shown, raw.line, f"{what}: needs 'patterns' or 'all_of'")
        immune = raw.get("immune") or []
        if not isinstance(immune, list) or any(c not in CATEGORIES for c in immune):
            raise FlowError(shown, _line(raw, "immune"), f"{what}: immune lists modifier categories")
        dropped_by = raw.get("dropped_by") or []
        if not isinstance(dropped_by, list) or any(c not in CATEGORIES for c in dropped_by):
            raise FlowError(shown, _line(raw, "dropped_by"), f"{what}: dropped_by lists modifier categories")
        unless = raw.get("unless") or []
        if not isinstance(unless, list) or any(part not in seen or part == concept_id for part in unless):
            raise FlowError(shown, _line(raw, "unless"), f"{what}: unless lists concepts defined above")
        flags = {}
        for key in ("crisis_line", "poison_control", "violence_line", "recent_is_current", "remote_is_confirm"):
            value = raw.get(key, False)
            if not isinstance(value, bool):
                raise FlowError(shown, _line(raw, key), f"{what}: '{key}' is true or false")
            flags[key] = value
        concepts.append(
            Concept(
                id=concept_id,
                reason=reason,
                status=status,
                patterns=tuple(patterns),
                all_of=tuple(all_of),
                immune=frozenset(immune),
                dropped_by=frozenset(dropped_by),
                unless=tuple(str(part) for part in unless),
                **flags,
            )
        )
    return concepts, masks


def load_triage(directory: Path, shown_root: Path | None = None) -> Triage:
    """Load ``concepts.yaml`` and ``context.yaml`` from ``directory``.

    ``shown_root``: file names in errors are shown relative to it (e.g. ``content/triage/concepts.yaml``).
    Raises :class:`app.flows.loader.FlowError` (file, line, reason) on missing or invalid content.
    """

    def shown(name: str) -> str:
        path = directory / name
        if shown_root is not None:
            try:
                return str(path.relative_to(shown_root))
            except ValueError:
                pass
        return str(path)

    context_data = _read(directory / "context.yaml", shown("context.yaml"))
    builder, rules, terminators, no_fuzzy = _context(context_data, shown("context.yaml"))
    concept_builder = _Builder(shown("concepts.yaml"), builder.abbreviations)
    concepts, masks = _concepts(_read(directory / "concepts.yaml", shown("concepts.yaml")), concept_builder)
    return Triage(
        concepts=concepts,
        rules=rules,
        terminators=terminators,
        abbreviations=builder.abbreviations,
        masks=masks,
        no_fuzzy=no_fuzzy,
    )
