"""`outreach lint-content`: what a content reviewer needs to know before a flow reaches a patient.

Errors (non-zero exit): invalid files (with file, line, reason), unreachable nodes, nodes from which the
conversation can never end, answer words that are whole-message keywords (ALTO, HELP, ENGLISH...),
education text above a grade-6 reading level. Warnings (errors with ``strict``): flow texts above the same
reading level. Report: every outgoing text's encoding and SMS segments per language, with plain and with
accented sample values, because one accented letter can double what a message costs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from app.channels.segments import segment_info
from app.content import ContentLibrary
from app.flows.instructions import instruction, join, opt_out_line, spoken_text
from app.flows.model import Flow, Node
from app.flows.resources import DOMAINS as RESOURCE_DOMAINS
from app.flows.text import fold, squash

#: Realistic values for the texts' variables, rendered per language as production renders them (Babel).
#: PLAIN keeps every value in GSM-7 (a name without accents, a Wednesday); FILLED is the costly, common
#: case: an accented first name ("María") and a Spanish Saturday ("sábado"), both UCS-2.
SAMPLE_PATIENT_PLAIN = {"first_name": "Guadalupe", "appointment_at": "2026-12-16T10:30:00-06:00"}
SAMPLE_PATIENT_FILLED = {"first_name": "María", "appointment_at": "2026-12-19T10:30:00-06:00"}
SAMPLE_PROGRAM = {"program_name": "North Valley Clinic", "program_phone": "555-010-0100"}
SAMPLE_MEDICATION = {"medication_name": "metoprolol succinate", "dose_time": "08:00"}
#: A care-plan goal as a weekly goal check names it (the patient's words, so the same in both languages).
SAMPLE_GOAL = {"goal_text": "walk 10 minutes a day"}
SAMPLE_TIMEZONE = "America/Chicago"
MAX_GRADE_EN = 6.0
MIN_FERNANDEZ_HUERTA_ES = 70.0
WARN_SEGMENTS = 3


class SegmentRow(NamedTuple):
    """One outgoing text in one language: its cost with plain and with accented sample values."""

    flow_id: str
    where: str
    language: str
    encoding: str
    characters: int
    segments: int
    filled_encoding: str
    filled_segments: int


class DurationRow(NamedTuple):
    """How long a flow's voice rendering takes to say in one language (see :func:`spoken_duration`)."""

    flow_id: str
    language: str
    #: Seconds on the longest way through the flow (every question it can ask, asked once).
    longest: float
    #: Seconds on the shortest way to an end.
    shortest: float
    #: Questions on the longest way.
    questions: int


@dataclass
class LintReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segments: list[SegmentRow] = field(default_factory=list)
    reading: list[tuple[str, str, float]] = field(default_factory=list)
    durations: list[DurationRow] = field(default_factory=list)


@dataclass(frozen=True)
class SegmentTotals:
    texts: int
    segments: int
    ucs2: int
    filled_segments: int
    filled_ucs2: int


def segment_totals(rows: Sequence[SegmentRow]) -> dict[str, SegmentTotals]:
    """Totals per language and ``"all"``: the figure to quote before and after a content pass."""
    groups: dict[str, list[SegmentRow]] = {"all": list(rows)}
    for row in rows:
        groups.setdefault(row.language, []).append(row)
    return {
        name: SegmentTotals(
            texts=len(group),
            segments=sum(r.segments for r in group),
            ucs2=sum(1 for r in group if r.encoding == "UCS-2"),
            filled_segments=sum(r.filled_segments for r in group),
            filled_ucs2=sum(1 for r in group if r.filled_encoding == "UCS-2"),
        )
        for name, group in sorted(groups.items(), key=lambda item: (item[0] == "all", item[0]))
    }


def sample_variables(language: str, *, filled: bool) -> dict[str, str]:
    """Every text variable with a realistic value in ``language`` (dates and times through Babel)."""
    from app.conversations.variables import render_variables

    patient = SAMPLE_PATIENT_FILLED if filled else SAMPLE_PATIENT_PLAIN
    raw = {"appointment_at": patient["appointment_at"], **SAMPLE_MEDICATION, **SAMPLE_GOAL}
    resource = SAMPLE_RESOURCE.get(language, SAMPLE_RESOURCE["en"])
    return {
        "first_name": patient["first_name"],
        **SAMPLE_PROGRAM,
        **render_variables(raw, language, SAMPLE_TIMEZONE),
        **{f"resources_{domain}": resource for domain in RESOURCE_DOMAINS},
    }


#: A resource list as a text would carry it (``{resources_food}``...; content/resources.yaml).
SAMPLE_RESOURCE = {
    "en": "For help with food, call 211 or go to 211.org. It is free.",
    "es": "Para ayuda con comida, llame al 211 o visite 211.org. Es gratis.",
}


def resource_problems(library: ContentLibrary) -> tuple[list[str], list[str]]:
    """content/resources.yaml texts (its structure is checked when it loads, with the file and line):
    errors for a text longer than one SMS part can carry beside a question (320 characters), reading-level
    problems (English grade > 6, Spanish Fernández-Huerta < 70) as the second list."""
    from app.readability import fernandez_huerta, flesch_kincaid_grade

    errors: list[str] = []
    reading: list[str] = []
    for entry in library.resources.entries:
        where = f"content/resources.yaml:{entry.line}: resource '{entry.domain}'"
        for language, text in entry.text.items():
            if len(text) > 320:
                errors.append(f"{where} [{language}]: {len(text)} characters (at most 320)")
            if language == "en" and flesch_kincaid_grade(text) > MAX_GRADE_EN:
                reading.append(f"{where} [en]: reading grade {flesch_kincaid_grade(text):.1f} is above 6")
            if language == "es" and fernandez_huerta(text) < MIN_FERNANDEZ_HUERTA_ES:
                reading.append(f"{where} [es]: Fernandez-Huerta {fernandez_huerta(text):.0f} is below 70")
    return errors, reading


def consent_keywords() -> dict[str, str]:
    """Whole-message words that never reach a flow, folded and squashed, with what they are.

    From app/messaging/consent.py (opt-out, opt-in, help) and app/flows/intents.py (language switch). YES / SÍ,
    which opt back in only while a patient is opted out (and so never during a conversation), are
    answers by design and are not listed.
    """
    from app.flows.intents import LANGUAGE_WORDS
    from app.messaging.consent import HELP, OPT_IN, OPT_OUT

    found: dict[str, str] = {}
    for words, kind in ((OPT_OUT, "opt-out"), (OPT_IN, "opt-in"), (HELP, "help"), (LANGUAGE_WORDS, "language")):
        for word in words:
            found.setdefault(squash(word), f"{kind} keyword {word.upper()}")
    return found


def _successors(flow: Flow, node_id: str) -> set[str]:
    node = flow.node(node_id)
    targets = {branch.goto for branch in node.next}
    if node.on_unanswered:
        targets.add(node.on_unanswered)
    return targets


def graph_problems(flow: Flow) -> list[str]:
    reachable: set[str] = set()
    frontier = [flow.start]
    while frontier:
        current = frontier.pop()
        if current in reachable:
            continue
        reachable.add(current)
        frontier.extend(_successors(flow, current))
    problems = [
        f"{flow.source_path}:{node.line}: node '{node.id}' can never be reached from '{flow.start}'"
        for node in flow.nodes.values()
        if node.id not in reachable
    ]
    can_end = {n.id for n in flow.nodes.values() if n.type == "end"}
    changed = True
    while changed:
        changed = False
        for node in flow.nodes.values():
            if node.id not in can_end and _successors(flow, node.id) & can_end:
                can_end.add(node.id)
                changed = True
    problems += [
        f"{flow.source_path}:{node.line}: node '{node.id}' is a dead end (no path to an end node)"
        for node in flow.nodes.values()
        if node.id not in can_end
    ]
    return problems


def sms_text(flow: Flow, node: Node, language: str) -> str:
    """The SMS a node sends, as a template (variables not filled): its text, the SMS answer instruction
    of a question, and the opt-out line on the flow's first message (as app/flows/engine.py sends it)."""
    text = join(node.text.get(language, ""), instruction(node, "sms", language))
    if node.id == flow.start and not flow.internal:
        text = join(text, opt_out_line("sms", language))
    return text


def voice_text(flow: Flow, node: Node, language: str) -> str:
    """What a call says for a node, as a template: the text aloud, the voice instruction of a question,
    and "To stop these calls, press 9." at the flow's first prompt."""
    text = spoken_text(node.text.get(language, ""), language)
    said = instruction(node, "voice", language)
    if said:
        if text and not re.search(r"[.?!:]$", text):
            text += "."
        text = f"{text} {said}".strip()
    if node.id == flow.start and not flow.internal:
        text = f"{text} {opt_out_line('voice', language)}".strip()
    return text


def _outgoing_texts(flow: Flow) -> Iterator[tuple[str, int, dict[str, str]]]:
    """(where, line, SMS text per language) for every text a flow can send, as the patient gets it."""
    for node in flow.nodes.values():
        if node.text:
            yield node.id, node.line, {language: sms_text(flow, node, language) for language in node.text}
        if node.hint:
            yield f"{node.id}.hint", node.line, dict(node.hint)
    for rule in flow.rules:
        if rule.tell:
            yield f"rule {rule.id}", rule.line, dict(rule.tell)


def _line_of(source_lines: Sequence[str], first: int, last: int, choice_id: str, word: str) -> int:
    """The line between ``first`` and ``last`` that names ``word``, searched from the choice's own ``id``
    line on (``first`` when none does)."""
    start = first
    choice_line = re.compile(rf"^\s*-\s*id:\s*['\"]?{re.escape(choice_id)}['\"]?\s*(#.*)?$")
    for number in range(max(first, 1), min(last, len(source_lines) + 1)):
        if choice_line.match(source_lines[number - 1]):
            start = number
            break
    pattern = re.compile(rf"(?<!\w){re.escape(fold(word))}(?!\w)")
    for number in range(max(start, 1), min(last, len(source_lines) + 1)):
        if pattern.search(fold(source_lines[number - 1])):
            return number
    return first


def keyword_collisions(flow: Flow, source: str = "") -> list[str]:
    """Answer words of ``flow`` that, sent as a whole message, are a keyword handled before any flow.

    A choice is chosen by its label or one of its ``words`` in any language (app/flows/engine.py), so each
    of them, in every language, is checked against :func:`consent_keywords` as app/messaging/consent.py compares
    (case, accents, spaces and punctuation ignored). Returns ``"file:line: ..."`` errors naming the node,
    the word and the keyword. Source of the rule: DESIGN §4.3 ("a flow's answer words are never
    whole-message keywords").
    """
    keywords = consent_keywords()
    lines = source.splitlines()
    starts = [*sorted(node.line for node in flow.nodes.values()), len(lines) + 1]
    problems: list[str] = []
    for node in flow.nodes.values():
        next_line = next((line for line in starts if line > node.line), len(lines) + 1)
        for choice in node.choices:
            offered = [(lang, label) for lang, label in choice.label.items()]
            offered += [(lang, word) for lang, words in choice.words.items() for word in words]
            seen: set[str] = set()
            for language, word in offered:
                keyword = keywords.get(squash(word))
                if keyword is None or squash(word) in seen:
                    continue
                seen.add(squash(word))
                line = _line_of(lines, node.line, next_line, choice.id, word)
                problems.append(
                    f"{flow.source_path}:{line}: node '{node.id}': answer word '{word}' ({language}, choice "
                    f"'{choice.id}') is the {keyword} when sent alone; the patient would never reach the flow"
                )
    return problems


def engine_answer_collisions() -> list[str]:
    """Yes/no words the engine accepts (app/flows/answers.py) that are also whole-message keywords."""
    from app.flows.answers import NO_WORDS, YES_WORDS

    keywords = consent_keywords()
    return [
        f"app/flows/answers.py: {kind} word '{word}' ({language}) is the {keywords[squash(word)]}"
        for kind, table in (("yes", YES_WORDS), ("no", NO_WORDS))
        for language, words in sorted(table.items())
        for word in sorted(words)
        if squash(word) in keywords
    ]


def _lines_as_sentences(text: str) -> str:
    """Each line of a text ends a sentence: "0 Not at all" / "1 Several days" are a menu, not one run-on."""
    return "\n".join(line if re.search(r"[.!?:;]\s*$", line) else f"{line}." for line in text.splitlines())


def flow_reading_problems(flow: Flow) -> list[str]:
    """Flow texts above the reading target: English Flesch-Kincaid grade > 6, Spanish Fernández-Huerta
    < 70 (about grade 6), the education target of DESIGN §4.6, scored on the text with sample values and
    each line read as a sentence. Returns ``"file:line: where [lang]: ..."`` problems."""
    from app.readability import fernandez_huerta, flesch_kincaid_grade

    problems: list[str] = []
    for where, line, texts in _outgoing_texts(flow):
        for language, template in sorted(texts.items()):
            text = _lines_as_sentences(template.format_map(sample_variables(language, filled=False)))
            if language == "en":
                grade = flesch_kincaid_grade(text)
                if grade > MAX_GRADE_EN:
                    problems.append(
                        f"{flow.source_path}:{line}: {where} [en]: reading grade {grade:.1f} is above "
                        f"{MAX_GRADE_EN:.0f}: {template!r}"
                    )
            elif language == "es":
                ease = fernandez_huerta(text)
                if ease < MIN_FERNANDEZ_HUERTA_ES:
                    problems.append(
                        f"{flow.source_path}:{line}: {where} [es]: Fernandez-Huerta {ease:.1f} is below "
                        f"{MIN_FERNANDEZ_HUERTA_ES:.0f} (about grade 6): {template!r}"
                    )
    return problems


#: Words that tell a patient how to answer by text. Content asks the question only; the renderer adds how
#: to answer per channel (app/flows/instructions.py), so these in a question, message or wait text (or in
#: what a call says) are errors. STOP / PARAR only in capitals: "stop any medicine", "no puede parar" are
#: content. End texts and rule texts may say "call or text 988".
SMS_INSTRUCTION = re.compile(
    r"(?i:\b(?:reply|replies|responda|responder|conteste|texts?|texting|textos?)\b)|\bSTOP\b|\bPARAR\b"
)


#: Said on a call, these sound like a text message or a form: "el/la", "confundido(a)" (a rendering rule
#: turns "-o(a)" into "-o o -a"; other forms must be written out), "Le escribimos", "we are texting".
VOICE_WORDING = re.compile(
    r"\b\w+\((?:a|o|as|os|la|el)\)|\b(?:el/la|la/el|los/las|o/a|he/she|his/her|him/her)\b"
    r"|(?i:\ble escribimos\b|\bwe(?:'re| are) (?:texting|writing)\b|\bthis (?:text|message)\b|\beste mensaje\b)"
)


def voice_wording_problems(spoken: str) -> list[str]:
    """What a voice rendering says that reads like a text or a form (:data:`VOICE_WORDING`), quoted."""
    return [f"'{m.group(0)}'" for m in VOICE_WORDING.finditer(spoken)]


def _text_line(lines: Sequence[str], node: Node, language: str, pattern: re.Pattern[str], last: int) -> int:
    """The line of ``node`` (up to ``last``) whose ``language:`` entry matches ``pattern``; else the node's."""
    key = re.compile(rf"(?:^|[\s{{,]){re.escape(language)}\s*:")
    for number in range(max(node.line, 1), min(last, len(lines) + 1)):
        if key.search(lines[number - 1]) and pattern.search(lines[number - 1]):
            return number
    return node.line


def instruction_problems(flow: Flow, source: str = "") -> list[str]:
    """Texts that still carry an SMS answer instruction ("Reply YES or NO.", "Responda PARAR..."), as
    ``"file:line: ..."`` errors. Checked: the text of every question, message and wait node (an SMS
    instruction belongs in ``instructions: {sms: ...}``, never in the text), and the whole voice rendering of
    every question (its text, its voice instruction or override, its voice hint), which is said on a call.
    A node's SMS ``instructions`` and its SMS ``hint`` may say "Reply".
    """
    lines = source.splitlines()
    starts = [*sorted(node.line for node in flow.nodes.values()), len(lines) + 1]
    problems: list[str] = []
    for node in flow.nodes.values():
        if node.type not in {"question", "message", "wait"}:
            continue
        last = next((line for line in starts if line > node.line), len(lines) + 1)
        for language in flow.languages:
            text = node.text.get(language, "")
            found = SMS_INSTRUCTION.search(text)
            if found:
                line = _text_line(lines, node, language, SMS_INSTRUCTION, last)
                problems.append(
                    f"{flow.source_path}:{line}: node '{node.id}' [{language}]: the text says '{found.group(0)}': "
                    "answer instructions are added per channel by the renderer (docs/flow-format.md "
                    "'Answer instructions'); put a wording that must differ in `instructions: {sms: ...}`"
                )
                continue
            spoken = " ".join([voice_text(flow, node, language), node.voice_hint.get(language, "")]).replace(
                opt_out_line("voice", language), ""
            )
            found = SMS_INSTRUCTION.search(spoken)
            if found:
                problems.append(
                    f"{flow.source_path}:{node.line}: node '{node.id}' [{language}]: the voice rendering says "
                    f"'{found.group(0)}' (an SMS instruction on a call): {spoken!r}"
                )
            for wording in voice_wording_problems(spoken):
                problems.append(
                    f"{flow.source_path}:{node.line}: node '{node.id}' [{language}]: the voice rendering says "
                    f"{wording}, which reads like a text or a form aloud: {spoken!r}"
                )
    return problems


#: Text-to-speech pace, words per minute: Amazon Polly / Twilio <Say> voices speak English at about 150
#: and Spanish at about 160 words a minute at the default rate (Spanish words are shorter).
WORDS_PER_MINUTE = {"en": 150.0, "es": 160.0}
#: The pause a voice adds at each sentence end, seconds.
SENTENCE_PAUSE = 0.4
#: The caller's turn at a <Gather>, seconds: a keypress or a short word and Twilio's end-of-speech wait;
#: a number is several keys and #; free text is a few spoken words.
ANSWER_SECONDS = {"yes_no": 3.0, "choice": 3.0, "scale": 3.0, "number": 5.0, "text": 8.0}
#: TCPA health-care exemption (FCC 15-72): an exempt call lasts at most one minute (TWILIO.md).
MAX_CALL_SECONDS = 60.0
_SPOKEN_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")


def speaking_seconds(text: str, language: str) -> float:
    """Seconds a TTS voice takes to say ``text``: words at :data:`WORDS_PER_MINUTE` plus
    :data:`SENTENCE_PAUSE` per sentence. A number of three or more digits is said as two words ("one
    eighty-two"); an estimate, not a measurement."""
    words = 0
    for word in _SPOKEN_WORD.findall(text):
        words += 2 if word.isdigit() and len(word) >= 3 else 1
    pace = WORDS_PER_MINUTE.get(language, WORDS_PER_MINUTE["en"])
    return words * 60.0 / pace + SENTENCE_PAUSE * len(_SENTENCE_END.findall(text))


def spoken_duration(flow: Flow, language: str, education: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(longest, shortest, questions on the longest): the seconds a call takes to go through ``flow`` in
    ``language`` on its longest and on its shortest way from the start to an end (every branch is a way;
    each question asked once, answered at once: no re-prompts, no escalation texts), with the voice
    rendering (:func:`voice_text`, sample variables), the caller's turn at each question
    (:data:`ANSWER_SECONDS`) and an education text read aloud where a node gives one.
    """
    values = sample_variables(language, filled=False)
    education = education or {}
    cost: dict[str, float] = {}
    for node in flow.nodes.values():
        said = voice_text(flow, node, language).format_map(values) if node.text else ""
        if node.type == "education" and node.education in education:
            said = f"{education[node.education]} {said}"
        seconds = speaking_seconds(said, language)
        if node.type == "question" and node.question_type:
            seconds += ANSWER_SECONDS.get(node.question_type, 3.0)
        cost[node.id] = seconds
    memo: dict[str, tuple[float, float, int]] = {}

    def walk(node_id: str, seen: frozenset[str]) -> tuple[float, float, int]:
        if node_id in memo:
            return memo[node_id]
        node = flow.node(node_id)
        asks = 1 if node.type == "question" else 0
        targets = [t for t in _successors(flow, node_id) if t not in seen]
        if not targets:
            result = (cost[node_id], cost[node_id], asks)
        else:
            ways = [walk(t, seen | {node_id}) for t in sorted(targets)]
            longest = max(ways, key=lambda w: w[0])
            result = (cost[node_id] + longest[0], cost[node_id] + min(w[1] for w in ways), asks + longest[2])
        memo[node_id] = result
        return result

    return walk(flow.start, frozenset())


def _education_body(text: str) -> str:
    return " ".join(line for line in text.splitlines() if line.strip())


def reading_scores(library: ContentLibrary, report: LintReport) -> None:
    from app.readability import fernandez_huerta, flesch_kincaid_grade

    for topic, by_language in sorted(library.education.items()):
        for language, item in sorted(by_language.items()):
            where = f"content/education/{topic}/{language}.md"
            body = _education_body(item.body)
            if language == "en":
                grade = flesch_kincaid_grade(body)
                report.reading.append((where, "Flesch-Kincaid grade", grade))
                if grade > MAX_GRADE_EN:
                    report.errors.append(f"{where}: reading grade {grade:.1f} is above {MAX_GRADE_EN:.0f}")
            elif language == "es":
                ease = fernandez_huerta(body)
                report.reading.append((where, "Fernandez-Huerta ease", ease))
                if ease < MIN_FERNANDEZ_HUERTA_ES:
                    report.errors.append(
                        f"{where}: Fernandez-Huerta {ease:.0f} is below {MIN_FERNANDEZ_HUERTA_ES:.0f} (about grade 6)"
                    )
            if len(item.body) > 1600:
                report.errors.append(f"{where}: {len(item.body)} characters is more than one text can carry (1,600)")
        for language in ("en", "es"):
            if language not in by_language:
                report.errors.append(f"content/education/{topic}: no '{language}' text")


def lint(library: ContentLibrary, *, strict: bool = False) -> LintReport:
    """Check every flow, campaign and education text.

    Errors: graph problems, unknown education topics, keyword collisions, education above grade 6.
    Flow texts above the reading target are warnings, or errors when ``strict``.
    """
    report = LintReport()
    report.errors.extend(engine_answer_collisions())
    plain = {language: sample_variables(language, filled=False) for language in ("en", "es")}
    filled = {language: sample_variables(language, filled=True) for language in ("en", "es")}
    for flow in library.flows.values():
        report.errors.extend(graph_problems(flow))
        report.errors.extend(keyword_collisions(flow, library.flow_sources.get(flow.id, "")))
        report.errors.extend(instruction_problems(flow, library.flow_sources.get(flow.id, "")))
        if not flow.internal:
            for language in flow.languages:
                education = {
                    topic: _education_body(items[language].body)
                    for topic, items in library.education.items()
                    if language in items
                }
                longest, shortest, questions = spoken_duration(flow, language, education)
                report.durations.append(DurationRow(flow.id, language, longest, shortest, questions))
                if longest > MAX_CALL_SECONDS:
                    report.warnings.append(
                        f"{flow.source_path}: by phone [{language}] about {longest:.0f} s on its longest way "
                        f"({questions} questions), past the {MAX_CALL_SECONDS:.0f} s a health-care call may last "
                        "(TCPA exemption, TWILIO.md 'Rules that bind the content')"
                    )
        reading = flow_reading_problems(flow)
        (report.errors if strict else report.warnings).extend(reading)
        for where, _line, texts in _outgoing_texts(flow):
            for language, template in texts.items():
                info = segment_info(template.format_map(plain.get(language, plain["en"])))
                costly = segment_info(template.format_map(filled.get(language, filled["en"])))
                report.segments.append(
                    SegmentRow(
                        flow.id,
                        where,
                        language,
                        info.encoding,
                        info.characters,
                        info.segments,
                        costly.encoding,
                        costly.segments,
                    )
                )
                if costly.segments > WARN_SEGMENTS:
                    report.warnings.append(f"{flow.id} {where} [{language}]: {costly.segments} segments")
        education_topics = {n.education for n in flow.nodes.values() if n.education}
        for topic in sorted(t for t in education_topics if t):
            if topic not in library.education:
                report.errors.append(f"{flow.source_path}: education topic '{topic}' does not exist")
    resource_errors, resource_reading = resource_problems(library)
    report.errors.extend(resource_errors)
    (report.errors if strict else report.warnings).extend(resource_reading)
    reading_scores(library, report)
    return report
