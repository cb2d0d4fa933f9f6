"""One combined check-in instead of one campaign per condition (issue 12 item 4), as content rules.

A *module campaign* is one whose every touch starts a module flow of a composition (hf-remote-monitoring
→ hf-daily-check, a module of chronic-care-check); the *combined campaign* is the one whose touch names
the composition itself (chronic-care). A patient who would get two or more module campaigns gets the
combined campaign instead: one touch a day, composed from the care plan's modules at send time.
Pure over the content library (no I/O).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.content import ContentLibrary


def module_campaigns(content: ContentLibrary) -> dict[str, str]:
    """Campaign id → the composition whose modules all its touches start (only module campaigns)."""
    found: dict[str, str] = {}
    for campaign in content.campaigns.values():
        flows = {touch.flow for touch in campaign.touches}
        for composition in content.compositions.values():
            if flows and flows <= set(composition.modules):
                found[campaign.id] = composition.id
                break
    return found


def combined_campaign(content: ContentLibrary, composition_id: str) -> str | None:
    """The campaign whose touches start the composition ``composition_id`` (chronic-care), if any."""
    for campaign in sorted(content.campaigns.values(), key=lambda c: c.id):
        if campaign.touches and all(touch.flow == composition_id for touch in campaign.touches):
            return campaign.id
    return None


def combine_campaigns(content: ContentLibrary, campaigns: Sequence[str]) -> list[str]:
    """``campaigns`` with two or more module campaigns of one composition replaced by its combined campaign
    (in the place of the first); other campaigns, and a lone module campaign, stay as they are."""
    modules = module_campaigns(content)
    by_composition: dict[str, list[str]] = {}
    for campaign_id in campaigns:
        found = content.campaign(campaign_id)
        if found is not None and found.id in modules:
            by_composition.setdefault(modules[found.id], []).append(campaign_id)
    result: list[str] = []
    for campaign_id in campaigns:
        found = content.campaign(campaign_id)
        composition = modules.get(found.id) if found is not None else None
        combined = combined_campaign(content, composition) if composition else None
        if composition is None or combined is None or len(by_composition[composition]) < 2:
            result.append(campaign_id)
        elif combined not in result:
            result.append(combined)
    return result
