"""Compiled flows: immutable, validated data the engine runs.

A flow file (``content/flows/<id>.yaml``) compiles into a :class:`Flow`; see ``docs/flow-format.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: Text per language: {"en": "...", "es": "..."}.
LocalText = Mapping[str, str]

QuestionType = Literal["number", "yes_no", "choice", "scale", "text"]
Level = Literal["EMERGENCY", "URGENT", "ROUTINE", "INFO"]
LEVELS: tuple[Level, ...] = ("EMERGENCY", "URGENT", "ROUTINE", "INFO")


@dataclass(frozen=True)
class Choice:
    id: str
    label: LocalText
    #: Extra words that select this choice, per language.
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    value: float | None = None
    #: "low" or "high": the choice also takes the words for low / high kept in app/flows/answers.py
    #: (METER_WORDS: "bajo", "baja", "alto"...), some of which are whole-message keywords and so may
    #: not be listed as a flow's own words.
    means: str | None = None


@dataclass(frozen=True)
class Condition:
    """A test over answers, scores and history. ``kind`` is one of:

    ``answer`` (this conversation's answer to ``subject``), ``score`` (a computed score),
    ``rise``/``fall`` (the change of ``subject`` against the lowest/highest, or the last, reading of the
    previous ``within_days`` calendar days in the patient's time zone), ``consecutive`` (the last
    ``count`` readings of ``subject``, this one included, all pass), ``all``/``any`` (``children``).
    """

    kind: str
    subject: str = ""
    comparator: str = ""
    operand: Any = None
    within_days: float = 1.0
    #: ``rise``/``fall``: compare against the ``lowest``/``highest`` earlier reading (default) or the ``last`` one.
    baseline: str = ""
    count: int = 2
    children: tuple[Condition, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Branch:
    when: Condition | None
    goto: str


@dataclass(frozen=True)
class Node:
    id: str
    type: str  # message | question | education | wait | end
    text: LocalText = field(default_factory=dict)
    next: tuple[Branch, ...] = ()
    question_type: QuestionType | None = None
    #: The SMS re-prompt hint ("Please reply with your weight in pounds, like 182.").
    hint: LocalText = field(default_factory=dict)
    #: The voice re-prompt hint; empty: the question again with its voice instruction.
    voice_hint: LocalText = field(default_factory=dict)
    #: Per channel ("sms" | "voice"), the answer instruction to say instead of the default for the question
    #: type (app/flows/instructions.py), where the wording must differ.
    instructions: Mapping[str, LocalText] = field(default_factory=dict)
    #: Number questions: what the number is, per language, as said in an instruction ("your weight" /
    #: "su peso": "Enter your weight, then press the pound key.").
    measure: LocalText = field(default_factory=dict)
    #: Number questions: an example answer for the SMS instruction ("182": "Reply with ..., like 182.").
    example: str | None = None
    #: Choice and scale questions: on SMS, one line per choice ("0 Not at all") rather than one sentence
    #: ("Reply 1 Better, 2 Same, 3 Worse."). Default: true for a scale, false for a choice.
    menu: bool = False
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Choice, ...] = ()
    on_unanswered: str | None = None
    education: str | None = None
    result: str = "completed"
    #: End nodes: a flow to start right after this one (PHQ-2 positive → PHQ-9).
    start_flow: str | None = None
    #: Wait nodes: how long to wait before going on (a snoozed medication reminder).
    wait_minutes: int = 0
    #: Wait nodes, by phone: what the call says when the wait would end outside calling hours and the
    #: patient cannot be texted (the question it leads to is then "not confirmed"; app/messaging/calls.py
    #: ``wait_by_phone``), by language. Empty: a general line.
    after_hours: LocalText = field(default_factory=dict)
    #: Yes/no questions about a symptom: a hedge ("a little", "un poco") is a YES.
    symptom: bool = False
    #: Yes/no questions: ``False`` when "only partly" ("a little", "not much", "un poco", "apenas") is the
    #: worrying NO ("does your rescue inhaler help?"); None: the default reading.
    partly: bool | None = None
    #: Left unanswered (after the re-prompts, or "I don't know"), it opens a ROUTINE "could not assess".
    assess: bool = False
    #: Number questions: meter flags understood at once, saved as text ({"low": "LO", "high": "HI"}).
    meter: Mapping[str, str] = field(default_factory=dict)
    #: Combined check-ins (app/flows/compose.py): this question is the one asked earlier as node
    #: ``same_as`` (a shared measure, "breathing" for heart failure and COPD). Already asked in this
    #: conversation: it is not asked again and the flow goes on from this node's branches; otherwise it is
    #: asked and its answer is saved under ``same_as``, so every module's rules read one answer.
    same_as: str | None = None
    line: int = 0

    @property
    def answer_id(self) -> str:
        """The id the answer is saved and tested under: ``same_as`` for a shared question, else the node id."""
        return self.same_as or self.id

    def choice_value(self, choice_id: object) -> float | None:
        for choice in self.choices:
            if choice.id == choice_id:
                return choice.value
        return None


@dataclass(frozen=True)
class Score:
    id: str
    #: The summed parts; each part is one question, or alternatives of which the first answered counts
    #: (PHQ-9 item 9, or its YES/NO re-ask when item 9 could not be read).
    parts: tuple[tuple[str, ...], ...]
    #: Prorate the total when at most this many parts are unanswered (None: every part is needed).
    prorate_max_missing: int | None = None
    line: int = 0

    @property
    def questions(self) -> tuple[str, ...]:
        return tuple(q for part in self.parts for q in part)


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    reason: str
    when: Condition
    #: What the patient is told when the rule fires; default text for the level when empty.
    tell: LocalText = field(default_factory=dict)
    #: Ask for 988 (suicide and crisis lifeline) rather than 911 in the default emergency text.
    crisis_line: bool = False
    #: End the conversation when the rule fires (red-zone answers).
    stop: bool = False
    #: Signs of one picture (docs/flow-format.md "Rule groups"): each escalates at once, at the step that
    #: finds it; non-EMERGENCY signs share the reason of the group's first one, so they join one task whose
    #: level rises, with detail ``signs`` / ``sign_rules`` / ``sign_count`` (cumulative); an EMERGENCY sign
    #: is its own task; the patient is told once per level (engine ``_fire_grouped``).
    group: str | None = None
    line: int = 0


#: What a flow may change on the patient's record (``effects:``; applied by app/patients/record_updates.py):
#: each field and the values it takes. ``event`` names a campaign anchor event (a touch ``anchor:`` on it is
#: scheduled from today: the social-needs follow-up two weeks later).
RECORD_FIELDS: Mapping[str, frozenset[str]] = {
    "consent": frozenset({"texts_and_calls", "texts", "calls", "declined"}),
    "preferred_time": frozenset({"morning", "afternoon", "evening", "any"}),
    "interpreter_needed": frozenset({"true", "false"}),
    "caregiver_may_receive": frozenset({"true", "false"}),
    "event": frozenset({"social_needs_referred"}),
}


@dataclass(frozen=True)
class Effect:
    """A change to the patient's record that a flow's answers make (the welcome's consent, preferred time,
    interpreter and caregiver answers), as data: when ``when`` holds, ``changes`` are applied once per
    conversation. The engine only emits them (``engine.UpdateRecord``); the service layer applies them.

    ```yaml
    effects:
      - id: consent-texts-and-calls
        when: {answer: consent, is: texts_and_calls}
        set: {consent: texts_and_calls}
    ```
    """

    id: str
    when: Condition
    changes: Mapping[str, str | bool]
    line: int = 0


@dataclass(frozen=True)
class Waits:
    reminder_after_minutes: int = 240
    expire_after_minutes: int = 1440


@dataclass(frozen=True)
class Module:
    """What a flow measures, when it is one module of a combined check-in (``module:`` in the flow file).

    ``measures`` maps shared measure names to this flow's questions (``breathing: breath``): two modules
    that measure ``breathing`` ask it once in a combined check-in. ``conditions`` are the patient
    conditions it monitors (``heart_failure``); ``start_text`` is its first question's text when it is not
    the first module of the conversation (no greeting).

    .. code-block:: yaml

        module:
          id: hf
          conditions: [heart_failure]
          measures: {breathing: breath, breathing_at_rest: breath_rest}
          start_text: {en: "What is your weight today in pounds?", es: "¿Qué peso tiene hoy, en libras?"}
    """

    id: str
    conditions: tuple[str, ...] = ()
    measures: Mapping[str, str] = field(default_factory=dict)
    start_text: LocalText = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Flow:
    id: str
    version: str
    title: LocalText
    languages: tuple[str, ...]
    start: str
    nodes: Mapping[str, Node]
    rules: tuple[Rule, ...] = ()
    scores: tuple[Score, ...] = ()
    #: Changes to the patient's record made by answers (the welcome flow); see :class:`Effect`.
    effects: tuple[Effect, ...] = ()
    waits: Waits = field(default_factory=Waits)
    #: Default clinical thresholds (``$name`` in conditions); programs and patients may override them.
    thresholds: Mapping[str, float] = field(default_factory=dict)
    source_path: str = ""
    #: Started only by the system (the "right now?" check, app/flows/routing.py): never from the API, a
    #: campaign, the care-manager screen or ``outreach simulate``, which treat it as an unknown flow.
    internal: bool = False
    #: Set when the flow can be one module of a combined check-in.
    module: Module | None = None
    #: Combined check-ins: the module flows composed, in conversation order ((flow id, version), ...).
    composed_of: tuple[tuple[str, str], ...] = ()

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def questions(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == "question"]
