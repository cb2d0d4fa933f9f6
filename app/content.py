"""The content library: flows, campaigns, triage rules, consent phrases and education text, loaded and validated
once per process from ``content/``.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.flows.compose import (
    Composition,
    check_composition,
    compose,
    composed_source,
    is_composition,
    parse_composition,
    select_modules,
)
from app.flows.intents import GlobalIntents, OptOutPhrases
from app.flows.lessons import Trigger
from app.flows.loader import FlowError, LineDict, compile_flow, load_yaml_with_lines
from app.flows.model import Flow
from app.flows.resources import ResourceLists, parse_resources
from app.scheduling.campaigns import Campaign, load_campaign
from app.triage import Triage, load_triage


@dataclass
class EducationText:
    topic: str
    language: str
    title: str
    body: str
    meta: dict[str, object] = field(default_factory=dict)


@dataclass
class ContentLibrary:
    root: Path
    flows: dict[str, Flow]
    flow_sources: dict[str, str]
    campaigns: dict[str, Campaign]
    intents: GlobalIntents
    education: dict[str, dict[str, EducationText]]
    #: Red-flag triage built from content/triage/ (concepts and context rules).
    triage: Triage
    #: Old campaign ids that still enroll (and still name stored enrollments): alias → campaign id.
    campaign_aliases: dict[str, str] = field(default_factory=dict)
    #: Combined check-ins (``compose:`` files in content/flows): id → composition. Each non-empty subset
    #: of its modules is also in ``flows``, as ``<id>.<module>...`` (app/flows/compose.py).
    compositions: dict[str, Composition] = field(default_factory=dict)

    def combined_flow_id(self, composition_id: str, wanted: Collection[str]) -> str | None:
        """The flow of composition ``composition_id`` for the modules ``wanted`` names (flow ids, module ids
        or conditions: a care plan's monitoring, or the patient's conditions); None when none matches."""
        composition = self.compositions[composition_id]
        chosen = select_modules(composition, self.flows, list(wanted))
        if not chosen:
            return None
        return ".".join((composition.id, *(f.module.id for f in chosen if f.module is not None)))

    #: Resource texts per social-need domain, program and ZIP prefix (content/resources.yaml).
    resources: ResourceLists = field(default_factory=ResourceLists)
    #: The consent basis an answer in the welcome flow is recorded under, by the channel it came on
    #: (content/consent.yaml ``answered_consent_basis``): ``{"sms": "express_written", "voice": "express_oral"}``.
    answered_consent_basis: dict[str, str] = field(default_factory=dict)
    #: Lessons sent after a check-in whose rules fired (content/education/triggers.yaml).
    education_triggers: tuple[Trigger, ...] = ()

    def campaign(self, campaign_id: str) -> Campaign | None:
        """The campaign by id or by one of its aliases (``post-discharge-tcm`` → ``post-discharge-30d``)."""
        found = self.campaigns.get(campaign_id)
        if found is None and campaign_id in self.campaign_aliases:
            found = self.campaigns.get(self.campaign_aliases[campaign_id])
        return found

    def needs_own_transcripts(self, flow: Flow) -> bool:
        """Every flow has transcripts, except a combined check-in of only some of its composition's modules
        (its rules are the modules', covered by their transcripts and by the one of every module)."""
        if not flow.composed_of:
            return True
        composition = self.compositions.get(flow.id.split(".", 1)[0])
        return composition is None or len(flow.composed_of) == len(composition.modules)

    def startable_flows(self) -> list[str]:
        """Flow ids staff, campaigns and the simulators may start (not the system's internal ones)."""
        return sorted(f for f, flow in self.flows.items() if not flow.internal)

    def flow(self, flow_id: str) -> Flow:
        return self.flows[flow_id]

    def threshold_names(self) -> set[str]:
        return {name for flow in self.flows.values() for name in flow.thresholds}

    def threshold_defaults(self) -> dict[str, float]:
        """Every flow threshold's default value (name -> number in its unit; the first flow naming it wins)."""
        found: dict[str, float] = {}
        for flow in self.flows.values():
            for name, value in flow.thresholds.items():
                found.setdefault(name, float(value))
        return found

    def lesson(self, topic: str, language: str) -> EducationText | None:
        """The topic in the language (English when it has no such text); None for an unknown topic."""
        texts = self.education.get(topic) or {}
        return texts.get(language) or texts.get("en")

    def education_for(self, language: str) -> dict[str, str]:
        return {
            topic: (texts.get(language) or texts["en"]).body
            for topic, texts in self.education.items()
            if language in texts or "en" in texts
        }


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def parse_education(path: Path, shown: str) -> EducationText:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise FlowError(shown, 1, "education text must start with front matter (---)")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise FlowError(shown, 1, "front matter is not closed with ---")
    meta = yaml.safe_load(text[4:end]) or {}
    for key in ("title", "sources", "reviewed_by", "reviewed_on"):
        if key not in meta:
            raise FlowError(shown, 1, f"front matter needs '{key}'")
    return EducationText(
        topic=path.parent.name, language=path.stem, title=str(meta["title"]), body=text[end + 5 :].strip(), meta=meta
    )


def load_content(root: Path) -> ContentLibrary:
    """Load everything under ``root``; the first invalid file raises FlowError (file, line, reason)."""
    flows: dict[str, Flow] = {}
    sources: dict[str, str] = {}
    compositions: dict[str, Composition] = {}
    for path in sorted((root / "flows").glob("*.yaml")):
        source = path.read_text(encoding="utf-8")
        if is_composition(source, _shown(path, root)):
            composition = parse_composition(source, _shown(path, root))
            compositions[composition.id] = composition
            continue
        flow = compile_flow(source, _shown(path, root))
        flows[flow.id] = flow
        sources[flow.id] = source
    for composition in compositions.values():
        if composition.id in flows:
            raise FlowError(composition.path, 1, f"composition id '{composition.id}' is also a flow id")
        check_composition(composition, flows)
        modules = [flows[m] for m in composition.modules]
        for size in range(1, len(modules) + 1):
            for chosen in itertools.combinations(modules, size):
                combined = compose(composition, chosen)
                flows[combined.id] = combined
                sources[combined.id] = composed_source(composition, chosen, sources)
    for flow in flows.values():
        for node in flow.nodes.values():
            if node.start_flow and node.start_flow not in flows:
                raise FlowError(
                    flow.source_path, node.line, f"node '{node.id}': start_flow '{node.start_flow}' does not exist"
                )
    campaigns = {}
    for path in sorted((root / "campaigns").glob("*.yaml")):
        # An internal flow (the "right now?" check) is started by the system only: no campaign may name it.
        # A campaign may name a composition: the flow it starts is chosen per patient (their care plan).
        startable = {f for f, flow in flows.items() if not flow.internal} | set(compositions)
        campaign = load_campaign(path, startable, _shown(path, root))
        campaigns[campaign.id] = campaign
    aliases: dict[str, str] = {}
    for campaign in campaigns.values():
        for alias in campaign.aliases:
            if alias in campaigns or alias in aliases:
                raise FlowError(f"content/campaigns/{campaign.id}.yaml", 1, f"alias '{alias}' is already a campaign id")
            aliases[alias] = campaign.id
    consent_path = root / "consent.yaml"
    consent: dict[str, object] = {}
    if consent_path.exists():
        consent = dict(load_yaml_with_lines(consent_path.read_text(encoding="utf-8"), _shown(consent_path, root)))
    education: dict[str, dict[str, EducationText]] = {}
    for path in sorted((root / "education").glob("*/*.md")):
        item = parse_education(path, _shown(path, root))
        education.setdefault(item.topic, {})[item.language] = item
    triggers = load_triggers(root / "education" / "triggers.yaml", flows, education, _shown)
    for campaign in campaigns.values():
        for touch in campaign.touches:
            if touch.education and not {"en", "es"} <= set(education.get(touch.education, {})):
                raise FlowError(
                    f"content/campaigns/{campaign.id}.yaml",
                    touch.line,
                    f"touch '{touch.id}': education topic '{touch.education}' needs en and es texts",
                )
    triage = load_triage(root / "triage", root.parent)
    resources_path = root / "resources.yaml"
    resources = ResourceLists()
    if resources_path.exists():
        resources = parse_resources(resources_path.read_text(encoding="utf-8"), _shown(resources_path, root))
    bases = consent.get("answered_consent_basis") or {}
    if not isinstance(bases, dict) or any(
        k not in ("sms", "voice") or v not in ("express_written", "express_oral") for k, v in bases.items()
    ):
        raise FlowError(
            _shown(consent_path, root), 1, "answered_consent_basis: {sms|voice: express_written|express_oral}"
        )
    return ContentLibrary(
        root=root,
        flows=flows,
        flow_sources=sources,
        campaigns=campaigns,
        intents=GlobalIntents(triage=triage, opt_out=OptOutPhrases.from_content(consent)),
        education=education,
        triage=triage,
        campaign_aliases=aliases,
        compositions=compositions,
        resources=resources,
        answered_consent_basis={str(k): str(v) for k, v in bases.items()},
        education_triggers=triggers,
    )


def load_triggers(
    path: Path, flows: dict[str, Flow], education: dict[str, dict[str, EducationText]], shown: Any
) -> tuple[Trigger, ...]:
    """``content/education/triggers.yaml``: lessons sent after a check-in whose rules fired with a reason.
    Raises FlowError (file, line, reason) for an unknown flow, a reason none of the flow's rules gives, or a
    topic without both en and es texts. A missing file means no triggers."""
    if not path.exists():
        return ()
    where = shown(path, path.parent.parent)
    data = load_yaml_with_lines(path.read_text(encoding="utf-8"), where)
    if not isinstance(data, LineDict) or set(data) - {"triggers"}:
        raise FlowError(where, 1, "the triggers file is a mapping with one key, 'triggers'")
    raw = data.get("triggers") or []
    if not isinstance(raw, list):
        raise FlowError(where, data.key_lines.get("triggers", 1), "triggers must be a list")
    found: list[Trigger] = []
    seen: set[str] = set()
    for item in raw:
        line = getattr(item, "line", 1)
        if not isinstance(item, LineDict):
            raise FlowError(where, line, "each trigger is a mapping with id, flow, reasons and topic")
        unknown = set(item) - {"id", "flow", "reasons", "topic"}
        if unknown:
            key = sorted(unknown)[0]
            raise FlowError(where, item.key_lines[key], f"trigger: unknown field '{key}'")
        trigger_id = item.get("id")
        if not isinstance(trigger_id, str) or not trigger_id or trigger_id in seen:
            raise FlowError(where, item.key_lines.get("id", line), "trigger: id is required and must be unique")
        seen.add(trigger_id)
        flow = flows.get(str(item.get("flow")))
        if flow is None:
            raise FlowError(where, item.key_lines.get("flow", line), f"trigger: unknown flow '{item.get('flow')}'")
        reasons = item.get("reasons")
        if isinstance(reasons, str):
            reasons = [reasons]
        known = {rule.reason for rule in flow.rules}
        if not isinstance(reasons, list) or not reasons:
            raise FlowError(where, item.key_lines.get("reasons", line), "trigger: reasons must be a list of names")
        for reason in reasons:
            if reason not in known:
                raise FlowError(
                    where,
                    item.key_lines.get("reasons", line),
                    f"trigger: no rule of '{flow.id}' has reason '{reason}' (known: {', '.join(sorted(known))})",
                )
        topic = str(item.get("topic"))
        if not {"en", "es"} <= set(education.get(topic, {})):
            raise FlowError(
                where, item.key_lines.get("topic", line), f"trigger: education topic '{topic}' needs en and es"
            )
        found.append(Trigger(trigger_id, flow.id, tuple(str(r) for r in reasons), topic, line))
    return tuple(found)
