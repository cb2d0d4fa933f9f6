"""The content library: flows, campaigns, triage rules, consent phrases and education text, loaded and validated
once per process from ``content/``.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

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
from app.flows.loader import FlowError, compile_flow, load_yaml_with_lines
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
    )
