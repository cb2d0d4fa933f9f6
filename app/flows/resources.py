"""Community resources a program gives for each social need (``content/resources.yaml``): which text a
patient gets when the social-needs screen finds a need, by domain, program and ZIP-code prefix.

Pure parsing and lookup (no I/O beyond the caller's file read), so a clinician's or a program's edit is
validated with the file, the line and the reason (``outreach lint-content``), and the flow's texts take
the chosen list through a ``{resources_<domain>}`` variable.

```yaml
resources:
  - domain: food                          # housing | food | transportation | utilities
    text: {en: "Call 211 ...", es: "..."} # the default: no program, no zip prefix
  - domain: food
    program: north-clinic                 # only this program's patients (its slug)
    zip_prefixes: ["606", "6070"]         # only patients whose ZIP code starts so (1-5 digits)
    text: {en: "...", es: "..."}
```

The most specific entry wins: program and ZIP prefix (the longest prefix), then program, then ZIP
prefix, then the default. Every domain needs a default, in every language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.flows.loader import FlowError, LineDict, LineList, load_yaml_with_lines

#: The social-need domains with a resource list (the AHC HRSN core domains but interpersonal safety, whose
#: one resource, the National Domestic Violence Hotline, is written in the flow itself).
DOMAINS = ("housing", "food", "transportation", "utilities")
LANGUAGES = ("en", "es")
_ZIP_PREFIX = re.compile(r"^\d{1,5}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class ResourceText:
    domain: str
    text: Mapping[str, str]
    program: str | None = None
    zip_prefixes: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class ResourceLists:
    entries: tuple[ResourceText, ...] = ()

    def pick(self, domain: str, language: str, *, program: str | None, zip_code: str | None) -> str:
        """The text for ``domain`` in ``language`` for a patient of ``program`` (slug) living in ``zip_code``;
        "" when the domain has no entry at all (a content file that was never validated)."""
        zip_digits = re.sub(r"\D", "", zip_code or "")
        best: tuple[int, int, ResourceText] | None = None
        for entry in self.entries:
            if entry.domain != domain:
                continue
            if entry.program is not None and entry.program != program:
                continue
            prefix_len = 0
            if entry.zip_prefixes:
                matching = [p for p in entry.zip_prefixes if zip_digits.startswith(p)]
                if not matching:
                    continue
                prefix_len = max(len(p) for p in matching)
            rank = (1 if entry.program else 0, prefix_len)
            if best is None or rank > best[:2]:
                best = (*rank, entry)
        if best is None:
            return ""
        text = best[2].text
        return text.get(language) or text.get("en", "")

    def variables(self, language: str, *, program: str | None, zip_code: str | None) -> dict[str, str]:
        """``{"resources_food": ..., ...}`` for the flow texts (``{resources_food}``), one per domain."""
        return {
            f"resources_{domain}": self.pick(domain, language, program=program, zip_code=zip_code) for domain in DOMAINS
        }


def parse_resources(source: str, path: str) -> ResourceLists:
    """Parse ``content/resources.yaml``; raises FlowError with the file, the line and the reason."""
    data = load_yaml_with_lines(source, path)
    if not isinstance(data, LineDict) or not isinstance(data.get("resources"), LineList):
        raise FlowError(path, 1, "resources.yaml needs a list 'resources:'")
    for key in data:
        if key not in {"resources", "reviewed", "sources"}:
            raise FlowError(path, data.key_lines.get(key, 1), f"unknown field '{key}'")
    entries: list[ResourceText] = []
    for raw in data["resources"]:
        if not isinstance(raw, LineDict):
            raise FlowError(path, getattr(raw, "line", 1), "each resource needs domain and text")
        for key in raw:
            if key not in {"domain", "text", "program", "zip_prefixes"}:
                raise FlowError(path, raw.key_lines.get(key, raw.line), f"resource: unknown field '{key}'")
        domain = raw.get("domain")
        if domain not in DOMAINS:
            raise FlowError(
                path, raw.key_lines.get("domain", raw.line), f"resource: domain must be one of {', '.join(DOMAINS)}"
            )
        text = raw.get("text")
        if not isinstance(text, LineDict):
            raise FlowError(path, raw.key_lines.get("text", raw.line), "resource: text needs en and es")
        for language in LANGUAGES:
            value = text.get(language)
            if not isinstance(value, str) or not value.strip():
                raise FlowError(path, text.line, f"resource: missing '{language}' text")
            if "{" in value or "}" in value:
                raise FlowError(path, text.key_lines.get(language, text.line), "resource: text may not hold { or }")
        for language in text:
            if language not in LANGUAGES:
                line = text.key_lines.get(language, text.line)
                raise FlowError(path, line, f"resource: unknown language '{language}'")
        program = raw.get("program")
        if program is not None and (not isinstance(program, str) or not _SLUG.match(program)):
            raise FlowError(path, raw.key_lines.get("program", raw.line), "resource: program must be a program slug")
        prefixes = raw.get("zip_prefixes") or []
        if not isinstance(prefixes, list) or not all(isinstance(p, str) and _ZIP_PREFIX.match(p) for p in prefixes):
            raise FlowError(
                path,
                raw.key_lines.get("zip_prefixes", raw.line),
                'resource: zip_prefixes must be quoted ZIP prefixes of 1-5 digits, like ["606"]',
            )
        entries.append(
            ResourceText(
                domain=str(domain),
                text={lang: str(text[lang]).strip() for lang in LANGUAGES},
                program=program,
                zip_prefixes=tuple(prefixes),
                line=raw.line,
            )
        )
    for domain in DOMAINS:
        if not any(e.domain == domain and e.program is None and not e.zip_prefixes for e in entries):
            line = data.key_lines.get("resources", 1)
            raise FlowError(path, line, f"resources: domain '{domain}' has no default entry")
    return ResourceLists(tuple(entries))
