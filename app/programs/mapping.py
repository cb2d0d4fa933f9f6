"""The ADT mapping (``content/adt-mapping.yaml``): which campaigns and conditions a hospital discharge
(HL7 ADT^A03) brings, from the discharging unit (PV1-3.1) and the diagnosis codes (DG1-3, ICD-10-CM).

Content a clinician reviews, validated by ``outreach lint-content`` (file, line, reason)::

    discharge:                       # every A03
      campaigns: [post-discharge-tcm]
    units:
      - unit: 4W-CARD                 # PV1-3.1, case-insensitive
        campaigns: [hf-remote-monitoring]
    diagnoses:
      - codes: [I50]                  # ICD-10 prefixes (I50 matches I50.9, I5023, ...)
        conditions: [heart_failure]
        campaigns: [hf-remote-monitoring]
    facilities:                      # optional: MSH-4 sending facility -> program slug
      GENERAL HOSP: north-clinic
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.flows.loader import FlowError, LineDict, LineList, load_yaml_with_lines

FILE_NAME = "adt-mapping.yaml"
#: An ICD-10-CM code or prefix as written in a feed or the mapping: letter, digits, optional dot.
ICD10_PREFIX = re.compile(r"^[A-TV-Z][0-9][0-9A-Z]{0,5}$")
KNOWN_CONDITIONS = frozenset({"heart_failure", "diabetes", "copd", "depression", "anxiety", "hypertension"})


@dataclass(frozen=True)
class Rule:
    campaigns: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdtMapping:
    discharge: Rule = Rule()
    units: dict[str, Rule] = field(default_factory=dict)
    #: (normalised ICD-10 prefix, rule), longest prefix first.
    diagnoses: tuple[tuple[str, Rule], ...] = ()
    facilities: dict[str, str] = field(default_factory=dict)

    def for_discharge(self, unit: str | None, codes: Iterable[str]) -> Rule:
        """Every campaign and condition the discharge brings (in mapping order, without repeats)."""
        rules = [self.discharge]
        if unit and (by_unit := self.units.get(unit.strip().upper())):
            rules.append(by_unit)
        for code in codes:
            normal = normalise_code(code)
            rules.extend(rule for prefix, rule in self.diagnoses if normal.startswith(prefix))
        campaigns: dict[str, None] = {}
        conditions: dict[str, None] = {}
        for rule in rules:
            campaigns.update(dict.fromkeys(rule.campaigns))
            conditions.update(dict.fromkeys(rule.conditions))
        return Rule(tuple(campaigns), tuple(conditions))

    def program_for(self, facility: str | None) -> str | None:
        return self.facilities.get((facility or "").strip().upper())


def normalise_code(code: str) -> str:
    """``i50.9`` → ``I509``: ICD-10 codes compare without the dot and case."""
    return code.strip().upper().replace(".", "")


def _strings(value: object, shown: str, line: int, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FlowError(shown, line, f"{what} must be a list of names")
    return tuple(v.strip() for v in value)


def _rule(
    raw: object, shown: str, what: str, campaigns: Collection[str], allowed: frozenset[str]
) -> tuple[Rule, LineDict]:
    if not isinstance(raw, LineDict):
        raise FlowError(shown, getattr(raw, "line", 1), f"{what} must be a mapping")
    for key in raw:
        if key not in allowed:
            raise FlowError(shown, raw.key_lines[key], f"{what}: unknown field '{key}'")
    names = _strings(raw.get("campaigns"), shown, raw.key_lines.get("campaigns", raw.line), f"{what}: campaigns")
    for name in names:
        if name not in campaigns:
            raise FlowError(shown, raw.key_lines.get("campaigns", raw.line), f"{what}: unknown campaign '{name}'")
    conditions = _strings(
        raw.get("conditions"), shown, raw.key_lines.get("conditions", raw.line), f"{what}: conditions"
    )
    for name in conditions:
        if name not in KNOWN_CONDITIONS:
            raise FlowError(
                shown,
                raw.key_lines.get("conditions", raw.line),
                f"{what}: unknown condition '{name}' (known: {', '.join(sorted(KNOWN_CONDITIONS))})",
            )
    return Rule(names, conditions), raw


def parse_mapping(source: str, shown: str, campaigns: Collection[str]) -> AdtMapping:
    """Parse and check the mapping; raises FlowError (file, line, reason) at the first problem."""
    data = load_yaml_with_lines(source, shown)
    if data is None:
        return AdtMapping()
    if not isinstance(data, LineDict):
        raise FlowError(shown, 1, "the ADT mapping must be a mapping with discharge, units and diagnoses")
    for key in data:
        if key not in {"discharge", "units", "diagnoses", "facilities"}:
            raise FlowError(shown, data.key_lines[key], f"unknown section '{key}'")
    discharge = Rule()
    if "discharge" in data:
        discharge, _ = _rule(data["discharge"], shown, "discharge", campaigns, frozenset({"campaigns", "conditions"}))
    units: dict[str, Rule] = {}
    raw_units = data.get("units") or LineList()
    if not isinstance(raw_units, list):
        raise FlowError(shown, data.key_lines["units"], "units must be a list")
    for raw in raw_units:
        rule, where = _rule(raw, shown, "unit", campaigns, frozenset({"unit", "campaigns", "conditions"}))
        unit = where.get("unit")
        if not isinstance(unit, str) or not unit.strip():
            raise FlowError(shown, where.line, "unit: 'unit' (PV1-3.1, the point of care) is required")
        key = unit.strip().upper()
        if key in units:
            raise FlowError(shown, where.key_lines["unit"], f"unit '{unit}' is mapped twice")
        units[key] = rule
    diagnoses: list[tuple[str, Rule]] = []
    raw_diagnoses = data.get("diagnoses") or LineList()
    if not isinstance(raw_diagnoses, list):
        raise FlowError(shown, data.key_lines["diagnoses"], "diagnoses must be a list")
    for raw in raw_diagnoses:
        rule, where = _rule(raw, shown, "diagnosis", campaigns, frozenset({"codes", "campaigns", "conditions"}))
        line = where.key_lines.get("codes", where.line)
        codes = _strings(where.get("codes"), shown, line, "diagnosis: codes")
        if not codes:
            raise FlowError(shown, line, "diagnosis: 'codes' (ICD-10 prefixes such as I50) is required")
        for code in codes:
            normal = normalise_code(code.rstrip("*"))
            if not ICD10_PREFIX.match(normal):
                raise FlowError(shown, line, f"diagnosis: '{code}' is not an ICD-10 code or prefix (e.g. I50, E11.9)")
            diagnoses.append((normal, rule))
        if not rule.campaigns and not rule.conditions:
            raise FlowError(shown, where.line, "diagnosis: give campaigns or conditions (or both)")
    facilities: dict[str, str] = {}
    raw_facilities = data.get("facilities") or LineDict()
    if not isinstance(raw_facilities, LineDict):
        raise FlowError(shown, data.key_lines["facilities"], "facilities must map MSH-4 names to program slugs")
    for name, slug in raw_facilities.items():
        if not isinstance(slug, str) or not slug.strip():
            raise FlowError(shown, raw_facilities.key_lines[name], f"facility '{name}': give a program slug")
        facilities[name.strip().upper()] = slug.strip()
    diagnoses.sort(key=lambda item: -len(item[0]))
    return AdtMapping(discharge, units, tuple(diagnoses), facilities)


def load_mapping(content_dir: Path, campaigns: Collection[str]) -> AdtMapping:
    """``content/adt-mapping.yaml`` (an empty mapping when the file is absent); raises FlowError.
    Parsed once per version of the file (its modification time and size) and set of campaigns."""
    path = content_dir / FILE_NAME
    try:
        stat = path.stat()
    except FileNotFoundError:
        return AdtMapping()
    return _parsed(str(path), stat.st_mtime_ns, stat.st_size, frozenset(campaigns), content_dir.name)


@functools.lru_cache(maxsize=8)
def _parsed(path: str, _mtime_ns: int, _size: int, campaigns: frozenset[str], folder: str) -> AdtMapping:
    return parse_mapping(Path(path).read_text(encoding="utf-8"), f"{folder}/{FILE_NAME}", campaigns)
